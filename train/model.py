"""The two architectures and the one definition of input normalization.

`seed` is the classic CNN of the projects this toolkit grew from, kept exactly. `edge` is the
default: small, few multiply-accumulates, and built from ops that quantize to int8 without loss
(Conv + BatchNorm folded at conversion, ReLU, max-pool, and a 3x3 convolution over the final
3x3x64 map as the head: a Dense layer over the flattened map, without a Flatten op).
"""
from __future__ import annotations

import functools

import keras
import numpy as np
from keras import layers

# input = pixel * scale + offset, pixel uint8 with 0 = background and 255 = ink.
# With scale 1/255 and offset 0 the int8 input quantization is exactly pixel - 128: lossless.
NORMALIZATION = {"scale": 1.0 / 255.0, "offset": 0.0}


def normalize(pixels: np.ndarray, normalization: dict = NORMALIZATION) -> np.ndarray:
    """uint8 pixels (N, 28, 28) -> float32 model input (N, 28, 28, 1)."""
    x = pixels.astype(np.float32) * np.float32(normalization["scale"]) + np.float32(normalization["offset"])
    return x[..., None] if x.ndim == 3 else x


def seed_cnn() -> keras.Model:
    """The seeds' CNN, layer for layer (59,933 parameters)."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(30, (5, 5), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(15, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(50, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="seed",
    )


def _conv_bn_relu(x, filters: int, kernel: int = 3, padding: str = "same", bn_momentum: float = 0.99):
    x = layers.Conv2D(filters, kernel, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    return layers.ReLU()(x)


def edge_cnn(bn_momentum: float = 0.99, classes: int = 10) -> keras.Model:
    """Default model for a Pi: conv blocks with BatchNorm, pooling early to keep MACs low.

    bn_momentum 0.99 suits full runs; a run of a few hundred steps needs 0.9 for BatchNorm's
    moving statistics to forget their initial values. classes=11 adds "not a digit".
    """
    block = functools.partial(_conv_bn_relu, bn_momentum=bn_momentum)
    inputs = keras.Input((28, 28, 1))
    x = block(inputs, 16)                      # 28x28x16
    x = layers.MaxPooling2D()(x)               # 14x14
    x = block(x, 32)
    x = block(x, 32)
    x = layers.MaxPooling2D()(x)               # 7x7
    x = block(x, 64)
    x = block(x, 64)
    x = layers.MaxPooling2D()(x)               # 3x3: where a stroke is still matters
    # The head is Flatten + Dense(10) written as a 3x3 convolution over the 3x3 map (the same
    # 576x10 weights): with a dynamic batch, Flatten converts to SHAPE/STRIDED_SLICE/PACK/RESHAPE,
    # which XNNPACK does not take, and the graph ran as two partitions. The pool over the 1x1
    # result only drops the spatial axes.
    x = layers.Dropout(0.3)(x)
    x = layers.Conv2D(classes, 3, padding="valid")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Softmax()(x)
    return keras.Model(inputs, outputs, name="edge")


def build(arch: str, bn_momentum: float = 0.99, classes: int = 10) -> keras.Model:
    if arch == "seed":
        return seed_cnn()
    if arch == "edge":
        return edge_cnn(bn_momentum, classes)
    raise ValueError(f"unknown arch {arch!r}; choose from edge, seed")


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates for one image: Conv2D, DepthwiseConv2D and Dense layers."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            macs += h * w * c * kh * kw
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            macs += h * w * c_out * kh * kw * c_in // layer.groups
        elif isinstance(layer, layers.Dense):
            macs += layer.input.shape[-1] * layer.units
    return int(macs)
