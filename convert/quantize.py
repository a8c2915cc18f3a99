"""Keras model -> .tflite bytes, in the four modes a user may want.

Route: `model.export()` to a SavedModel, then `TFLiteConverter.from_saved_model`. The
`from_keras_model` path has known breakages with Keras 3; the SavedModel route is the one
TensorFlow documents for it, and it keeps the batch dimension dynamic (-1), so the edge runtime
can classify many digits in one invoke.
"""
from __future__ import annotations

import logging
import tempfile
from typing import Callable, Iterator

import numpy as np

log = logging.getLogger(__name__)

MODES = ("int8", "float16", "dynamic", "float32")


def calibration_images(x_train: np.ndarray, y_train: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """A class-balanced random sample of training digits (uint8), never test digits."""
    rng = np.random.default_rng(seed)
    per_class = max(1, size // 10)
    picks = [rng.choice(np.flatnonzero(y_train == c), per_class, replace=False) for c in range(10)]
    return x_train[rng.permutation(np.concatenate(picks))]


def strip_names(data: bytes) -> bytes:
    """Drop tensor names, the model description and signature defs (TensorFlow's own strip_strings).

    A device feeds tensors by index and never reads these strings; on a 76k-parameter model they
    are ~2.4 KB of every file. Outputs are bit-identical (tested). --keep-names keeps them for Netron.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def convert(model, mode: str, calibration: np.ndarray | None = None, keep_names: bool = False) -> bytes:
    """Convert `model`; for int8, `calibration` is float model input (N, 28, 28, 1)."""
    import tensorflow as tf

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    with tempfile.TemporaryDirectory(prefix="digit_savedmodel_") as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if mode == "int8":
            if calibration is None or not len(calibration):
                raise ValueError("int8 conversion needs calibration images")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _representative(calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        elif mode == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif mode == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        data = converter.convert()
    return data if keep_names else strip_names(data)


def _representative(calibration: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    def gen():
        for image in calibration:
            yield [image[None].astype(np.float32)]
    return gen
