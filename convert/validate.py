"""Compare a .tflite model with its Keras source on the full test set, through the edge runtime's code."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge.interpreter import DigitModel


def op_names(model: DigitModel) -> list[str]:
    """Builtin op names in execution order (Flex* would mean Select TF ops, which we forbid)."""
    return [op["op_name"] for op in model.interpreter._get_ops_details()]


def latency_us(model: DigitModel, digits: np.ndarray, batch: int, min_seconds: float = 0.5) -> float:
    """Median-of-3 microseconds per image at a given batch size."""
    chunk = digits[:batch]
    model.predict(chunk)  # warm-up (and tensor allocation for this batch size)
    runs = []
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while True:
            model.predict(chunk)
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds / 3:
                break
        runs.append(elapsed / (n * len(chunk)) * 1e6)
    return float(np.median(runs))


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
             keras_probs: np.ndarray, batch: int = 256) -> dict:
    """Everything the report says about one candidate .tflite file."""
    model = DigitModel(path, manifest=manifest, threads=1)
    result = compare(keras_probs, model.predict(x_test), y_test)
    ops = op_names(model)
    result.update({
        "size_bytes": path.stat().st_size,
        "backend": model.backend,
        "input_dtype": model.input_dtype.name,
        "output_dtype": model.output_dtype.name,
        "ops": sorted(set(ops)),
        "select_tf_ops": any(name.startswith("Flex") for name in ops),
        "latency_us_batch1": round(latency_us(model, x_test, 1), 2),
        f"latency_us_batch{batch}": round(latency_us(model, x_test, batch), 2),
    })
    return result
