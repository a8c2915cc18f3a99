"""Camera image -> MNIST-style 28x28 digits, the way MNIST itself was made.

The seeds resized a whole photo to 28x28 and inverted it (6 of 10 right on real photos). MNIST
digits are white strokes on pure black, fitted into a 20x20 box by aspect ratio and placed in
28x28 by centre of mass. This module reproduces that from camera frames: polarity, uneven
lighting, noise, several digits per frame. Pure numpy + OpenCV; every resize is INTER_AREA or
INTER_LINEAR_EXACT, which give bit-identical results on x86 and ARM.

Every path (camera, folder, debug crops) calls `find_digits`; normalization to model input is
the model manifest's job (edge/interpreter.py), not this module's.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# One OpenCV thread per process: frames are small, so a thread pool costs more than it saves;
# folder classification scales with processes instead; and a process with OpenCV's pool running
# cannot safely fork() workers (they hang on its locks under OpenCV 4.6).
cv2.setNumThreads(1)

WORK_SIDE = 320          # localization runs on an image whose long side is at most this
BACKGROUND_SIDE = 64     # lighting is estimated on a tiny copy: it is smooth, and this is cheap
MIN_CONTRAST = 20        # grey levels above the background that count as ink at the least


@dataclass
class Digit:
    pixels: np.ndarray                 # (28, 28) uint8, white digit on black, MNIST style
    box: tuple[int, int, int, int]     # x, y, w, h in the input image's pixel coordinates
    row: int = 0                       # text row, top to bottom


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, BGR, BGRA; uint8 or uint16) -> 2-D uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def percentiles(image: np.ndarray, qs: tuple[float, ...]) -> list[int]:
    """Percentiles of a uint8 image from its histogram: O(pixels), unlike a sort."""
    cdf = np.cumsum(np.bincount(image.ravel(), minlength=256))
    return [int(np.searchsorted(cdf, q / 100 * (cdf[-1] - 1), side="right")) for q in qs]


_BASIS_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _surface_basis(h: int, w: int) -> np.ndarray:
    """Columns 1, x, y, x², y², xy over an h x w grid (cached: frames of a camera share a size)."""
    if (h, w) not in _BASIS_CACHE:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        x, y = xx.ravel() / w - 0.5, yy.ravel() / h - 0.5
        _BASIS_CACHE[(h, w)] = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1)
    return _BASIS_CACHE[(h, w)]


def lighting_surface(small: np.ndarray, iterations: int = 3) -> np.ndarray:
    """A quadratic surface fitted to the paper, ink excluded: gradients and lens vignetting.

    Robust least squares on a half-resolution grid (a quadratic needs few points): pixels far
    brighter than the fit (ink, in the ink-bright image) are dropped and the fit repeated.
    """
    h, w = small.shape
    sample = small[::2, ::2]
    basis = _surface_basis(*sample.shape)
    z = sample.ravel().astype(np.float32)
    keep = np.ones(z.size, bool)
    for _ in range(iterations):
        b = basis[keep]
        coef = np.linalg.solve(b.T @ b + 1e-3 * np.eye(6, dtype=np.float32), b.T @ z[keep])
        residual = z - basis @ coef
        spread = 1.4826 * float(np.median(np.abs(residual[keep]))) + 1.0
        keep = residual < 2.5 * spread
    return (_surface_basis(h, w) @ coef).reshape(h, w)


def dark_ink(gray: np.ndarray) -> bool:
    """Is the ink darker than the paper? Ink is the minority that stands far out from its
    surroundings, so deviations from a local mean are skewed towards the ink's side: the sign of
    their third moment decides. A lone small digit still counts (a median/percentile rule misses a
    digit covering under 1 % of a frame), and the halo a stroke leaves in the local mean is broad
    but shallow, so it does not outweigh the stroke.
    """
    h, w = gray.shape
    k = max(3, (max(h, w) // 2) | 1)
    local = gray.astype(np.float32) - cv2.blur(gray, (k, k)).astype(np.float32)
    return float(np.mean(local * local * local)) < 0


def ink_image(gray: np.ndarray) -> np.ndarray:
    """Bright-ink-on-black image with the lighting removed.

    Dark ink is inverted, so ink is always bright. Lighting is estimated on
    a tiny copy by two means and the higher one is kept: an opening (which deletes strokes
    thinner than its kernel, and follows shadows of any shape) and a robust quadratic surface
    (which follows vignetting into the corners, where an opening falls short).
    """
    ink = cv2.bitwise_not(gray) if dark_ink(gray) else gray
    h, w = ink.shape
    f = BACKGROUND_SIDE / max(h, w)
    if f < 1:
        small = cv2.resize(ink, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (15, 15))  # wider than any stroke
        opened = cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel).astype(np.float32)
        background = cv2.blur(np.maximum(opened, lighting_surface(small)), (5, 5))
        background = np.clip(background, 0, 255).astype(np.uint8)
        background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR_EXACT)
        return cv2.subtract(ink, background)
    return cv2.subtract(ink, np.full_like(ink, percentiles(ink, (10,))[0]))


def threshold(ink: np.ndarray) -> int:
    """Otsu, but never below the noise floor: a blank page must give no digits."""
    otsu, _ = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    hist = np.bincount(ink.ravel(), minlength=256)
    med = int(np.searchsorted(np.cumsum(hist), hist.sum() / 2))
    distance = np.abs(np.arange(256) - med)          # median absolute deviation, from the histogram
    order = np.argsort(distance, kind="stable")
    mad = distance[order][np.searchsorted(np.cumsum(hist[order]), hist.sum() / 2)]
    noise = 1.4826 * mad
    return int(max(otsu, med + MIN_CONTRAST, med + 5 * noise))


def fit_mnist(ink_crop: np.ndarray, mask: np.ndarray, level: int) -> np.ndarray:
    """Crop of bright ink -> 28x28: stretch, 20x20 box by aspect ratio, centre of mass at the centre."""
    crop = np.where(mask, ink_crop, np.uint8(0))
    floor = level // 2
    hist = np.bincount(crop.ravel(), minlength=256)
    hist[: level + 1] = 0
    if hist.sum():
        peak = int(np.searchsorted(np.cumsum(hist), 0.9 * hist.sum()))   # 90th percentile of the ink
    else:
        peak = int(crop.max())
    lut = np.clip((np.arange(256, dtype=np.float32) - floor) * (255.0 / max(peak - floor, 1)), 0, 255)
    crop = cv2.LUT(crop, lut.astype(np.uint8))
    h, w = crop.shape
    s = 20.0 / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    mode = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR_EXACT
    small = cv2.resize(crop, size, interpolation=mode)
    out = np.zeros((28, 28), np.uint8)
    m = cv2.moments(small, binaryImage=False)
    sh, sw = small.shape
    cx, cy = (m["m10"] / m["m00"], m["m01"] / m["m00"]) if m["m00"] > 0 else (sw / 2, sh / 2)
    x0 = min(max(round(14 - cx), 0), 28 - sw)
    y0 = min(max(round(14 - cy), 0), 28 - sh)
    out[y0:y0 + sh, x0:x0 + sw] = small
    return out


def _pieces(ink: np.ndarray, level: int) -> tuple[np.ndarray, list[list[int]]]:
    """Ink pieces by hysteresis: connected at half the threshold, kept if they reach the threshold.

    The low level keeps faint joins inside a stroke; the high level rejects paper texture.
    Returns the low-level ink mask and [x, y, w, h, area] boxes of the kept pieces.
    """
    low = (ink > level // 2).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(low, connectivity=8)
    strong = np.zeros(n, bool)
    strong[labels[ink > level]] = True
    strong[0] = False
    keep = strong[labels]
    boxes = [[int(v) for v in stats[i]] for i in np.flatnonzero(strong)]
    return keep.astype(np.uint8), boxes


def _merge_broken(boxes: list[list[int]]) -> list[list[int]]:
    """Merge the strokes of one digit: boxes that overlap mostly in x and nearly touch in y
    (the detached bar of a 5 or 7), or that overlap in area (a stroke inside another's box)."""
    def same_digit(a, b) -> bool:
        overlap_x = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
        overlap_y = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
        if overlap_x > 0.5 * min(a[2], b[2]) and -overlap_y < 0.25 * max(a[3], b[3]):
            return True
        return overlap_x > 0 and overlap_y > 0 and overlap_x * overlap_y > 0.3 * min(a[2] * a[3], b[2] * b[3])

    boxes = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if same_digit(a, b):
                    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
                    boxes[i] = [x0, y0, x1 - x0, y1 - y0, a[4] + b[4]]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _plausible(boxes: list[list[int]], shape: tuple[int, int], min_height: int) -> list[list[int]]:
    """Drop what is not a digit: specks, dashes and rules, the paper's edge, much smaller marks."""
    H, W = shape
    out = []
    for x, y, w, h, area in boxes:
        touches = x == 0 or y == 0 or x + w == W or y + h == H
        if h < min_height or w > 2.5 * h or h > 15 * w:
            continue
        if touches and (w > 0.9 * W or h > 0.9 * H):
            continue
        out.append([x, y, w, h, area])
    if out:
        tallest = max(b[3] for b in out)
        out = [b for b in out if b[3] >= 0.4 * tallest]   # digits in one picture are alike in size
    return out


def _rows(boxes: list[list[int]]) -> list[list[list[int]]]:
    """Group boxes into text rows by vertical centre, rows top to bottom, each left to right."""
    rows: list[list[list[int]]] = []
    for box in sorted(boxes, key=lambda b: b[1] + b[3] / 2):
        centre = box[1] + box[3] / 2
        if rows:
            last = rows[-1]
            last_centre = np.mean([b[1] + b[3] / 2 for b in last])
            if abs(centre - last_centre) < 0.5 * np.median([b[3] for b in last]):
                last.append(box)
                continue
        rows.append([box])
    return [sorted(row, key=lambda b: b[0]) for row in rows]


def find_digits(image: np.ndarray, single: bool = False, min_height: float = 0.04) -> list[Digit]:
    """Every digit in `image`, reading order; `single` treats the whole image as one digit.

    min_height is the smallest digit height as a fraction of the image height (multi-digit mode).
    """
    gray = to_gray(image)
    H, W = gray.shape
    f = min(1.0, WORK_SIDE / max(H, W))
    if f < 1:
        gray = cv2.resize(gray, (max(1, round(W * f)), max(1, round(H * f))), interpolation=cv2.INTER_AREA)
    ink = ink_image(gray)
    level = threshold(ink)
    mask, pieces = _pieces(ink, level)
    h_img = gray.shape[0]
    specks = max(2, round(0.02 * h_img))
    pieces = [b for b in pieces if b[3] >= specks or b[2] >= specks]
    if not pieces:
        return []
    if single:
        x0 = min(b[0] for b in pieces)
        y0 = min(b[1] for b in pieces)
        x1 = max(b[0] + b[2] for b in pieces)
        y1 = max(b[1] + b[3] for b in pieces)
        rows = [[[x0, y0, x1 - x0, y1 - y0, 0]]]
    else:
        boxes = _plausible(_merge_broken(pieces), ink.shape, max(3, round(min_height * h_img)))
        rows = _rows(boxes)
    # Dilated ink mask: keeps anti-aliased stroke edges, drops a neighbour's strokes from the crop.
    near_ink = cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(bool)
    digits = []
    for r, row in enumerate(rows):
        for x, y, w, h, _ in row:
            crop_mask = near_ink[y:y + h, x:x + w]
            pixels = fit_mnist(ink[y:y + h, x:x + w], crop_mask, level)
            box = (round(x / f), round(y / f), max(1, round(w / f)), max(1, round(h / f)))
            digits.append(Digit(pixels, box, r))
    return digits


def reading(digits: list[Digit], labels: list[str], confident: list[bool] | None = None) -> str:
    """Predicted labels in reading order; rows separated by newlines, '?' where not confident."""
    out, last_row = [], None
    for i, d in enumerate(digits):
        if last_row is not None and d.row != last_row:
            out.append("\n")
        out.append(labels[i] if confident is None or confident[i] else "?")
        last_row = d.row
    return "".join(out)
