"""Augmentation that mimics handwriting seen through a camera after our preprocessing.

The edge preprocessor re-centres and re-scales every digit, so what still varies on a device is
small residual shift, rotation (the paper is not square to the camera), scale, stroke thickness
(a ballpoint or pencil on a page is far thinner than MNIST's strokes once its digit is scaled
to 20 px; a marker is bolder) and focus. Works on float batches (N, 28, 28, 1) inside tf.data.

Rotation, scale and shift are one affine warp, so each image is resampled once: chaining
three separate random layers blurs the digits well past anything in the MNIST test set.
"""
from __future__ import annotations

import math

import tensorflow as tf

ROTATION_DEG, SHIFT_PX, SCALE = 10.0, 2.5, 0.1


def random_affine(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Per image: rotate ±10°, scale ±10 %, shift ±2.5 px about the centre; empty border = background."""
    n = tf.shape(x)[0]
    u = tf.random.stateless_uniform([n, 4], seed=seed, minval=-1.0, maxval=1.0)
    theta = u[:, 0] * math.radians(ROTATION_DEG)
    scale = 1.0 + u[:, 1] * SCALE
    tx, ty = u[:, 2] * SHIFT_PX, u[:, 3] * SHIFT_PX
    # Output pixel -> input pixel: p_in = R(-theta) / scale @ (p_out - c - t) + c
    c = (tf.cast(tf.shape(x)[2], tf.float32) - 1) / 2
    cos, sin = tf.cos(theta) / scale, tf.sin(theta) / scale
    a0, a1, b0, b1 = cos, sin, -sin, cos
    a2 = c - a0 * (c + tx) - a1 * (c + ty)
    b2 = c - b0 * (c + tx) - b1 * (c + ty)
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=tf.shape(x)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


THICKER, THINNER = 0.4, 0.9     # how far towards the dilation / the erosion a stroke may go


def stroke_thickness(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Blend each image towards its dilation (thicker) or erosion (thinner) by a random amount.
    Thinning goes further than thickening: thin pens are what MNIST lacks. A thinned stroke is
    re-stretched to full brightness, as the preprocessor's contrast stretch would."""
    t = tf.random.stateless_uniform([tf.shape(x)[0], 1, 1, 1], seed=seed, minval=-1.0, maxval=1.0)
    dilated = tf.nn.max_pool2d(x, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-x, 3, 1, "SAME")
    thicker = x + tf.maximum(t, 0.0) * THICKER * (dilated - x)
    out = thicker + tf.maximum(-t, 0.0) * THINNER * (eroded - x)
    peak = tf.reduce_max(out, axis=[1, 2, 3], keepdims=True)
    return out / tf.maximum(peak, 1e-3)


def focus(x: tf.Tensor, seed: tf.Tensor, strength: float = 0.5) -> tf.Tensor:
    """Blend each image towards a 3x3 blur by a random amount (focus, motion, JPEG)."""
    t = tf.random.stateless_uniform([tf.shape(x)[0], 1, 1, 1], seed=seed, minval=0.0, maxval=strength)
    kernel = tf.constant([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])[:, :, None, None] / 16.0
    blurred = tf.nn.conv2d(x, kernel, strides=1, padding="SAME")
    return x + t * (blurred - x)


def augmented_dataset(x, y, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled, batched, augmented training stream (reshuffled, and re-augmented, every epoch)."""
    def apply(step, batch):
        images, labels = batch
        images = stroke_thickness(images, seed=tf.stack([seed, tf.cast(step, tf.int32) * 3]))
        images = random_affine(images, seed=tf.stack([seed, tf.cast(step, tf.int32) * 3 + 1]))
        return focus(images, seed=tf.stack([seed, tf.cast(step, tf.int32) * 3 + 2])), labels

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    # A step counter that keeps counting across epochs, so no two epochs see the same augmentation.
    counter = tf.data.Dataset.counter()
    return tf.data.Dataset.zip((counter, ds.repeat())).map(apply, num_parallel_calls=2).prefetch(2)
