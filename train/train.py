"""Train a digit CNN on MNIST and publish it with a manifest and plots: data -> model -> fit -> evaluate -> save."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import plots
from .atomic import atomic_path, write_text
from .augment import augmented_dataset
from .data import CANONICAL_SHA256, dataset_sha256, load_mnist
from .model import NORMALIZATION, build, count_macs, normalize
from .negatives import negatives

log = logging.getLogger(__name__)

# Per-architecture defaults: the seed is trained exactly as the seeds did it.
DEFAULTS = {
    "seed": dict(epochs=10, batch_size=200, augment=False, peak_lr=1e-3, negatives=0.0),
    "edge": dict(epochs=30, batch_size=128, augment=True, peak_lr=2e-3, negatives=0.15),
}
# The edge model's 11th class: what a page shows besides digits (train/negatives.py). The reader
# drops a piece read as this label.
NOT_A_DIGIT = "x"
MODEL_NAME = "digit_cnn"


@dataclass
class TrainConfig:
    arch: str = "edge"
    epochs: int | None = None
    batch_size: int | None = None
    limit: int | None = None
    data_dir: str | None = None
    out: Path = Path("models")
    seed: int = 42
    h5: bool = False
    val_fraction: float = 0.1
    verbose: int | str = "auto"
    callbacks: list = field(default_factory=list)   # extra Keras callbacks (the benchmark times steps)


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Hold out a seeded random slice of the training set; the test set stays untouched."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * fraction)))
    val, tr = order[:n_val], order[n_val:]
    return (x[tr], y[tr]), (x[val], y[val])


def run(cfg: TrainConfig) -> dict:
    """Train, evaluate on the test set, write model + manifest + plots. Returns the manifest."""
    defaults = DEFAULTS[cfg.arch]
    epochs = cfg.epochs or defaults["epochs"]
    batch_size = cfg.batch_size or defaults["batch_size"]
    keras.utils.set_random_seed(cfg.seed)

    # Data
    (x_train_all, y_train_all), (x_test, y_test) = load_mnist(cfg.data_dir)
    digests = dataset_sha256((x_train_all, y_train_all), (x_test, y_test))
    if cfg.limit:
        x_train_all, y_train_all = x_train_all[: cfg.limit], y_train_all[: cfg.limit]
    (x_train, y_train), (x_val, y_val) = split_validation(x_train_all, y_train_all, cfg.val_fraction, cfg.seed)
    n_digits, n_negatives = len(x_train), int(defaults["negatives"] * len(x_train))
    if n_negatives:
        x_train = np.concatenate([x_train, negatives(n_negatives, x_train, cfg.seed)])
        y_train = np.concatenate([y_train, np.full(n_negatives, 10, y_train.dtype)])
    log.info("training on %d images (%d not digits), validating on %d, testing on %d", len(x_train),
             n_negatives, len(x_val), len(x_test))

    # Model
    steps_per_epoch = int(np.ceil(len(x_train) / batch_size))
    steps = steps_per_epoch * epochs
    labels = [str(i) for i in range(10)] + ([NOT_A_DIGIT] if n_negatives else [])
    model = build(cfg.arch, bn_momentum=0.99 if steps >= 1000 else 0.9, classes=len(labels))
    if defaults["augment"]:
        lr = keras.optimizers.schedules.CosineDecay(
            defaults["peak_lr"] / 10, decay_steps=steps, warmup_target=defaults["peak_lr"],
            warmup_steps=max(1, steps // 10), alpha=0.01,
        )
        train_data = augmented_dataset(normalize(x_train), y_train, batch_size, cfg.seed)
    else:
        lr = defaults["peak_lr"]
        train_data = tf.data.Dataset.from_tensor_slices((normalize(x_train), y_train)).shuffle(
            len(x_train), seed=cfg.seed).batch(batch_size)
    # An EMA of the weights (swapped in when fit ends) smooths the last epochs' noise. Its window
    # (and BatchNorm's) must be short against the run, or a quick run averages in its first steps.
    ema_momentum = min(0.99, 1.0 - 1.0 / max(10.0, 0.05 * steps))
    optimizer = keras.optimizers.Adam(lr, use_ema=defaults["augment"], ema_momentum=ema_momentum)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary(print_fn=log.info)

    # Train
    start = time.perf_counter()
    history = model.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        validation_data=(normalize(x_val), y_val), verbose=cfg.verbose,
                        callbacks=cfg.callbacks)
    train_seconds = time.perf_counter() - start

    # Evaluate (the test set is used here and only here)
    probs = model.predict(normalize(x_test), batch_size=1000, verbose=0)
    y_pred = probs.argmax(axis=1)
    test_accuracy = float((y_pred == y_test).mean())

    # Save
    cfg.out.mkdir(parents=True, exist_ok=True)
    model_path = cfg.out / f"{MODEL_NAME}.keras"
    inference_model = type(model).from_config(model.get_config())  # no optimizer state: 3x smaller
    inference_model.set_weights(model.get_weights())
    with atomic_path(model_path) as tmp:
        inference_model.save(tmp)
    if cfg.h5:
        with atomic_path(cfg.out / f"{MODEL_NAME}.h5") as tmp:
            inference_model.save(tmp)
    with open(model_path, "rb") as f:
        model_sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items() if k != "learning_rate"}
    manifest = {
        "arch": cfg.arch,
        "params": int(model.count_params()),
        "macs": count_macs(model),
        "epochs": epochs,
        "batch_size": batch_size,
        "train_images": int(n_digits),
        "val_images": int(len(x_val)),
        "limit": cfg.limit,
        "augment": defaults["augment"],
        "test_accuracy": test_accuracy,
        "test_errors": int((y_pred != y_test).sum()),
        "val_accuracy": hist["val_accuracy"][-1],
        "train_seconds": round(train_seconds, 1),
        "normalization": NORMALIZATION,
        "input": {"shape": [28, 28, 1], "background": 0, "ink": 255},
        "labels": labels,
        **({"not_a_digit": NOT_A_DIGIT} if n_negatives else {}),
        "negatives": n_negatives,
        "dataset_sha256": digests,
        "dataset_is_canonical": digests == CANONICAL_SHA256,
        "seed": cfg.seed,
        "model_file": model_path.name,
        "model_sha256": model_sha256,
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__},
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "history": hist,
    }
    write_text(cfg.out / f"{MODEL_NAME}.json", json.dumps(manifest, indent=2) + "\n")
    plots.training_curves(hist, cfg.out / "training_curves.png")
    plots.confusion_matrix(y_test, y_pred, cfg.out / "confusion_matrix.png",
                           title=f"{cfg.arch}: {test_accuracy:.2%} on the MNIST test set")
    plots.misclassified(x_test, y_test, y_pred, cfg.out / "misclassified.png")
    return manifest
