"""Ruled, squared, table and box lines: found and taken out of the ink before digits are looked for.

A 1 or the bar of a 7 is a line too, so what makes a line a rule is its length against the
text height and what it meets: a thin run longer than ~1.6 digit heights, or a shorter vertical
run that ends on a horizontal rule at both ends (the side of a box or a table cell). Where a
stroke crosses a removed line, the gap is bridged again, so a digit written across a rule keeps
its stroke.
"""
from __future__ import annotations

import cv2
import numpy as np

from .ink import components, spread
from .stats import percentile

H_RUN = 1.6                 # a straight run this many text heights long is a rule, never a digit's stroke
V_RUN = 0.5                 # vertical runs this long between two horizontal rules are box sides
LINE_THICKNESS = 0.25       # a rule's ink is no thicker than this many text heights (a bold stroke is)
GAP = 0.15                  # dotted and dashed rules: gaps this many text heights wide are closed
BRIDGE = 0.15               # a stroke crossing a removed rule is bridged over this many text heights
RULE_THICKNESS = 0.05       # before the text height is known: a page-long rule is this thin for its length
PAGE_RULE_THICKNESS = 0.01  # and at most this fraction of the page's side
BOX_SIDE = 0.85             # a drawn box: ink along this share of two rows and of both sides between them
BOX_LEAST = 8               # (pixels) smaller pieces are not looked at as boxes
SIDE_STRENGTH = 1.65        # a "box side" this many times as strong as the rules' ink is a pen stroke in a grid cell


def _runs(mask: np.ndarray, length: int, horizontal: bool, gap: int = 1) -> np.ndarray:
    """Pixels on straight runs of at least `length`. A 1-pixel thickening across the run lets
    slightly tilted lines (a photo's perspective) keep their runs, and closing gaps of `gap`
    along it joins dotted and dashed rules."""
    length, gap = max(3, int(length)), max(1, int(gap))
    across, along = ((3, 1), (1, gap)) if horizontal else ((1, 3), (gap, 1))
    thick = cv2.dilate(mask, np.ones(across, np.uint8))
    if gap > 1:
        thick = cv2.morphologyEx(thick, cv2.MORPH_CLOSE, np.ones(along, np.uint8))
    # A row (column) holding less ink than `length` holds no such run; counting is cheaper than opening.
    if cv2.reduce(thick, 1 if horizontal else 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).max() < length:
        return np.zeros_like(thick)
    line = (1, length) if horizontal else (length, 1)
    # Outside the image is not ink: by default OpenCV's erosion treats it as ink, and a kernel
    # longer than a small crop then keeps a digit's bar as a "run".
    return cv2.morphologyEx(thick, cv2.MORPH_OPEN, np.ones(line, np.uint8),
                            borderType=cv2.BORDER_CONSTANT, borderValue=0)


def _ink_on(runs: np.ndarray, mask: np.ndarray, horizontal: bool) -> np.ndarray:
    """The ink pixels a run covers (a run was found on ink thickened by one pixel across)."""
    if not runs.any():      # (most frames have no rule: skip the dilation)
        return np.zeros_like(mask)
    across = (3, 1) if horizontal else (1, 3)
    return cv2.dilate(runs, np.ones(across, np.uint8)) & mask


def _box_sides(vertical: np.ndarray, horizontal: np.ndarray, reach: int,
               ink: np.ndarray | None = None, limit: float = 0.0) -> np.ndarray:
    """The vertical runs that end on a horizontal line at both ends: the sides of boxes, cells
    and grid squares. A digit's stroke may touch one rule (a 1 standing on a line), rarely two.
    With `ink` (its strength on the ink's pixels, 0 elsewhere), a side is also drawn no stronger
    than `limit` (90th percentile): a 1 or a 9's stem written in pen in a square of a faint
    printed grid ends on two rules too."""
    if not vertical.any():
        return vertical
    n, labels, stats = components(vertical)
    near = cv2.dilate(horizontal, np.ones((2 * reach + 1, 3), np.uint8))
    H, W = vertical.shape
    keep = np.zeros(n, bool)
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        top = near[y:min(H, y + reach + 1), x:x + w].any()
        bottom = near[max(0, y + h - reach - 1):y + h, x:x + w].any()
        keep[i] = top and bottom
        if keep[i] and ink is not None:
            x0, x1 = max(0, x - 1), min(W, x + w + 1)       # the run and a pixel either side
            crop = ink[y:y + h, x0:x1]
            on = _ink_on((labels[y:y + h, x0:x1] == i).astype(np.uint8), (crop > 0).astype(np.uint8), False)
            strength = crop[on > 0]
            keep[i] = not len(strength) or percentile(strength, 90) <= limit
    return spread(keep, labels, vertical)


def _thin(runs: np.ndarray, mask: np.ndarray, horizontal: bool, thickest: float,
          for_length: bool = False) -> np.ndarray:
    """The runs whose ink is thin, as rules are: at most `thickest` pixels of ink across them and,
    with `for_length`, at most RULE_THICKNESS of their length too (a digit's stroke is ~1/8 as
    thick as it is long, so a 1 filling a crop or a frame held close to the camera is no rule).
    Ink is counted around the run, not the run itself: a straight sliver inside a thick slanted
    stroke is a run, but the stroke around it is thick."""
    if not runs.any():
        return runs
    n, labels, stats = components(runs)
    reach = int(thickest) + 1
    across = (2 * reach + 1, 1) if horizontal else (1, 2 * reach + 1)
    # Each pixel takes the largest run label within reach across it (labels are exact in 16 bits, or float32)
    near = cv2.dilate(labels.astype(np.uint16 if n < 1 << 16 else np.float32), np.ones(across, np.uint8))
    ink = np.bincount(near[mask > 0].astype(np.int64), minlength=n)      # (0, no run, is dropped below)
    length = stats[:, cv2.CC_STAT_WIDTH if horizontal else cv2.CC_STAT_HEIGHT].astype(np.float64)
    limit = np.minimum(RULE_THICKNESS * length, thickest) if for_length else thickest
    thin = ink <= limit * length
    thin[0] = False
    return spread(thin, labels, runs)


def _thin_along(runs: np.ndarray, mask: np.ndarray, thickest: float) -> np.ndarray:
    """The horizontal runs that are thin along at least half their length, as rules are: at most
    `thickest` pixels of ink across the run there, and no square of ink that wide around it (a
    sliver inside a thick stroke). Only the ink in the run is counted, not `_thin`'s ink around
    it: a form's box is hardly taller than its digits, and a camera's blur joins its printed
    label to its top rule and the digits to its bottom one, so the ink around its rules is
    thick while they are not. (Box sides and page-wide rules keep `_thin`: several strokes side
    by side that a box side's test joins are thick by it, and a grid whose horizontal rules alone
    came out before the text height is known would leave its cell sides to pass for text.)"""
    if not runs.any():
        return runs
    n, labels, stats = components(runs)
    start = stats[:, cv2.CC_STAT_LEFT].astype(np.int64)
    length = stats[:, cv2.CC_STAT_WIDTH].astype(np.int64)
    length[0] = 0                                           # (label 0 is no run)
    offset = np.r_[0, np.cumsum(length)[:-1]]               # the runs' columns, one run after another

    def per_column(where: np.ndarray) -> np.ndarray:
        at = np.flatnonzero(where.view(bool))              # (on a 0/1 image, much faster than np.nonzero)
        label = labels.ravel()[at]
        return np.bincount(offset[label] + at % mask.shape[1] - start[label], minlength=length.sum())

    side = int(thickest) + 1
    thick = cv2.erode(mask, np.ones((side, side), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    ok = (per_column(runs & mask) <= thickest) & (per_column(runs & thick) == 0)
    thin = np.zeros(n, bool)
    thin[1:] = np.add.reduceat(ok, offset[1:]) >= length[1:] // 2 + 1
    return spread(thin, labels, runs)


def drawn_boxes(mask: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which pieces hold a drawn rectangle: a form's box or a table's cell too short to be a rule,
    perhaps fused with its printed label or its digits in a blurred frame. Two nearly full rows
    half the piece's height apart or more, and ink down both sides between them; a digit rarely
    has such corners (6 of MNIST's 10,000 test digits: square 0s and 8s). For the text height
    only: a form's boxes are many and taller than its handwriting."""
    found = np.zeros(len(boxes), bool)
    for i in np.flatnonzero((boxes[:, 2] >= BOX_LEAST) & (boxes[:, 3] >= BOX_LEAST)):
        x, y, w, h = (int(v) for v in boxes[i, :4])
        crop = mask[y:y + h, x:x + w] > 0
        full = np.flatnonzero(crop.mean(1) >= BOX_SIDE)
        if len(full) < 2 or full[-1] - full[0] < 0.5 * h:
            continue
        between = crop[full[0]:full[-1] + 1]
        band = max(1, round(0.1 * min(w, h)))
        found[i] = min(between[:, :band].any(1).mean(), between[:, -band:].any(1).mean()) >= BOX_SIDE
    return found


def page_rules(mask: np.ndarray) -> np.ndarray:
    """Before the text height is known: thin lines that run across a quarter of the page
    (ruling, grids, tables), dotted ones included; no digit is that long and that thin."""
    side = max(mask.shape)
    gap = max(2, side // 100)
    thickest = 2 + PAGE_RULE_THICKNESS * side
    return (_ink_on(_thin(_runs(mask, side / 4, True, gap), mask, True, thickest, True), mask, True)
            | _ink_on(_thin(_runs(mask, side / 4, False, gap), mask, False, thickest, True), mask, False))


def remove_lines(mask: np.ndarray, text_height: float, ink: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(mask without lines, the line pixels). `mask` is uint8 0/1 ink; with `ink` (its strength),
    a box side must be drawn like the rules (`_box_sides`)."""
    gap = max(1, int(GAP * text_height))
    thickest = 2 + LINE_THICKNESS * text_height     # (and a rule in a photo is 2 px at the least)
    rules = _thin_along(_runs(mask, H_RUN * text_height, True, gap), mask, thickest)
    horizontal = _ink_on(rules, mask, True)
    vertical = _thin(_runs(mask, H_RUN * text_height, False, gap), mask, False, thickest)
    if rules.any():     # box sides stand between horizontal rules, drawn like them
        short = _thin(_runs(mask, V_RUN * text_height, False), mask, False, thickest)
        strength, limit = None, 0.0
        if ink is not None:
            strength = np.where(mask > 0, ink, 0)
            limit = SIDE_STRENGTH * percentile(strength[horizontal > 0], 90)
        vertical |= _box_sides(short, rules, 1, strength, limit)
    vertical = _ink_on(vertical, mask, False)
    lines = horizontal | vertical
    if not lines.any():     # (most camera frames: nothing to take out, nothing to bridge)
        return mask.copy(), lines
    kept = mask & (1 - lines)
    # Bridge strokes that cross a removed line: a line pixel with ink just above and below
    # (left and right, for vertical lines) belongs to the stroke too.
    span = max(3, int(BRIDGE * text_height)) | 1
    across_h = cv2.morphologyEx(kept, cv2.MORPH_CLOSE, np.ones((span, 1), np.uint8)) & horizontal
    across_v = cv2.morphologyEx(kept, cv2.MORPH_CLOSE, np.ones((1, span), np.uint8)) & vertical
    kept |= (across_h | across_v) & mask
    return kept, lines
