"""A short real training run, what it writes, and that an interrupted save loses nothing."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import keras
import pytest

from train.model import normalize
from train.train import TrainConfig, run

from conftest import ROOT


def test_short_training_run_writes_model_manifest_and_plots(mnist, mnist_dir, tmp_path):
    manifest = run(TrainConfig(arch="seed", epochs=1, limit=5000, data_dir=str(mnist_dir), out=tmp_path,
                               h5=True, verbose=0))
    assert manifest["test_accuracy"] > 0.50        # chance is 0.10
    for name in ("digit_cnn.keras", "digit_cnn.h5", "digit_cnn.json", "training_curves.png",
                 "confusion_matrix.png", "misclassified.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "digit_cnn.json").read_text())
    with zipfile.ZipFile(tmp_path / "digit_cnn.keras") as z:   # weights only, no optimizer state
        assert z.getinfo("model.weights.h5").file_size < 1.5 * 4 * saved["params"]
        assert not json.loads(z.read("config.json")).get("compile_config")
    assert saved["params"] == 59933 and saved["arch"] == "seed" and saved["dataset_is_canonical"]
    assert saved["normalization"] == {"scale": 1 / 255, "offset": 0.0}
    assert saved["train_images"] + saved["val_images"] == 5000
    for key in ("macs", "epochs", "train_seconds", "dataset_sha256", "seed", "versions", "created_at"):
        assert key in saved
    (_, _), (x_test, y_test) = mnist
    for path in (tmp_path / "digit_cnn.keras", tmp_path / "digit_cnn.h5"):
        loaded = keras.models.load_model(path, compile=False)
        acc = float((loaded.predict(normalize(x_test, saved["normalization"]), verbose=0).argmax(1) == y_test).mean())
        assert acc == pytest.approx(saved["test_accuracy"], abs=1e-4), path


def test_interrupted_save_leaves_previous_model(mnist_dir, tmp_path, monkeypatch):
    run(TrainConfig(arch="seed", epochs=1, limit=500, data_dir=str(mnist_dir), out=tmp_path, verbose=0))
    before = (tmp_path / "digit_cnn.keras").read_bytes()
    manifest_before = (tmp_path / "digit_cnn.json").read_text()

    real_save = keras.Model.save

    def dying_save(self, path, *a, **kw):
        real_save(self, path, *a, **kw)
        with open(path, "r+b") as f:   # half-written file, then the "power cut"
            f.truncate(100)
        raise OSError("simulated crash mid-write")

    monkeypatch.setattr(keras.Model, "save", dying_save)
    with pytest.raises(OSError, match="simulated crash"):
        run(TrainConfig(arch="seed", epochs=1, limit=500, data_dir=str(mnist_dir), out=tmp_path, seed=7,
                        verbose=0))
    assert (tmp_path / "digit_cnn.keras").read_bytes() == before
    assert (tmp_path / "digit_cnn.json").read_text() == manifest_before
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    keras.models.load_model(tmp_path / "digit_cnn.keras")


def test_cli_help_and_bad_data_dir(tmp_path):
    help_text = subprocess.run([sys.executable, "-m", "train", "--help"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout
    for flag in ("--arch", "--epochs", "--batch-size", "--limit", "--data-dir", "--out", "--seed", "--h5"):
        assert flag in help_text
    assert "default: 10 for seed, 30 for edge" in help_text      # the epochs it really trains
    r = subprocess.run([sys.executable, "-m", "train", "--data-dir", str(tmp_path), "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and "missing train-images" in r.stderr
    assert not list(tmp_path.iterdir())


def test_a_log_gets_one_line_per_epoch_and_no_tensorflow_noise(tmp_path, mnist_dir):
    """`make train > log` wrote 1.7 MB of progress bars and TensorFlow's C++ start-up lines."""
    r = subprocess.run([sys.executable, "-m", "train", "--arch", "seed", "--epochs", "2", "--limit", "600",
                        "--data-dir", str(mnist_dir), "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("Epoch ") == 2 and "\r" not in r.stdout and "━" not in r.stdout, r.stdout[-500:]
    assert "I0000" not in r.stderr and "oneDNN" not in r.stderr
