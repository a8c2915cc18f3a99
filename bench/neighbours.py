"""Is a misread on the labelled photos the model's fault or MNIST's? The labels of each misread
digit's nearest MNIST training digits, in the 28x28 pixels the model sees.

python -m bench.neighbours [--photos DIR] [--model M] [-k 5]
Reads every labelled photo without printed digits (as `make eval-photos` does); where the reading
has as many digits as the label, digits pair up by position. If a misread's neighbours mostly
carry the label the model gave it, MNIST has no digits written that way: a better model of MNIST
will not fix it, training data with such hands would. MNIST comes from MNIST_DIR (or Keras).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from edge.images import read_image
from edge.interpreter import DEFAULT_MODEL, DigitModel
from edge.reading import read
from edge.score import digit_string, read_photo_labels
from train.data import load_mnist

from .photos import DEFAULT_PHOTOS


def nearest_labels(crops: np.ndarray, images: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(len(crops), k) labels of the k nearest images by Euclidean distance on raw pixels."""
    a = crops.reshape(len(crops), -1).astype(np.float32)
    b = images.reshape(len(images), -1).astype(np.float32)
    d2 = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]
    return labels[np.argsort(d2, axis=1)[:, :k]]


def run(photos: Path, model_path: Path, k: int) -> int:
    labels, printed = read_photo_labels(photos / "labels.json")
    model = DigitModel(model_path, quiet=True)
    crops, truth, said, where = [], [], [], []
    for name, label in sorted(labels.items()):
        if name in printed:
            continue
        reading, digits = read(model, read_image(str(photos / name)))
        true = digit_string(label).replace("?", "")
        if len(digits) != len(true):
            print(f"{name}: {len(digits)} digits read for {len(true)}; not paired", file=sys.stderr)
            continue
        crops += [d.pixels for d in digits]
        truth += [int(c) for c in true]
        said += [(d.value, d.confidence) for d in reading.digits]
        where += [f"{name} digit {i + 1}" for i in range(len(true))]
    if not crops:
        print("bench.neighbours: no photo read with as many digits as its label", file=sys.stderr)
        return 1
    (x_train, y_train), _ = load_mnist()
    near = nearest_labels(np.stack(crops), x_train, y_train, k)
    vote = np.array([np.bincount(row, minlength=10).argmax() for row in near])
    truth_a = np.array(truth)
    read_a = np.array([int(v) for v, _ in said])
    wrong = np.flatnonzero(read_a != truth_a)
    print(f"{len(truth)} paired digits: the model reads {len(truth) - len(wrong)} right, "
          f"{k}-NN on MNIST pixels {int((vote == truth_a).sum())}")
    for i in wrong:
        value, confidence = said[i]
        print(f"{where[i]}: true {truth[i]}, read {value} (p {confidence:.3f}); nearest MNIST digits "
              f"{' '.join(map(str, near[i]))} ({int((near[i] == truth[i]).sum())} of {k} are {truth[i]}, "
              f"{int((near[i] == read_a[i]).sum())} are {value})")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.neighbours", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder with images and labels.json")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("-k", type=int, default=5, help="neighbours per digit")
    args = p.parse_args(argv)
    if not (args.photos / "labels.json").is_file():
        print(f"bench.neighbours: no labelled photos at {args.photos}", file=sys.stderr)
        return 1
    return run(args.photos, args.model, args.k)


if __name__ == "__main__":
    sys.exit(main())
