"""The MNIST loader on the real IDX files and on corrupt copies of them."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from train.data import CANONICAL_SHA256, MnistError, dataset_sha256, load_idx_dir, load_mnist


def test_real_mnist_loads_with_canonical_checksums(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert set(np.unique(y_test)) == set(range(10))
    assert x_train[:, 0, 0].max() == 0  # 0 = background at the corners
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert dataset_sha256(*mnist) == CANONICAL_SHA256


def _copy(src, dst, gunzip=()):
    """Copy the four files; the ones named in gunzip are written decompressed (raw IDX)."""
    dst.mkdir()
    for f in src.iterdir():
        if f.name.endswith(".gz"):
            stem = f.name[:-3]
            if stem in gunzip:
                (dst / stem).write_bytes(gzip.decompress(f.read_bytes()))
            else:
                shutil.copy(f, dst / f.name)
    return dst


def test_raw_and_gz_files_are_both_accepted(mnist_dir, tmp_path, mnist):
    d = _copy(mnist_dir, tmp_path / "m", gunzip=("t10k-images-idx3-ubyte",))
    (_, _), (x_test, _) = load_idx_dir(d)
    assert np.array_equal(x_test, mnist[1][0])


@pytest.mark.parametrize("corrupt, message", [
    (lambda b: b"\x00\x00\x08\x01" + b[4:], "bad magic number 2049, expected 2051"),
    (lambda b: b[: len(b) // 2], "truncated or oversized"),
    (lambda b: b[:20], "truncated or oversized"),
    (lambda b: b + b"\x00", "truncated or oversized"),
    (lambda b: b[:3], "too short for an IDX header"),
])
def test_corrupt_image_file_names_file_and_problem(mnist_dir, tmp_path, corrupt, message):
    d = _copy(mnist_dir, tmp_path / "m", gunzip=("t10k-images-idx3-ubyte",))
    f = d / "t10k-images-idx3-ubyte"
    f.write_bytes(corrupt(f.read_bytes()))
    with pytest.raises(MnistError) as e:
        load_mnist(d)
    assert message in str(e.value) and "t10k-images-idx3-ubyte" in str(e.value)
    assert "\n" not in str(e.value)


def test_mismatched_counts(mnist_dir, tmp_path):
    d = _copy(mnist_dir, tmp_path / "m", gunzip=("t10k-labels-idx1-ubyte",))
    f = d / "t10k-labels-idx1-ubyte"
    raw = bytearray(f.read_bytes())
    raw[4:8] = (9999).to_bytes(4, "big")   # header claims one label fewer...
    f.write_bytes(bytes(raw[:-1]))           # ...and the file really has one fewer
    with pytest.raises(MnistError, match="10000 images but 9999 labels"):
        load_mnist(d)


def test_label_out_of_range(mnist_dir, tmp_path):
    d = _copy(mnist_dir, tmp_path / "m", gunzip=("train-labels-idx1-ubyte",))
    f = d / "train-labels-idx1-ubyte"
    raw = bytearray(f.read_bytes())
    raw[100] = 12
    f.write_bytes(bytes(raw))
    with pytest.raises(MnistError, match="labels out of range"):
        load_mnist(d)


def test_broken_gzip_is_a_one_line_error(mnist_dir, tmp_path):
    d = _copy(mnist_dir, tmp_path / "m")
    f = d / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(MnistError, match="train-labels-idx1-ubyte.gz: cannot read"):
        load_mnist(d)


def test_missing_folder_and_missing_file(tmp_path):
    with pytest.raises(MnistError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MnistError, match="missing train-images-idx3-ubyte"):
        load_mnist(tmp_path / "empty")


def test_no_source_lists_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(MnistError) as e:
        load_mnist(allow_download=False)
    assert "mnist.npz (absent)" in str(e.value) and "MNIST_DIR" in str(e.value)


def test_keras_cache_npz_is_read(monkeypatch, tmp_path, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    (tmp_path / "datasets").mkdir()
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    train, test = load_mnist(allow_download=False)
    assert dataset_sha256(train, test) == CANONICAL_SHA256


def test_non_canonical_data_warns(monkeypatch, tmp_path, mnist, caplog):
    (x_train, y_train), (x_test, y_test) = mnist
    (tmp_path / "datasets").mkdir()
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=x_train[::-1], y_train=y_train[::-1],
             x_test=x_test, y_test=y_test)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    load_mnist(allow_download=False)
    assert "differs from canonical MNIST in: train_images, train_labels" in caplog.text
