"""Shared fixtures: real MNIST (from MNIST_DIR), and one small model trained and converted per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    value = os.environ.get("MNIST_DIR")
    if not value or not Path(value).is_dir():   # said once for the session, not once per test
        pytest.exit("set MNIST_DIR to the folder with the four MNIST IDX files "
                    "(CI: ../shared/datasets/mnist); the tests train and validate on real MNIST", returncode=1)
    return Path(value)


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from train.data import load_mnist
    return load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory, mnist_dir) -> Path:
    """A real edge-arch model trained briefly on 12k images: the Keras source for conversion tests."""
    from train.train import TrainConfig, run

    out = tmp_path_factory.mktemp("small_model")
    run(TrainConfig(arch="edge", epochs=2, limit=12000, data_dir=str(mnist_dir), out=out, verbose=0))
    return out / "digit_cnn.keras"


@pytest.fixture(scope="session")
def converted(small_model, tmp_path_factory, mnist_dir):
    """The small model converted to int8 and float32 by the real converter (the gate at its defaults,
    but for the accuracy floor: two epochs on 12k images do not reach the published model's)."""
    from convert.convert import ConvertConfig, run

    out = tmp_path_factory.mktemp("converted")
    report = run(ConvertConfig(keras_model=small_model, out=out, modes=("int8", "float32"),
                               data_dir=str(mnist_dir), min_accuracy=90.0))
    return out, report


@pytest.fixture(scope="session")
def published_model() -> Path:
    path = ROOT / "models" / "digit_int8.tflite"
    assert path.is_file(), "the published model models/digit_int8.tflite is missing"
    return path
