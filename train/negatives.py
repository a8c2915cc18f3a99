"""Not-a-digit examples for the reader's 11th class, drawn with OpenCV, seeded.

A page puts more than handwritten digits in front of the segmenter: printed and written letters,
pieces of rules and boxes that survive line removal, smudges, two digits that touch. Each is
drawn large, then cropped and fitted the way the device fits a piece (longest side to 20 px,
centre of mass at the centre of 28x28), so the class sees what the reader would hand it.
Shapes a digit can take are left out: no O, l, I, S, Z, B, g, q, no near-vertical stroke (a 1).
"""
from __future__ import annotations

import cv2
import numpy as np

LETTERS = "AEFHKMNRVWXaekmnrvwx#%&@*+="
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_PLAIN)


def fit(canvas: np.ndarray) -> np.ndarray:
    """White-on-black drawing -> 28x28 MNIST style (the device's fit, without its contrast step)."""
    ys, xs = np.nonzero(canvas)
    if not len(ys):
        return np.zeros((28, 28), np.uint8)
    crop = canvas[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    s = 20.0 / max(h, w)
    small = cv2.resize(crop, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    m = cv2.moments(small)
    sh, sw = small.shape
    cx, cy = (m["m10"] / m["m00"], m["m01"] / m["m00"]) if m["m00"] else (sw / 2, sh / 2)
    out = np.zeros((28, 28), np.uint8)
    x0, y0 = min(max(round(14 - cx), 0), 28 - sw), min(max(round(14 - cy), 0), 28 - sh)
    out[y0:y0 + sh, x0:x0 + sw] = small
    return out


def _letter(rng: np.random.Generator) -> np.ndarray:
    canvas = np.zeros((120, 120), np.uint8)
    ch = LETTERS[rng.integers(len(LETTERS))]
    font = FONTS[rng.integers(len(FONTS))] | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    cv2.putText(canvas, ch, (20, 90), font, 2.5, 255, int(rng.integers(2, 8)), cv2.LINE_AA)
    return canvas


def _rule_piece(rng: np.random.Generator) -> np.ndarray:
    """A near-horizontal bar, a corner, a T or a cross, or a small box: what is left of a table."""
    canvas = np.zeros((100, 100), np.uint8)
    t = int(rng.integers(2, 7))
    kind = rng.integers(4)
    a = rng.uniform(-0.35, 0.35)                                  # within ~20° of horizontal
    x0, x1 = 10, int(rng.integers(60, 95))
    y = int(rng.integers(30, 70))
    dy = int((x1 - x0) * np.tan(a))
    cv2.line(canvas, (x0, y), (x1, y + dy), 255, t)
    if kind == 1:                                                 # a corner
        cv2.line(canvas, (x0, y), (x0, y + int(rng.integers(15, 40)) * rng.choice([-1, 1])), 255, t)
    elif kind == 2:                                               # a T or a cross
        xm = (x0 + x1) // 2
        cv2.line(canvas, (xm, y - int(rng.integers(0, 30))), (xm, y + int(rng.integers(15, 35))), 255, t)
    elif kind == 3:                                               # a small empty box
        cv2.rectangle(canvas, (x0, y - 25), (x1, y + 10), 255, t)
    return canvas


def _smudge(rng: np.random.Generator) -> np.ndarray:
    canvas = np.zeros((100, 100), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        centre = (int(rng.integers(30, 70)), int(rng.integers(30, 70)))
        major = int(rng.integers(6, 30))
        axes = (major, int(rng.integers(major // 2, major + 1)))      # roundish: a thin one is a 1
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(120, 256)), -1)
    return cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 3))


def _pair(rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """Two digits side by side, touching: one piece that is not one digit."""
    a, b = digits[rng.integers(len(digits), size=2)]
    canvas = np.zeros((28, 56), np.uint8)
    shift = int(rng.integers(16, 22))
    canvas[:, :28] = a
    canvas[:, shift:shift + 28] = np.maximum(canvas[:, shift:shift + 28], b)
    return canvas


def negatives(n: int, digits: np.ndarray, seed: int = 0) -> np.ndarray:
    """n not-a-digit images (n, 28, 28) uint8: letters, rule pieces, smudges, touching pairs."""
    rng = np.random.default_rng(seed)
    makers = (_letter, _rule_piece, _smudge, lambda r: _pair(r, digits))
    weights = np.array([0.45, 0.25, 0.1, 0.2])
    kinds = rng.choice(len(makers), size=n, p=weights)
    return np.stack([fit(makers[k](rng)) for k in kinds])
