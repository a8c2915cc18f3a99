"""Image -> MNIST-style 28x28 digits in reading order, the way MNIST itself was made.

The seeds resized a whole photo to 28x28 and inverted it (6 of 10 right on real photos). MNIST
digits are white strokes on pure black, fitted into a 20x20 box by aspect ratio and placed in
28x28 by centre of mass. This module does that for a camera frame or a photo of a page: a first
look learns the polarity and the text height, the page is segmented at the scale that suits the
text (edge/paper.py: polarity and the sheet; edge/ink.py: ink and its pieces; edge/lines.py: rules
and boxes out; edge/layout.py: pieces to digit boxes in rows), and each digit is fitted. Touching
digits get candidate cuts here; the classifier picks among them (edge/touching.py). Pure numpy +
OpenCV; digits are shrunk to 20x20 in integer arithmetic and every other resize is INTER_AREA or
INTER_LINEAR_EXACT, so x86 and ARM read the same (make test-aarch64 checks it, tilted pages and
their levelling turn included).

Every path (camera, folder, debug crops) calls `find_digits`; normalization to model input is
the model manifest's job (edge/interpreter.py), not this module's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .ink import ink_image, pieces, threshold, to_gray
from .layout import SPECK, Box, merge_broken, plausible, row_tilt, rule_tilt, rows as text_rows, text_height, uncut
from .lines import drawn_boxes, page_rules, remove_lines
from .paper import Tiles, dark_ink, paper_surround
from .stats import median
from .touching import split_boxes

# One OpenCV thread per process: frames are small, so a thread pool costs more than it saves;
# folder classification scales with processes instead; and a process with OpenCV's pool running
# cannot safely fork() workers (they hang on its locks under OpenCV 4.6).
cv2.setNumThreads(1)

DIGIT = 28               # MNIST's format: a digit is DIGIT x DIGIT pixels,
FIT = 20                 # fitted into FIT x FIT by aspect ratio, its centre of mass at the centre
WORK_SIDE = 320          # a first look, at this long side, learns the polarity and the text height
FIRST_LOOK_SIDE = 800    # (photos over twice this size get a first look at this long side instead)
SMALL_TEXT_PX = 16       # text shorter than this on the first look is measured again closer (up to FIRST_LOOK_SIDE)
TEXT_PX = 48             # then digits are found where they are about this tall (MNIST's are 20 of 28)
MAX_SIDE = 2400          # but never on more than this long side (time, memory)
REMEASURE = 0.75         # text measured this much shorter once the lines are out was their height, not its own
MEASURED_AGAIN = (0.7, 1.1)  # at the working scale the text height is kept within this range of the first look's
MIN_DIGIT_PX = 8         # nothing shorter than this, in the input's pixels, is a digit (but in a tiny crop):
                         # MNIST digits 8 px tall read 98 %, 7 px 96 %, 6 px 86 % (python -m bench.heights --floor 5)


@dataclass
class Digit:
    pixels: np.ndarray                 # (28, 28) uint8, white digit on black, MNIST style
    box: tuple[int, int, int, int]     # x, y, w, h in the input image's pixel coordinates
    row: int = 0                       # text row, top to bottom
    splits: list[list[Digit]] = field(default_factory=list, repr=False)   # if it is touching digits


def fit_mnist(ink_crop: np.ndarray, mask: np.ndarray, level: int) -> np.ndarray:
    """Crop of bright ink -> DIGIT x DIGIT: stretch, FIT x FIT box by aspect ratio, centre of mass
    at the centre."""
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
    s = FIT / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = shrink_exact(crop, size) if s < 1 else cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR_EXACT)
    out = np.zeros((DIGIT, DIGIT), np.uint8)
    m = cv2.moments(small, binaryImage=False)
    sh, sw = small.shape
    cx, cy = (m["m10"] / m["m00"], m["m01"] / m["m00"]) if m["m00"] > 0 else (sw / 2, sh / 2)
    x0 = min(max(round(DIGIT / 2 - cx), 0), DIGIT - sw)
    y0 = min(max(round(DIGIT / 2 - cy), 0), DIGIT - sh)
    out[y0:y0 + sh, x0:x0 + sw] = small
    return out


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) integer overlaps of input and output pixels, in units of 1/n_out input pixel."""
    edges_in = np.arange(n_in + 1, dtype=np.int64) * n_out
    edges_out = np.arange(n_out + 1, dtype=np.int64) * n_in
    lo = np.maximum(edges_out[:-1, None], edges_in[None, :-1])
    hi = np.minimum(edges_out[1:, None], edges_in[None, 1:])
    return np.maximum(hi - lo, 0)


def shrink_exact(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """INTER_AREA's result computed in integers: the same bytes on x86 and ARM. OpenCV's own
    INTER_AREA at a non-integer ratio sums floats that ARM rounds differently (fused multiply-adds:
    the aarch64 check caught a digit one grey level off, which flipped its reading). For crops
    (a digit to 20x20), where the cost of integer matrix products is nothing."""
    h, w = image.shape
    tw, th = size
    total = _area_weights(h, th) @ image.astype(np.int64) @ _area_weights(w, tw).T
    area = h * w
    return ((2 * total + area) // (2 * area)).astype(np.uint8)      # rounded half up


def first_look(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The small copy the first look sees (WORK_SIDE on its long side, FIRST_LOOK_SIDE for a photo
    over twice that: its small handwriting would vanish at WORK_SIDE), and the 2x3 map to it."""
    side = max(gray.shape)
    return _view(gray, min(1.0, (WORK_SIDE if side <= 2 * FIRST_LOOK_SIDE else FIRST_LOOK_SIDE) / side), 0.0)


def _scaled(gray: np.ndarray, f: float) -> np.ndarray:
    if f >= 1:
        return gray
    H, W = gray.shape
    return cv2.resize(gray, (max(1, round(W * f)), max(1, round(H * f))), interpolation=cv2.INTER_AREA)


def turned(image: np.ndarray, degrees: float, fill: tuple[int, ...] | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """`image` turned by `degrees` (OpenCV's sense) on a canvas that keeps all of it, and the 2x3
    map from its pixels to the canvas's. The new corners repeat the nearest edge pixel (no
    border of their own to be taken for a rule), or take `fill`."""
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    c, n = abs(turn[0, 0]), abs(turn[0, 1])
    W, H = int(np.ceil(w * c + h * n)), int(np.ceil(w * n + h * c))
    turn[0, 2] += (W - w) / 2
    turn[1, 2] += (H - h) / 2
    border = dict(borderMode=cv2.BORDER_REPLICATE) if fill is None else \
        dict(borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return cv2.warpAffine(image, turn, (W, H), flags=cv2.INTER_LINEAR, **border), turn


def _view(gray: np.ndarray, f: float, tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by `tilt` degrees, then at scale `f`; and the 2x3 map from the input's
    pixels to the view's. Turned before it is shrunk: thin strokes survive INTER_AREA better
    than a turn of a small copy."""
    s = min(f, 1.0)
    if not tilt:
        return _scaled(gray, f), np.array([[s, 0, 0], [0, s, 0]])
    view, turn = turned(gray, tilt)
    return _scaled(view, f), np.diag([s, s, 1.0])[:2] @ np.vstack([turn, [0, 0, 1]])


@dataclass
class Page:
    """What segmentation found at one scale: the ink, its level, the cleaned mask and its pieces."""
    ink: np.ndarray
    level: int
    mask: np.ndarray
    boxes: np.ndarray
    text_height: float | None
    surround: np.ndarray | None     # a sheet's flat surround as bright as paper (0/1), if one is seen


def _handwriting_height(mask: np.ndarray, boxes: np.ndarray, least: float) -> float | None:
    """The text height, drawn boxes left out: a form's boxes are many and taller than its
    handwriting. (But what is all boxes is measured: a tiny crop of one boxed digit.)"""
    return (text_height(boxes[~drawn_boxes(mask, boxes)], mask.shape, least)
            or text_height(boxes, mask.shape, least))


def segment(gray: np.ndarray, dark: bool, guess: float | None, smallest: float,
            seen: np.ndarray | None = None) -> Page:
    """Ink, lines removed, pieces; `guess` is the text height in these pixels, if known;
    `smallest` is the least height a digit can have here (MIN_DIGIT_PX of the input); `seen` is
    the surround a smaller copy saw, here (a camera's noise, averaged away there, can leave
    none flat at this scale)."""
    side = max(gray.shape)
    # Wider than any stroke: 0.8 digit heights, or before the height is known, a quarter of the
    # side (one digit may fill a crop or a frame held close to the camera).
    k = 0.8 * guess if guess else side / 4
    tiles = Tiles(gray)
    here = paper_surround(tiles) if dark else None
    surround = here if here is not None else seen
    ink, off_page = ink_image(gray, dark, max(5, int(k)) | 1, bool(guess), surround)
    level, low = threshold(ink, tiles, off_page, seen if here is None else None)
    mask, boxes = pieces(ink, level, low)
    rules = page_rules(mask)
    unruled = pieces(ink, level, low, allowed=mask & (1 - rules))[1] if rules.any() else boxes
    least = max(3.0, smallest)
    height = _handwriting_height(mask, unruled, least)
    if guess:   # the first look could not see small print; at this scale it can, so measure again.
        # Much taller here is not the text: a table the page-wide test kept whole (its rules tilted
        # or broken by a camera's noise) and big print, once noise has fused the small print.
        height = float(np.clip(height or guess, MEASURED_AGAIN[0] * guess, MEASURED_AGAIN[1] * guess))
    if height:
        # Box sides are told from pen strokes by their ink at the working scale only: on a first
        # look's small copy a thin rule is dimmed by the shrinking, and a box side looks stronger.
        clean, lines = remove_lines(mask, height, ink if guess else None)
        if lines.any():
            cleaned, boxes = pieces(ink, level, low, allowed=clean)
            # A grid's pieces or a box fused with its printed label may have set the height: were
            # the pieces much shorter without the lines they took out, take the lines out again
            # for the pieces' height. (At a guessed scale the height is the first look's, kept.)
            again = None if guess else _handwriting_height(cleaned, boxes, least)
            if again and again < REMEASURE * height:
                height = again
                clean, lines = remove_lines(mask, height)
                cleaned, boxes = pieces(ink, level, low, allowed=clean)
            mask = cleaned
    return Page(ink, level, mask, boxes, height, surround)


def locate(gray: np.ndarray, single: bool = False) -> tuple[Page, np.ndarray, list[list[Box]]]:
    """The page at its working scale and the digit boxes on it (in the page's pixels), in rows;
    and the 2x3 map from the input's pixels to the page's.

    A first look on a small copy learns the polarity, the text height and the tilt of the rows
    (of the rules, when digits stand on them and are one piece with them); text that is small
    there is measured again on a larger copy. Then, if the digits are small or the rows tilted,
    the page is segmented again at the scale that makes them about TEXT_PX tall, turned level, so
    small handwriting on a big page keeps its strokes and a tilted page's rules stay straight runs
    (after a closer look, at any larger scale: it only measured). A flat surround as bright as
    paper that the first look sees goes with it to the larger copies (`segment`'s `seen`).
    """
    H, W = gray.shape
    smallest = min(MIN_DIGIT_PX, 0.5 * min(H, W))    # a tiny crop is all digit
    small, to_page = first_look(gray)
    f = to_page[0, 0]
    dark = dark_ink(small)
    page = segment(small, dark, None, smallest * f)
    first_surround, first_map = page.surround, to_page
    closer = min(1.0, FIRST_LOOK_SIDE / max(H, W))
    relooked = not single and bool(page.text_height) and page.text_height < SMALL_TEXT_PX and closer > f
    if relooked:    # strokes of small text are a pixel wide here: a form's boxes and print pass for its characters
        small, to_page = _view(gray, closer, 0.0)
        f = closer
        page = segment(small, dark, None, smallest * f, _moved(first_surround, first_map, to_page, small.shape))
    if page.text_height and not single:
        tilt = row_tilt(page.boxes, page.text_height)
        if tilt is None:
            tilt = rule_tilt(page.mask, page.boxes)
        want = min(1.0, f * TEXT_PX / page.text_height, MAX_SIDE / max(H, W))
        if want > 1.25 * f or tilt or (relooked and want > f):
            want = max(want, f)
            view, to_page = _view(gray, want, tilt)
            page = segment(view, dark, page.text_height * want / f, smallest * want,
                           _moved(first_surround, first_map, to_page, view.shape))
            f = want
    if not len(page.boxes):
        return page, to_page, []
    height = page.text_height or page.ink.shape[0] / 4
    boxes = [Box(*(int(v) for v in b)) for b in page.boxes]
    if single:
        whole = boxes[0]
        for b in boxes[1:]:
            whole = whole.union(b)
        return page, to_page, [[whole]]
    specks = max(2, SPECK * height)
    boxes = [b for b in boxes if b.h >= specks or b.w >= specks]
    boxes = uncut(plausible(merge_broken(boxes, height), height, smallest * f), page.ink.shape)
    return page, to_page, text_rows(boxes)


def _moved(mask: np.ndarray | None, from_map: np.ndarray, to_map: np.ndarray, shape: tuple[int, ...]
           ) -> np.ndarray | None:
    """A 0/1 mask on one view of the input, on another (`from_map`, `to_map`: the 2x3 maps from
    the input's pixels to each); past its edge it continues as at its edge."""
    if mask is None:
        return None
    move = np.vstack([to_map, [0, 0, 1]]) @ np.linalg.inv(np.vstack([from_map, [0, 0, 1]]))
    return cv2.warpAffine(mask, move[:2], (shape[1], shape[0]), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_REPLICATE)


def _in_input(b: Box, to_page: np.ndarray) -> tuple[int, int, int, int]:
    """A box on the page as x, y, w, h in the input's pixels (turned back: the box around its corners)."""
    if not to_page[0, 1]:       # not turned, only scaled
        f = to_page[0, 0]
        return round(b.x / f), round(b.y / f), max(1, round(b.w / f)), max(1, round(b.h / f))
    back = cv2.invertAffineTransform(to_page)
    corners = np.array([[b.x, b.y, 1], [b.right, b.y, 1], [b.x, b.bottom, 1], [b.right, b.bottom, 1]], float)
    xs, ys = (corners @ back.T).T
    x0, y0 = round(xs.min()), round(ys.min())
    return x0, y0, max(1, round(xs.max()) - x0), max(1, round(ys.max()) - y0)


def find_digits(image: np.ndarray, single: bool = False) -> list[Digit]:
    """Every digit in `image`, reading order; `single` treats the whole image as one digit."""
    page, to_page, rows = locate(to_gray(image), single)
    # Dilated ink mask: keeps anti-aliased stroke edges, drops a neighbour's strokes from the crop.
    near_ink = cv2.dilate(page.mask, np.ones((3, 3), np.uint8)).astype(bool)

    def digit(b: Box, r: int) -> Digit:
        x, y, w, h = b.x, b.y, b.w, b.h
        pixels = fit_mnist(page.ink[y:y + h, x:x + w], near_ink[y:y + h, x:x + w], page.level)
        return Digit(pixels, _in_input(b, to_page), r)

    digits = []
    for r, row in enumerate(rows):
        typical = median([b.w for b in row]) if len(row) >= 3 else None
        for box in row:
            d = digit(box, r)
            if not single:
                d.splits = [[digit(part, r) for part in option] for option in split_boxes(page.mask, box, typical)]
            digits.append(d)
    return digits
