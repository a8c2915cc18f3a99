"""Is a misread on the labelled photos the model's fault or MNIST's? The labels of each misread
digit's nearest MNIST training digits, in the 28x28 pixels the model sees, and of its nearest
digits on its own page, in the features the model's last layer reads.

python -m bench.neighbours [--photos DIR] [--model M] [-k 5]
Reads every labelled photo without printed digits (as `make eval-photos` does); where the reading
has as many digits as the label, digits pair up by position. If a misread's neighbours mostly
carry the label the model gave it, MNIST has no digits written that way: a better model of MNIST
will not fix it, training data with such hands would. If its nearest digits on its page are the
writer's own digits of the label it was given, the writer's other digits cannot correct it either
(that probe needs the Keras model the manifest names, beside the .tflite). MNIST comes from
MNIST_DIR (or Keras).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from edge.images import read_image
from edge.interpreter import DEFAULT_MODEL, DigitModel, sha256_file
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


def model_features(model: DigitModel, crops: np.ndarray) -> np.ndarray | None:
    """Unit-length features the last layer of the .tflite's Keras source reads, one row per crop;
    None when that model is not beside the .tflite (a user may have only the .tflite)."""
    manifest = model.manifest
    source = model.model_path.parent / Path(manifest["source_model"]["file"]).name
    if not source.is_file() or sha256_file(source) != manifest["source_model"]["sha256"]:
        print(f"bench.neighbours: {source} is not the model {model.model_path.name} was converted from; "
              "no page neighbours", file=sys.stderr)
        return None
    import keras

    from train.model import normalize
    source_model = keras.saving.load_model(source)
    last = [layer for layer in source_model.layers if layer.weights][-1]
    probe = keras.Model(source_model.inputs, last.input)
    f = probe.predict(normalize(crops, manifest["normalization"]), verbose=0).reshape(len(crops), -1)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-9)


def run(photos: Path, model_path: Path, k: int) -> int:
    labels, printed = read_photo_labels(photos / "labels.json")
    model = DigitModel(model_path, quiet=True)
    crops, truth, said, where, pages = [], [], [], [], []
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
        pages += [name] * len(true)
    if not crops:
        print("bench.neighbours: no photo read with as many digits as its label", file=sys.stderr)
        return 1
    (x_train, y_train), _ = load_mnist()
    crops = np.stack(crops)
    near = nearest_labels(crops, x_train, y_train, k)
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
    features = model_features(model, crops) if len(wrong) else None
    if features is not None:
        pages_a = np.array(pages)
        for i in wrong:
            same = np.flatnonzero((pages_a == pages_a[i]) & (np.arange(len(pages)) != i))
            nearest = same[np.argsort(-(features[same] @ features[i]), kind="stable")[:k]]
            print(f"{where[i]}: nearest on its page in the model's features: true "
                  f"{' '.join(str(truth[j]) for j in nearest)}, read {' '.join(str(read_a[j]) for j in nearest)}")
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
