"""Other writers' digits (scikit-learn's copy of UCI's optical digits) in MNIST's form."""
from __future__ import annotations

import json

import numpy as np

from bench.neighbours import nearest_labels
from train import optdigits


def test_other_writers_digits_come_out_in_mnists_form(mnist):
    counts, labels = optdigits.load()
    assert counts.shape == (1797, 8, 8) and counts.max() == 16
    assert np.bincount(labels).min() >= 170                  # about 180 of each digit
    x, y = optdigits.other_hands(2000, counts, labels, seed=0)
    assert x.shape == (2000, 28, 28) and x.dtype == np.uint8 and x.max() == 255
    assert np.array_equal(y[:1797], labels) and np.array_equal(y[1797:], labels[:203])
    for image in x[:100]:                                    # the device's fit: longest side 20 px
        rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20
    # Drawn the MNIST way round: most digits' nearest MNIST digits carry their label (71 % here;
    # transposed, mirrored or inverted copies get 17, 25 and 5 %).
    (x_train, y_train), _ = mnist
    near = nearest_labels(x[:1797], x_train[:10000], y_train[:10000], 5)
    vote = np.array([np.bincount(row, minlength=10).argmax() for row in near])
    assert (vote == labels).mean() > 0.6


def test_the_edge_model_trains_on_them_and_its_manifest_says_so(small_model):
    manifest = json.loads((small_model.parent / "digit_cnn.json").read_text())
    hands = manifest["other_hands"]
    assert hands["images"] == int(0.13 * manifest["train_images"]) > 1000
    assert hands["sha256"] == optdigits.sha256(*optdigits.load())
