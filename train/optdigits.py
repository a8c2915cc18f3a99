"""Hands MNIST lacks: UCI's optical-recognition digits, brought to MNIST's 28x28 form.

MNIST's writers are American: their 1 is a bare stroke, their 7 has no bar, their 4 is closed.
The UCI set's writers (Bogazici University; scikit-learn ships its test part, 1,797 digits by 13
people) write flagged 1s, crossed 7s and open 4s, as much of the world does. Each digit is an 8x8
grid of counts of a 32x32 bitmap: upsampled, with only the core of its blurred stroke kept, it
looks like a blunt-pen digit. The bitmaps were stretched to fill their box, so each copy is
squeezed sideways by a random amount before the device's fit (longest side 20 px, centre of mass
at the centre).
"""
from __future__ import annotations

import hashlib

import cv2
import numpy as np

from .negatives import fit

SOURCE = "UCI optical recognition of handwritten digits (test part), via sklearn.datasets.load_digits"
CORE, SPAN = 0.35, 0.35     # upsampled counts below CORE are background; CORE + SPAN is full ink
SQUEEZE = (0.65, 1.0)       # width kept of the box-filling bitmap


def load() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) counts 0..16 and their labels; bundled with scikit-learn, no download."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    return digits.images.astype(np.uint8), digits.target.astype(np.uint8)


def sha256(counts: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(counts.tobytes() + labels.tobytes()).hexdigest()


def to_mnist(counts: np.ndarray, squeeze: float = 1.0) -> np.ndarray:
    """One 8x8 count grid -> a 28x28 uint8 digit, white on black, as the device would fit it."""
    big = cv2.resize(counts.astype(np.float32) / 16, (32, 32), interpolation=cv2.INTER_CUBIC)
    ink = (np.clip((big - CORE) / SPAN, 0, 1) * 255).round().astype(np.uint8)
    ys, xs = np.nonzero(ink)
    ink = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    width = max(1, round(ink.shape[1] * squeeze))
    return fit(cv2.resize(ink, (width, ink.shape[0]), interpolation=cv2.INTER_AREA))


def other_hands(n: int, counts: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n training digits: the set over and over, each copy squeezed anew."""
    rng = np.random.default_rng(seed)
    pick = np.resize(np.arange(len(counts)), n)
    images = np.stack([to_mnist(counts[i], float(rng.uniform(*SQUEEZE))) for i in pick])
    return images, labels[pick]
