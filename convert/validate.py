"""Compare a .tflite model with its Keras source on the full test set, through the edge runtime's code."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.interpreter import DigitModel

from .timing import per_image_us

BATCH = 256      # the report's second latency column: a folder run's batch


def latency_us(model: DigitModel, digits: np.ndarray, batch: int, min_seconds: float = 0.5) -> float:
    """Median-of-3 microseconds per image at a given batch size."""
    chunk = digits[:batch]
    return per_image_us(lambda: model.predict(chunk), len(chunk), 3, min_seconds / 3)["median"]


def compare(keras_probs: np.ndarray, tflite_probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of both, drop, top-1 agreement, probability differences, per-class change."""
    k_pred, t_pred = keras_probs.argmax(1), tflite_probs.argmax(1)
    k_acc, t_acc = float((k_pred == labels).mean()), float((t_pred == labels).mean())
    diff = np.abs(keras_probs - tflite_probs)
    per_class = {}
    for c in np.unique(labels):          # the digits (a model may have a not-a-digit class too)
        mask = labels == c
        per_class[str(c)] = round(float((t_pred[mask] == c).mean() - (k_pred[mask] == c).mean()) * 100, 3)
    return {
        "test_images": int(len(labels)),
        "keras_accuracy": k_acc,
        "tflite_accuracy": t_acc,
        "drop_pp": round((k_acc - t_acc) * 100, 4),
        "agreement": float((k_pred == t_pred).mean()),
        "disagreements": int((k_pred != t_pred).sum()),
        "prob_abs_diff_mean": float(diff.mean()),
        "prob_abs_diff_max": float(diff.max()),
        "per_class_change_pp": per_class,
    }


def validate(path: Path, manifest: dict, x_test: np.ndarray, y_test: np.ndarray,
             keras_probs: np.ndarray) -> dict:
    """Everything the report says about one candidate .tflite file."""
    model = DigitModel(path, manifest=manifest, threads=1)
    result = compare(keras_probs, model.predict(x_test), y_test)
    ops = model.op_names()
    result.update({
        "size_bytes": path.stat().st_size,
        "backend": model.backend,
        "input_dtype": model.input_dtype.name,
        "output_dtype": model.output_dtype.name,
        "ops": sorted(set(ops)),
        "select_tf_ops": any(name.startswith("Flex") for name in ops),
        "latency_us_batch1": round(latency_us(model, x_test, 1), 2),
        f"latency_us_batch{BATCH}": round(latency_us(model, x_test, BATCH), 2),
    })
    return result
