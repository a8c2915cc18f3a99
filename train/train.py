"""Train a digit CNN on MNIST: data -> model -> train -> evaluate -> save (model, manifest, plots)."""
from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edge.atomic import atomic_path, write_text
from edge.interpreter import sha256_file
from . import optdigits, plots
from .augment import augmented_dataset
from .config import MODEL_NAME, NOT_A_DIGIT, TrainConfig
from .data import CANONICAL_SHA256, dataset_sha256, load_mnist
from .model import NORMALIZATION, build, count_macs, normalize
from .negatives import negatives

log = logging.getLogger(__name__)


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    digests: dict            # sha256 of the four arrays, to say which MNIST this was
    digits: int              # training images that are MNIST digits
    negatives: int           # generated non-digits (the 11th class)
    other_hands: dict        # other writers' digits: how many, from where, their sha256
    labels: list[str]        # class names, index = class


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Hold out a seeded random slice of the training set; the test set stays untouched."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * fraction)))
    val, tr = order[:n_val], order[n_val:]
    return (x[tr], y[tr]), (x[val], y[val])


def prepare_data(cfg: TrainConfig) -> Data:
    """MNIST, a validation slice of its training set, generated non-digits as an 11th class, and
    other writers' digits. Validation and test stay MNIST only."""
    (x_all, y_all), (x_test, y_test) = load_mnist(cfg.data_dir)
    digests = dataset_sha256((x_all, y_all), (x_test, y_test))
    if cfg.limit:
        x_all, y_all = x_all[: cfg.limit], y_all[: cfg.limit]
    (x_train, y_train), (x_val, y_val) = split_validation(x_all, y_all, cfg.val_fraction, cfg.seed)
    digits, n_negatives = len(x_train), int(cfg.negatives * len(x_train))
    n_hands = int(cfg.other_hands * len(x_train))
    labels = [str(i) for i in range(10)]
    if n_negatives:
        x_train = np.concatenate([x_train, negatives(n_negatives, x_train, cfg.seed)])
        y_train = np.concatenate([y_train, np.full(n_negatives, len(labels), y_train.dtype)])
        labels.append(NOT_A_DIGIT)
    hands = {"images": n_hands}
    if n_hands:
        counts, hand_labels = optdigits.load()
        x_hands, y_hands = optdigits.other_hands(n_hands, counts, hand_labels, cfg.seed)
        x_train, y_train = np.concatenate([x_train, x_hands]), np.concatenate([y_train, y_hands])
        hands.update(source=optdigits.SOURCE, sha256=optdigits.sha256(counts, hand_labels))
    log.info("training on %d images (%d not digits, %d from other writers), validating on %d, testing on %d",
             len(x_train), n_negatives, n_hands, len(x_val), len(x_test))
    return Data(x_train, y_train, x_val, y_val, x_test, y_test, digests, digits, n_negatives, hands, labels)


def compiled_model(cfg: TrainConfig, steps: int, classes: int) -> keras.Model:
    """The architecture with its optimizer: the edge model warms up and decays on a cosine, and
    keeps an EMA of its weights (swapped in when fit ends) to smooth the last epochs' noise."""
    model = build(cfg.arch, bn_momentum=0.99 if steps >= 1000 else 0.9, classes=classes)
    if cfg.augment:
        lr = keras.optimizers.schedules.CosineDecay(
            cfg.peak_lr / 10, decay_steps=steps, warmup_target=cfg.peak_lr,
            warmup_steps=max(1, steps // 10), alpha=0.01,
        )
    else:
        lr = cfg.peak_lr
    # The EMA's window (and BatchNorm's) must be short against the run, or a quick run averages
    # in its first steps.
    ema_momentum = min(0.99, 1.0 - 1.0 / max(10.0, 0.05 * steps))
    optimizer = keras.optimizers.Adam(lr, use_ema=cfg.augment, ema_momentum=ema_momentum)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary(print_fn=log.info)
    return model


def training_dataset(cfg: TrainConfig, data: Data) -> tf.data.Dataset:
    if cfg.augment:
        return augmented_dataset(normalize(data.x_train), data.y_train, cfg.batch_size, cfg.seed)
    return tf.data.Dataset.from_tensor_slices((normalize(data.x_train), data.y_train)).shuffle(
        len(data.x_train), seed=cfg.seed).batch(cfg.batch_size)


def save_model(model: keras.Model, cfg: TrainConfig) -> Path:
    """The .keras file without optimizer state (3x smaller), and the seeds' .h5 if asked."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    path = cfg.out / f"{MODEL_NAME}.keras"
    inference_model = type(model).from_config(model.get_config())
    inference_model.set_weights(model.get_weights())
    with atomic_path(path) as tmp:
        inference_model.save(tmp)
    if cfg.h5:
        with atomic_path(cfg.out / f"{MODEL_NAME}.h5") as tmp:
            inference_model.save(tmp)
    return path


def run(cfg: TrainConfig) -> dict:
    """Train, evaluate on the test set, write model + manifest + plots. Returns the manifest."""
    keras.utils.set_random_seed(cfg.seed)
    data = prepare_data(cfg)

    steps_per_epoch = int(np.ceil(len(data.x_train) / cfg.batch_size))
    model = compiled_model(cfg, steps_per_epoch * cfg.epochs, len(data.labels))

    start = time.perf_counter()
    history = model.fit(training_dataset(cfg, data), epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
                        validation_data=(normalize(data.x_val), data.y_val), verbose=cfg.verbose, shuffle=False,
                        callbacks=cfg.callbacks)
    train_seconds = time.perf_counter() - start

    # Evaluate (the test set is used here and only here)
    y_pred = model.predict(normalize(data.x_test), batch_size=1000, verbose=0).argmax(axis=1)
    test_accuracy = float((y_pred == data.y_test).mean())

    model_path = save_model(model, cfg)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items() if k != "learning_rate"}
    manifest = {
        "arch": cfg.arch,
        "params": int(model.count_params()),
        "macs": count_macs(model),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "train_images": int(data.digits),
        "val_images": int(len(data.x_val)),
        "limit": cfg.limit,
        "augment": cfg.augment,
        "test_accuracy": test_accuracy,
        "test_errors": int((y_pred != data.y_test).sum()),
        "val_accuracy": hist["val_accuracy"][-1],
        "train_seconds": round(train_seconds, 1),
        "normalization": NORMALIZATION,
        "input": {"shape": [28, 28, 1], "background": 0, "ink": 255},
        "labels": data.labels,
        **({"not_a_digit": NOT_A_DIGIT} if NOT_A_DIGIT in data.labels else {}),
        "negatives": data.negatives,
        "other_hands": data.other_hands,
        "dataset_sha256": data.digests,
        "dataset_is_canonical": data.digests == CANONICAL_SHA256,
        "seed": cfg.seed,
        "model_file": model_path.name,
        "model_sha256": sha256_file(model_path),
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__},
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "history": hist,
    }
    write_text(cfg.out / f"{MODEL_NAME}.json", json.dumps(manifest, indent=2) + "\n")
    plots.training_curves(hist, cfg.out / "training_curves.png")
    plots.confusion_matrix(data.y_test, y_pred, cfg.out / "confusion_matrix.png",
                           title=f"{cfg.arch}: {test_accuracy:.2%} on the MNIST test set")
    plots.misclassified(data.x_test, data.y_test, y_pred, cfg.out / "misclassified.png")
    return manifest
