"""MNIST loading: IDX files (MNIST_DIR / --data-dir), the Keras cache, then Keras' download.

Every source is validated, so a truncated or foreign file fails loudly with its name instead of
training on garbage. Arrays are uint8, 28x28, 0 = background (MNIST's own polarity).
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
EXPECTED_COUNTS = {"train": 60000, "test": 10000}

# sha256 of the decompressed IDX bytes of canonical MNIST (the data-set README lists them).
CANONICAL_SHA256 = {
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

Split = tuple[np.ndarray, np.ndarray]


class MnistError(Exception):
    """A data source is missing or malformed; the message is one line naming file and problem."""


def idx_bytes(images: np.ndarray, labels: np.ndarray) -> tuple[bytes, bytes]:
    """Serialize arrays to IDX bytes: the exact form the canonical checksums are taken of."""
    n, rows, cols = images.shape
    img = np.array([0, 0, 8, 3], ">u1").tobytes() + np.array([n, rows, cols], ">u4").tobytes()
    lab = np.array([0, 0, 8, 1], ">u1").tobytes() + np.array([len(labels)], ">u4").tobytes()
    return img + images.astype(np.uint8).tobytes(), lab + labels.astype(np.uint8).tobytes()


def dataset_sha256(train: Split, test: Split) -> dict[str, str]:
    """sha256 of each array in its decompressed IDX form, comparable with CANONICAL_SHA256."""
    out = {}
    for name, (x, y) in (("train", train), ("test", test)):
        img, lab = idx_bytes(x, y)
        out[f"{name}_images"] = hashlib.sha256(img).hexdigest()
        out[f"{name}_labels"] = hashlib.sha256(lab).hexdigest()
    return out


def _read_raw(directory: Path, stem: str) -> tuple[Path, bytes]:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            try:
                if candidate.suffix == ".gz":
                    with gzip.open(candidate, "rb") as f:
                        return candidate, f.read()
                return candidate, candidate.read_bytes()
            except (OSError, EOFError) as e:
                raise MnistError(f"{candidate}: cannot read ({e})") from None
    raise MnistError(f"{directory}: missing {stem} (or {stem}.gz)")


def parse_idx(data: bytes, path: Path | str, magic: int) -> np.ndarray:
    """Parse one IDX file, checking magic number, dimensions and length."""
    ndim = 3 if magic == IMAGES_MAGIC else 1
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistError(f"{path}: file too short for an IDX header ({len(data)} bytes)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise MnistError(f"{path}: bad magic number {found}, expected {magic}")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if ndim == 3 and dims[1:] != [28, 28]:
        raise MnistError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise MnistError(
            f"{path}: truncated or oversized: {len(data)} bytes, header says {expected}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _check_split(name: str, x: np.ndarray, y: np.ndarray, where: str) -> None:
    if len(x) != len(y):
        raise MnistError(f"{where}: {name} has {len(x)} images but {len(y)} labels")
    if len(x) != EXPECTED_COUNTS[name]:
        raise MnistError(f"{where}: {name} has {len(x)} records, expected {EXPECTED_COUNTS[name]}")
    if y.size and y.max() > 9:
        raise MnistError(f"{where}: {name} labels out of range 0-9 (max {y.max()})")
    if x.dtype != np.uint8 or x.shape[1:] != (28, 28):
        raise MnistError(f"{where}: {name} images are {x.dtype} {x.shape[1:]}, expected uint8 28x28")


def load_idx_dir(directory: Path) -> tuple[Split, Split]:
    """The four IDX files from one folder, gzipped or raw."""
    arrays = {}
    for key, stem in IDX_FILES.items():
        path, raw = _read_raw(directory, stem)
        arrays[key] = parse_idx(raw, path, IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC)
    train = (arrays["train_images"], arrays["train_labels"])
    test = (arrays["test_images"], arrays["test_labels"])
    _check_split("train", *train, where=str(directory))
    _check_split("test", *test, where=str(directory))
    return train, test


def load_npz(path: Path) -> tuple[Split, Split]:
    """Keras' cached mnist.npz."""
    try:
        with np.load(path) as f:
            train, test = (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    except Exception as e:  # a corrupt zip raises many types
        raise MnistError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    _check_split("train", *train, where=str(path))
    _check_split("test", *test, where=str(path))
    return train, test


def _keras_download() -> tuple[Split, Split]:
    import keras  # deferred: only reached when no local copy exists

    try:
        train, test = keras.datasets.mnist.load_data()
    except Exception as e:
        raise MnistError(f"keras download failed ({type(e).__name__}: {e})") from None
    _check_split("train", *train, where="keras download")
    _check_split("test", *test, where="keras download")
    return train, test


def load_mnist(data_dir: str | Path | None = None, allow_download: bool = True) -> tuple[Split, Split]:
    """(x_train, y_train), (x_test, y_test) from the first source that works.

    An explicit data_dir (or MNIST_DIR) that is broken is an error, not a reason to fall back:
    the user asked for those files.
    """
    explicit = data_dir or os.environ.get("MNIST_DIR")
    if explicit:
        directory = Path(explicit).expanduser()
        if not directory.is_dir():
            raise MnistError(f"{directory}: MNIST directory does not exist")
        train, test = load_idx_dir(directory)
        source = str(directory)
    else:
        tried = []
        cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"
        if cache.is_file():
            train, test = load_npz(cache)
            source = str(cache)
        else:
            tried.append(f"Keras cache {cache} (absent)")
            if not allow_download:
                raise MnistError("no MNIST found; tried " + "; ".join(tried) + _HOW_TO_FIX)
            try:
                train, test = _keras_download()
            except MnistError as e:
                tried.append(str(e))
                raise MnistError("no MNIST found; tried " + "; ".join(tried) + _HOW_TO_FIX) from None
            source = "keras download"
    digests = dataset_sha256(train, test)
    differing = [k for k, v in digests.items() if v != CANONICAL_SHA256[k]]
    if differing:
        log.warning("MNIST from %s differs from canonical MNIST in: %s", source, ", ".join(differing))
    log.info("MNIST loaded from %s: %d train, %d test", source, len(train[0]), len(test[0]))
    return train, test


_HOW_TO_FIX = (
    ". Fix: set MNIST_DIR (or --data-dir) to a folder with the four IDX files"
    " (train-images-idx3-ubyte[.gz] ...), or go online once so Keras can download mnist.npz."
)
