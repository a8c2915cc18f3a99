"""Architectures: the seed exactly as the seeds built it; the default within its edge budget."""
from __future__ import annotations

import numpy as np

from train.model import NORMALIZATION, build, count_macs, normalize


def test_seed_architecture_is_the_seed_cnn():
    from keras import layers

    m = build("seed")
    assert m.count_params() == 59933
    kinds = [type(l).__name__ for l in m.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten",
                     "Dense", "Dense", "Dense"]
    c1, _, c2, _, drop, _, d1, d2, d3 = m.layers
    assert (c1.filters, c1.kernel_size, c1.activation.__name__) == (30, (5, 5), "relu")
    assert (c2.filters, c2.kernel_size, c2.activation.__name__) == (15, (3, 3), "relu")
    assert drop.rate == 0.2
    assert [(d.units, d.activation.__name__) for d in (d1, d2, d3)] == [(128, "relu"), (50, "relu"), (10, "softmax")]
    assert isinstance(m.layers[1], layers.MaxPooling2D) and m.layers[1].pool_size == (2, 2)


def test_seed_macs_by_hand():
    # conv1 24*24*30*25 + conv2 3*3*30*15*10*10 + dense 375*128 + 128*50 + 50*10
    assert count_macs(build("seed")) == 24 * 24 * 30 * 25 + 10 * 10 * 15 * 9 * 30 + 375 * 128 + 128 * 50 + 50 * 10


def test_edge_architecture_fits_the_budget():
    m = build("edge")
    assert m.count_params() <= 150_000
    assert m.output_shape == (None, 10)
    assert count_macs(m) < 6_000_000
    assert build("edge", classes=11).output_shape == (None, 11)      # with "not a digit"


def test_normalization_maps_pixels_to_unit_range():
    x = normalize(np.array([[[0, 255] + [0] * 26] * 28], np.uint8))
    assert x.shape == (1, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == NORMALIZATION["offset"] and abs(x.max() - 1.0) < 1e-6
