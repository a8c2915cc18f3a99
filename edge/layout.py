"""Layout: from pieces of ink to digit boxes in rows, measured against the page's text height.

Boxes are `Box`es in the working image's pixels. Every size rule here is relative to the text
height, which comes from the pieces themselves (never the tallest piece).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .stats import median, percentile

SPECK = 0.25             # pieces smaller than this many text heights both ways are specks, not strokes
TEXT_PERCENTILE = 90     # the text height is this percentile of character-shaped pieces' heights
MERGE_HEIGHT = 1.3       # strokes merge into one digit no taller than this many text heights
MERGE_GAP = 0.2          # ... when they overlap in x and are at most this far apart in y
LOCAL_REACH = 3.0        # the text around a piece: level with it, this many text heights left or right
LOCAL_LEAST = 3          # and at least this many character-shaped pieces there
LOCAL_DIGIT = 0.6        # two pieces one above the other, each this share of the text around, are two digits
SMALLEST = 0.3           # a digit is at least this many text heights tall
TALLEST = 2.5            # and at most this many
WIDEST = 3.0             # and no wider than this many heights (its own, and the text's)
HAIRLINE = 0.06          # and wider than this many text heights (a page edge's fringe is not)
ROW_OVERLAP = 0.5        # a box joins a row when it overlaps the row's nearest box by this share
TILT_SPAN = 15.0         # a page tilted up to this many degrees is levelled
TILT_MIN = 2.0           # below this the rows tolerate the tilt (levelling would only resample)
TILT_PIECES = 6          # the tilt of fewer character-shaped pieces than this is not measured
TILT_GAIN = 1.1          # levelled rows must be this much sharper than the unlevelled ones
CUT_SHARE = 0.25         # a piece the frame's edge cuts is read only if it is this large a share of the frame
RULE_SLOPE = 0.35        # a rule's piece is at most this tall for its width (tilted 15 degrees, a digit on it)


class Box(NamedTuple):
    x: int
    y: int
    w: int
    h: int
    area: int = 0        # ink pixels in it (0 where nobody counted them)

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def union(self, other: "Box") -> "Box":
        x0, y0 = min(self.x, other.x), min(self.y, other.y)
        x1, y1 = max(self.right, other.right), max(self.bottom, other.bottom)
        return Box(x0, y0, x1 - x0, y1 - y0, self.area + other.area)


def at_edge(x, y, w, h, shape: tuple[int, int]):
    """Whether pieces at x, y, w, h (numbers, or arrays of them) touch the image's edge, where it
    may cut them."""
    H, W = shape
    return (x <= 0) | (y <= 0) | (x + w >= W) | (y + h >= H)


def text_height(boxes: np.ndarray, shape: tuple[int, int], smallest: float = 3) -> float | None:
    """The height of the page's handwriting from its pieces: a high percentile of the heights of
    the pieces shaped like characters, never the tallest (one rule, box or page edge would
    decide). Not the median either: specks, dots and print are many and small, handwriting is
    larger, and what is measured against this height (rules, specks) must spare its strokes."""
    if not len(boxes):
        return None
    x, y, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    inside = ~at_edge(x, y, w, h, shape)
    shaped = character_shaped(w, h, smallest)
    heights = h[inside & shaped]
    if not len(heights):    # a crop the digit fills touches the border
        heights = h[shaped]
    if not len(heights):
        return None
    return percentile(heights, TEXT_PERCENTILE)


def character_shaped(w: np.ndarray, h: np.ndarray, smallest: float) -> np.ndarray:
    """Which pieces of widths `w` and heights `h` are shaped like characters: at least `smallest`
    tall, at most twice as wide as tall (not a rule), at most 12 times as tall as wide (not a hairline)."""
    return (h >= smallest) & (w <= 2.0 * h) & (h <= 12 * np.maximum(w, 1))


def row_tilt(boxes: np.ndarray, height: float) -> float | None:
    """The angle (degrees, OpenCV's sense) that levels the page's text rows, 0 when they are level
    enough, None when too few pieces to tell. The centres of character-shaped pieces are projected
    across each candidate angle; rows are level where the projection is sharpest. Centres, not
    ink: a digit's strokes have slants of their own, its centre sits on the row."""
    if not len(boxes):
        return None
    x, y, w, h = (boxes[:, i].astype(np.float64) for i in range(4))
    shaped = (h >= SMALLEST * height) & (h <= 1.5 * height) & (w <= 3 * h)     # digit-sized: not dots, not rules
    if shaped.sum() < TILT_PIECES:
        return None
    quarter = max(1.0, median(h[shaped]) / 4)          # bins a quarter of a digit high
    return _sharpest(x[shaped] + w[shaped] / 2, y[shaped] + h[shaped] / 2, quarter)


def rule_tilt(mask: np.ndarray, boxes: np.ndarray) -> float:
    """The angle that levels the page's rules, or 0: for ruled paper whose digits sit on the rules,
    where digit and rule are one piece and row_tilt has too few pieces. A rule is a piece a quarter
    of the page wide and flat (its height no more than a tilted rule's plus a digit's); all of its
    ink is projected, a rule's pixels outnumber the digits' on it."""
    if not len(boxes):
        return 0.0
    x, y, w, h = (boxes[:, i] for i in range(4))
    flat = (w >= mask.shape[1] / 4) & (h <= RULE_SLOPE * w)
    xs, ys = [], []
    for bx, by, bw, bh in zip(x[flat], y[flat], w[flat], h[flat]):
        yy, xx = np.nonzero(mask[by:by + bh, bx:bx + bw])
        xs.append(xx + bx)
        ys.append(yy + by)
    if not xs:
        return 0.0
    return _sharpest(np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64), 1.0)


def _sharpest(cx: np.ndarray, cy: np.ndarray, step: float) -> float:
    """The angle within TILT_SPAN at which the points' projection across it (sum of squared counts
    in bins of `step`) is sharpest, or 0 if under TILT_MIN or not TILT_GAIN sharper than level."""
    def sharpness(angle: float) -> float:
        t = np.deg2rad(angle)
        across = (cy * np.cos(t) - cx * np.sin(t)) / step
        counts = np.bincount((across - across.min()).astype(np.int64)).astype(np.float64)
        return float((counts * counts).sum())

    coarse = np.arange(-TILT_SPAN, TILT_SPAN + 1e-9, 0.5)
    coarse = coarse[np.argsort(np.abs(coarse), kind="stable")]    # ties go to the smaller angle
    best = float(coarse[int(np.argmax([sharpness(a) for a in coarse]))])
    fine = best + np.arange(-0.4, 0.41, 0.1)
    best = float(fine[int(np.argmax([sharpness(a) for a in fine]))])
    if abs(best) < TILT_MIN or sharpness(best) < TILT_GAIN * sharpness(0.0):
        return 0.0
    return best


def merge_broken(boxes: list[Box], height: float) -> list[Box]:
    """Merge the strokes of one digit (the detached bar of a 5 or 7, a broken loop): boxes that
    overlap mostly in x and nearly touch in y, or overlap in area; never into more than a digit's
    height, so a column of digits or a long stroke does not chain everything together.

    A digit's height is the page's text height, or where the text is smaller (the far end of a
    page seen in perspective, a row of small handwriting) the height of the text around: two small
    digits one above the other are not one digit, though together they are no taller than the
    page's."""
    found: list[np.ndarray] = []      # the pieces' centres and heights, when first asked for

    def text_around(merged: Box) -> float:
        """The text height beside `merged`: of the character-shaped pieces level with it, within
        LOCAL_REACH text heights left or right and outside it (the page's, with too few)."""
        if not found:
            x, y, w, h = np.array([b[:4] for b in pieces], float).T
            found.extend([x + w / 2, y + h / 2, h, character_shaped(w, h, SMALLEST * height)])
        cx, cy, hs, shaped = found
        near = (shaped & (np.abs(cx - (merged.x + merged.w / 2)) <= LOCAL_REACH * height)
                & (cy >= merged.y) & (cy <= merged.bottom)
                & ~((cx >= merged.x) & (cx <= merged.right)))
        return percentile(hs[near], TEXT_PERCENTILE) if near.sum() >= LOCAL_LEAST else height

    def same_digit(a: Box, b: Box) -> bool:
        tall = max(a.bottom, b.bottom) - min(a.y, b.y)
        if tall > MERGE_HEIGHT * height:
            return False
        if min(a.bottom, b.bottom) <= max(a.y, b.y) and tall > MERGE_HEIGHT * min(a.h, b.h):
            local = text_around(a.union(b))     # one above the other, each perhaps a digit
            if tall > MERGE_HEIGHT * local and min(a.h, b.h) >= LOCAL_DIGIT * local:
                return False
        overlap_x = min(a.right, b.right) - max(a.x, b.x)
        overlap_y = min(a.bottom, b.bottom) - max(a.y, b.y)
        if overlap_x > 0.5 * min(a.w, b.w) and -overlap_y < MERGE_GAP * height:
            return True
        return overlap_x > 0 and overlap_y > 0 and overlap_x * overlap_y > 0.3 * min(a.w * a.h, b.w * b.h)

    boxes = pieces = list(boxes)
    merged = True
    while merged:      # a sweep in x finds the candidates: both tests need the boxes to overlap in x
        merged = False
        boxes.sort(key=lambda b: b.x)
        out: list[Box] = []
        rights = np.empty(len(boxes), np.int64)     # out's right edges (a page has thousands of pieces)
        for box in boxes:
            for k in np.flatnonzero(rights[:len(out)] > box.x)[::-1]:
                if same_digit(out[k], box):
                    out[k] = out[k].union(box)
                    rights[k] = out[k].right
                    merged = True
                    break
            else:
                rights[len(out)] = box.right
                out.append(box)
        boxes = out
    return boxes


def plausible(boxes: list[Box], height: float, smallest: float) -> list[Box]:
    """Drop what is not a digit by its size against the text height: specks and dots, dashes,
    what is far taller than the text (a leftover rule), hairlines (the fringe of a page edge)."""
    return [b for b in boxes if max(smallest, SMALLEST * height) <= b.h <= TALLEST * height
            and HAIRLINE * height <= b.w <= WIDEST * min(b.h, height)]


def uncut(boxes: list[Box], shape: tuple[int, int]) -> list[Box]:
    """Drop pieces the image's edge cuts: what lies half outside the picture (a digit, a grid line,
    a shadow) reads as some other digit, a 4's stem as a 1. A piece that is a large share of the
    frame (CUT_SHARE of its height or width) stays: a crop, or a frame the digit fills."""
    H, W = shape
    return [b for b in boxes if not (at_edge(b.x, b.y, b.w, b.h, shape)
                                     and b.h < CUT_SHARE * H and b.w < CUT_SHARE * W)]


def rows(boxes: list[Box]) -> list[list[Box]]:
    """Group boxes into text rows: a box joins the row whose nearest box (in x) overlaps it in y
    by half the smaller height, so rows may tilt; rows top to bottom, each left to right."""
    found: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: b.x):
        best, best_overlap = None, 0.0
        for row in found:
            near = row[-1]
            overlap = min(near.bottom, box.bottom) - max(near.y, box.y)
            score = overlap / min(near.h, box.h)
            if score > ROW_OVERLAP and score > best_overlap:
                best, best_overlap = row, score
        if best is None:
            found.append([box])
        else:
            best.append(box)
    found.sort(key=lambda row: median([b.y + b.h / 2 for b in row]))
    return found
