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

from dataclasses import dataclass, field

import cv2
import numpy as np

from .lines import page_rules, remove_lines
from .touching import split_boxes

# One OpenCV thread per process: frames are small, so a thread pool costs more than it saves;
# folder classification scales with processes instead; and a process with OpenCV's pool running
# cannot safely fork() workers (they hang on its locks under OpenCV 4.6).
cv2.setNumThreads(1)

WORK_SIDE = 320          # a first look, at this long side, learns the polarity and the text height
FIRST_LOOK_SIDE = 800    # (photos over twice this size get a first look at this long side instead)
TEXT_PX = 48             # then digits are found where they are about this tall (MNIST's are 20 of 28)
MAX_SIDE = 2400          # but never on more than this long side (time, memory)
MIN_DIGIT_PX = 10        # nothing shorter than this, in the input's pixels, is a digit (but in a tiny crop)
MIN_CONTRAST = 20        # ink must stand this far (of 255) above the paper at the least
STRONG_SHARE = 0.2       # a piece is ink when this share of its pixels reach the ink level
OTSU_CAP = 2.5           # the ink level is at most this many times the noise floor
DIM_PAPER = 96           # contrast is relative to the paper, but noise on paper darker than this is not magnified
OFF_PAPER = 0.4          # paper darker than this fraction of the page's bright paper is off the page


@dataclass
class Digit:
    pixels: np.ndarray                 # (28, 28) uint8, white digit on black, MNIST style
    box: tuple[int, int, int, int]     # x, y, w, h in the input image's pixel coordinates
    row: int = 0                       # text row, top to bottom
    splits: list[list[Digit]] = field(default_factory=list, repr=False)   # if it is touching digits


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


def ink_image(gray: np.ndarray, dark: bool, kernel: int) -> np.ndarray:
    """Bright-ink-on-black image with the lighting removed.

    The paper's brightness is what a closing leaves (a max then a min filter wider than any
    stroke): it follows shadows, vignetting and gradients, and keeps a hard edge hard, so a dark
    table around the page or a cast shadow never turns into ink. Dark ink is measured as a
    fraction of the paper's brightness (a stroke in shadow is as dark, relatively, as in light);
    off the paper (far darker than the page) there is no ink. Light ink (chalk) is measured
    above what an opening leaves.
    """
    se = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel))
    op = cv2.MORPH_CLOSE if dark else cv2.MORPH_OPEN
    pad = kernel // 2 + 1
    background = _unpad(cv2.morphologyEx(_extrapolated(gray, pad), op, se), pad)
    if not dark:
        return cv2.subtract(gray, background)
    depth = cv2.subtract(background, gray).astype(np.uint16)
    ink = np.minimum(depth * 255 // np.maximum(background, DIM_PAPER), 255).astype(np.uint8)
    bright = percentiles(background, (90,))[0]
    ink[background < OFF_PAPER * bright] = 0
    return ink


def _extrapolated(gray: np.ndarray, pad: int) -> np.ndarray:
    """The image padded by continuing its gradients (2 x edge - mirror image). A closing near an
    edge otherwise sees only the brighter side of a vignette and calls the dark corner ink."""
    rep = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE).astype(np.int16)
    ref = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REFLECT_101).astype(np.int16)
    return np.clip(2 * rep - ref, 0, 255).astype(np.uint8)


def _unpad(image: np.ndarray, pad: int) -> np.ndarray:
    return image[pad:image.shape[0] - pad, pad:image.shape[1] - pad]


def threshold(ink: np.ndarray) -> tuple[int, int]:
    """(level, low): the ink level is Otsu's, but never below the noise floor (a blank page must
    give no digits) and never far above it (on a page with bold print, Otsu splits print from
    paper and loses a faint pen). The low level, where a stroke's faint joins still count, stays
    above the noise, or noise would join into pieces that reach the level somewhere."""
    otsu, _ = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    hist = np.bincount(ink.ravel(), minlength=256)
    med = int(np.searchsorted(np.cumsum(hist), hist.sum() / 2))
    distance = np.abs(np.arange(256) - med)          # median absolute deviation, from the histogram
    order = np.argsort(distance, kind="stable")
    mad = distance[order][np.searchsorted(np.cumsum(hist[order]), hist.sum() / 2)]
    noise = 1.4826 * mad
    floor = max(med + MIN_CONTRAST, med + 5 * noise)
    level = int(max(floor, min(otsu, OTSU_CAP * floor)))
    return level, int(max(level // 2, med + 3 * noise))


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


def _pieces(ink: np.ndarray, level: int, low: int, allowed: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Ink pieces by hysteresis: connected above `low`, kept if they reach `level`.

    The low level keeps faint joins inside a stroke; the high level rejects paper texture.
    Returns the low-level ink mask (uint8 0/1) and an (n, 5) array of x, y, w, h, area.
    """
    joined = (ink > low).astype(np.uint8)
    if allowed is not None:
        joined &= allowed
    n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    above = np.bincount(labels[(ink > level) & (joined > 0)], minlength=n)
    # A stroke is mostly above the level; noise joined at the low level reaches it in a few pixels.
    strong = above >= STRONG_SHARE * stats[:, cv2.CC_STAT_AREA]
    strong &= above > 0
    strong[0] = False
    return strong[labels].astype(np.uint8), stats[strong]


def text_height(boxes: np.ndarray, shape: tuple[int, int], smallest: float = 3) -> float | None:
    """The height of the page's handwriting from its pieces: a high percentile of the heights of
    the pieces shaped like characters, never the tallest (one rule, box or page edge would
    decide). Not the median either: specks, dots and print are many and small, handwriting is
    larger, and what is measured against this height (rules, specks) must spare its strokes."""
    if not len(boxes):
        return None
    H, W = shape
    x, y, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    inside = (x > 0) & (y > 0) & (x + w < W) & (y + h < H)
    shaped = (h >= smallest) & (w <= 2.0 * h) & (h <= 12 * np.maximum(w, 1))
    heights = h[inside & shaped]
    if not len(heights):    # a crop the digit fills touches the border
        heights = h[shaped]
    if not len(heights):
        return None
    return float(np.percentile(heights, 90))


def _scaled(gray: np.ndarray, f: float) -> np.ndarray:
    if f >= 1:
        return gray
    H, W = gray.shape
    return cv2.resize(gray, (max(1, round(W * f)), max(1, round(H * f))), interpolation=cv2.INTER_AREA)


@dataclass
class Page:
    """What segmentation found at one scale: the ink, its level, the cleaned mask and its pieces."""
    ink: np.ndarray
    level: int
    mask: np.ndarray
    boxes: np.ndarray
    text_height: float | None


def segment(gray: np.ndarray, dark: bool, guess: float | None, smallest: float) -> Page:
    """Ink, lines removed, pieces; `guess` is the text height in these pixels, if known;
    `smallest` is the least height a digit can have here (MIN_DIGIT_PX of the input)."""
    side = max(gray.shape)
    # Wider than any stroke: 0.8 digit heights, or before the height is known, a quarter of the
    # side (one digit may fill a crop or a frame held close to the camera).
    k = 0.8 * guess if guess else side / 4
    ink = ink_image(gray, dark, kernel=max(5, int(k)) | 1)
    level, low = threshold(ink)
    mask, boxes = _pieces(ink, level, low)
    rules = page_rules(mask)
    unruled = _pieces(ink, level, low, allowed=mask & (1 - rules))[1] if rules.any() else boxes
    height = text_height(unruled, gray.shape, max(3.0, smallest))
    if guess:   # the first look could not see small print; at this scale it can, so measure again
        height = float(np.clip(height or guess, 0.7 * guess, 1.5 * guess))
    if height:
        clean, lines = remove_lines(mask, height)
        if lines.any():
            mask, boxes = _pieces(ink, level, low, allowed=clean)
    return Page(ink, level, mask, boxes, height)


def _merge_broken(boxes: list[list[int]], height: float) -> list[list[int]]:
    """Merge the strokes of one digit (the detached bar of a 5 or 7, a broken loop): boxes that
    overlap mostly in x and nearly touch in y, or overlap in area; never into more than a digit's
    height, so a column of digits or a long stroke does not chain everything together."""
    def same_digit(a, b) -> bool:
        y0, y1 = min(a[1], b[1]), max(a[1] + a[3], b[1] + b[3])
        if y1 - y0 > 1.3 * height:
            return False
        overlap_x = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
        overlap_y = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
        if overlap_x > 0.5 * min(a[2], b[2]) and -overlap_y < 0.2 * height:
            return True
        return overlap_x > 0 and overlap_y > 0 and overlap_x * overlap_y > 0.3 * min(a[2] * a[3], b[2] * b[3])

    boxes = [list(b) for b in boxes]
    merged = True
    while merged:      # a sweep in x finds the candidates: both tests need the boxes to overlap in x
        merged = False
        boxes.sort(key=lambda b: b[0])
        out: list[list[int]] = []
        for box in boxes:
            for k in range(len(out) - 1, -1, -1):
                other = out[k]
                if other[0] + other[2] > box[0] and same_digit(other, box):
                    x0, y0 = min(other[0], box[0]), min(other[1], box[1])
                    x1 = max(other[0] + other[2], box[0] + box[2])
                    y1 = max(other[1] + other[3], box[1] + box[3])
                    out[k] = [x0, y0, x1 - x0, y1 - y0, other[4] + box[4]]
                    merged = True
                    break
            else:
                out.append(box)
        boxes = out
    return boxes


def _plausible(boxes: list[list[int]], height: float, smallest: float) -> list[list[int]]:
    """Drop what is not a digit by its size against the text height: specks and dots, dashes,
    what is far taller than the text (a leftover rule), hairlines (the fringe of a page edge)."""
    out = []
    for x, y, w, h, area in boxes:
        if h < max(smallest, 0.3 * height) or h > 2.5 * height or w > 3 * h or w > 3 * height or w < 0.06 * height:
            continue
        out.append([x, y, w, h, area])
    return out


def _rows(boxes: list[list[int]]) -> list[list[list[int]]]:
    """Group boxes into text rows: a box joins the row whose nearest box (in x) overlaps it in y
    by half the smaller height, so rows may tilt; rows top to bottom, each left to right."""
    rows: list[list[list[int]]] = []
    for box in sorted(boxes, key=lambda b: b[0]):
        best, best_overlap = None, 0.0
        for row in rows:
            near = row[-1]
            overlap = min(near[1] + near[3], box[1] + box[3]) - max(near[1], box[1])
            score = overlap / min(near[3], box[3])
            if score > 0.5 and score > best_overlap:
                best, best_overlap = row, score
        if best is None:
            rows.append([box])
        else:
            best.append(box)
    rows.sort(key=lambda row: np.median([b[1] + b[3] / 2 for b in row]))
    return rows


def locate(gray: np.ndarray, single: bool = False) -> tuple[Page, float, list[list[list[int]]]]:
    """The page at its working scale `f` and the digit boxes on it ([x, y, w, h, area] in the
    page's pixels), in rows.

    A first look on a small copy learns the polarity and the text height; then, if the digits
    are small, the page is segmented again at the scale that makes them about TEXT_PX tall, so
    small handwriting on a big page keeps its strokes.
    """
    H, W = gray.shape
    smallest = min(MIN_DIGIT_PX, 0.5 * min(H, W))    # a tiny crop is all digit
    f = min(1.0, (WORK_SIDE if max(H, W) <= 2 * FIRST_LOOK_SIDE else FIRST_LOOK_SIDE) / max(H, W))
    small = _scaled(gray, f)
    dark = dark_ink(small)
    page = segment(small, dark, None, smallest * f)
    if page.text_height and not single:
        want = min(1.0, f * TEXT_PX / page.text_height, MAX_SIDE / max(H, W))
        if want > 1.25 * f:
            page = segment(_scaled(gray, want), dark, page.text_height * want / f, smallest * want)
            f = want
    if not len(page.boxes):
        return page, f, []
    height = page.text_height or page.ink.shape[0] / 4
    boxes = [[int(v) for v in b] for b in page.boxes]
    if single:
        x0 = min(b[0] for b in boxes)
        y0 = min(b[1] for b in boxes)
        x1 = max(b[0] + b[2] for b in boxes)
        y1 = max(b[1] + b[3] for b in boxes)
        return page, f, [[[x0, y0, x1 - x0, y1 - y0, 0]]]
    specks = max(2, 0.25 * height)
    boxes = [b for b in boxes if b[3] >= specks or b[2] >= specks]
    return page, f, _rows(_plausible(_merge_broken(boxes, height), height, smallest * f))


def find_digits(image: np.ndarray, single: bool = False) -> list[Digit]:
    """Every digit in `image`, reading order; `single` treats the whole image as one digit."""
    page, f, rows = locate(to_gray(image), single)
    # Dilated ink mask: keeps anti-aliased stroke edges, drops a neighbour's strokes from the crop.
    near_ink = cv2.dilate(page.mask, np.ones((3, 3), np.uint8)).astype(bool)

    def digit(x: int, y: int, w: int, h: int, r: int) -> Digit:
        pixels = fit_mnist(page.ink[y:y + h, x:x + w], near_ink[y:y + h, x:x + w], page.level)
        return Digit(pixels, (round(x / f), round(y / f), max(1, round(w / f)), max(1, round(h / f))), r)

    digits = []
    for r, row in enumerate(rows):
        typical = float(np.median([b[2] for b in row])) if len(row) >= 3 else None
        for box in row:
            d = digit(*box[:4], r)
            if not single:
                d.splits = [[digit(*part, r) for part in option] for option in split_boxes(page.mask, box, typical)]
            digits.append(d)
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
