"""Camera-like frames built from real MNIST digits: ink on unevenly lit, noisy, blurred paper.

Used by the tests (and the benchmarks) to write real images and video files with OpenCV.
"""
from __future__ import annotations

import cv2
import numpy as np


ONE_DIGIT_SIZES = (28, 56, 100, 200, 400)


def one_digit_image(digit: np.ndarray, i: int) -> tuple[np.ndarray, bool]:
    """The i-th image of a folder of one-digit files: the MNIST digit at one of ONE_DIGIT_SIZES
    (by i), white on black or, alternating every five images, dark ink on white; and whether its
    ink is dark. A digit that fills its image is the case a wide polarity window is for."""
    size = ONE_DIGIT_SIZES[i % len(ONE_DIGIT_SIZES)]
    image = digit if size == 28 else cv2.resize(digit, (size, size), interpolation=cv2.INTER_AREA)
    dark = bool((i // 5) % 2)
    return (255 - image if dark else image), dark


def paper(h: int, w: int, rng: np.random.Generator, dark: bool = False) -> np.ndarray:
    """A float background with a lighting gradient across it (and a vignette)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    vignette = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    if dark:
        return 45 + 25 * ramp - 10 * vignette
    return 215 + 35 * ramp - 35 * vignette


def frame(digits: list[np.ndarray], rng: np.random.Generator, size=(480, 640), digit_height: int = 120,
          rows: int = 1, dark_ink: bool = True, noise: float = 6.0, blur: float = 1.0) -> np.ndarray:
    """BGR uint8 frame with the given 28x28 MNIST digits laid out in `rows` rows, left to right."""
    h, w = size
    canvas = paper(h, w, rng, dark=not dark_ink)
    per_row = int(np.ceil(len(digits) / rows))
    cell = digit_height  # the 28x28 box, margins included, scaled to this
    for i, digit in enumerate(digits):
        r, c = divmod(i, per_row)
        alpha = cv2.resize(digit, (cell, cell), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
        total_w = per_row * cell * 0.8
        x = int(w / 2 - total_w / 2 + c * cell * 0.8 + rng.integers(-4, 5))
        y = int(h / 2 - rows * cell / 2 + r * cell + rng.integers(-4, 5))
        x, y = int(np.clip(x, 0, w - cell)), int(np.clip(y, 0, h - cell))
        region = canvas[y:y + cell, x:x + cell]
        target = 35.0 if dark_ink else 225.0
        canvas[y:y + cell, x:x + cell] = region + alpha * 0.9 * (target - region)
    if blur:
        canvas = cv2.GaussianBlur(canvas, (0, 0), blur)
    canvas += rng.normal(0, noise, canvas.shape).astype(np.float32)
    gray = np.clip(canvas, 0, 255).astype(np.uint8)
    tint = np.array([0.95, 1.0, 1.05], np.float32)  # a slightly warm white balance
    return np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)


def write_video(path, mnist_test, n_frames: int = 40, seed: int | np.random.Generator = 0, fps: int = 10,
                counts: tuple[int, ...] = (1, 4)):
    """An MJPG .avi of camera-like frames, dark ink on paper or chalk on a board: frame i holds
    counts[i % len(counts)] digits; the ink alternates after each full cycle of counts.

    Returns the true reading of every frame. `seed` may be a Generator to continue its stream.
    """
    images, labels = mnist_test
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    assert writer.isOpened()
    truth = []
    for i in range(n_frames):
        n = counts[i % len(counts)]
        idx = rng.choice(len(images), n, replace=False)
        writer.write(frame([images[j] for j in idx], rng, dark_ink=(i // len(counts)) % 2 == 0))
        truth.append("".join(str(labels[j]) for j in idx))
    writer.release()
    return truth


def digit_accuracy(truth: list[str], readings: list[str]) -> float:
    """Fraction of true digits read right, position by position (a missed or extra digit counts wrong)."""
    right = total = 0
    for t, r in zip(truth, readings):
        total += max(len(t), len(r))
        right += sum(a == b for a, b in zip(t, r)) if len(t) == len(r) else 0
    return right / total
