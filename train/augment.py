"""Augmentation that mimics handwriting seen through a camera after our preprocessing.

The edge preprocessor re-centres and re-scales every digit, so what still varies on a device is
small residual shift, rotation (the paper is not square to the camera), scale, and stroke
thickness (pen, focus, threshold). Works on float batches (N, 28, 28, 1) inside tf.data.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


def geometric(seed: int) -> keras.Sequential:
    """±10° rotation, ±10 % shift, ±10 % scale; empty border stays background (0)."""
    fill = dict(fill_mode="constant", fill_value=0.0)
    return keras.Sequential(
        [
            layers.RandomRotation(10 / 360, seed=seed, **fill),
            layers.RandomTranslation(0.1, 0.1, seed=seed + 1, **fill),
            layers.RandomZoom((-0.1, 0.1), seed=seed + 2, **fill),
        ],
        name="augment",
    )


def stroke_thickness(x: tf.Tensor, seed: int, strength: float = 0.6) -> tf.Tensor:
    """Blend each image towards its dilation (thicker) or erosion (thinner) by a random amount."""
    t = tf.random.stateless_uniform([tf.shape(x)[0], 1, 1, 1], seed=[seed, 0], minval=-1.0, maxval=1.0)
    dilated = tf.nn.max_pool2d(x, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-x, 3, 1, "SAME")
    thicker = x + tf.maximum(t, 0.0) * strength * (dilated - x)
    return thicker + tf.maximum(-t, 0.0) * strength * (eroded - x)


def augmented_dataset(x, y, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled, batched, augmented training stream (reshuffled every epoch)."""
    geo = geometric(seed)
    counter = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(images, labels):
        step = counter.assign_add(1)
        images = stroke_thickness(images, seed=tf.cast(step, tf.int32) + seed)
        return geo(images, training=True), labels

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    return ds.map(apply, num_parallel_calls=1).prefetch(tf.data.AUTOTUNE)
