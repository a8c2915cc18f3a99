"""Paper: which side is ink, and where the sheet is when something else is around it.

The polarity (dark ink on paper, or chalk on a board) from the skew of the image's deviations;
a bright sheet on a darker table; a sheet in a flat surround as bright as paper (a white desk, a
scan's margin). edge/ink.py measures the ink against the paper these find. Pure numpy + OpenCV.
"""
from __future__ import annotations

import cv2
import numpy as np

OFF_PAPER = 0.4          # paper darker than this fraction of the page's bright paper is off the page
SKEW_WINDOWS = (2, 16, 64)   # local-mean windows for the polarity, as fractions of the long side
SHEET_SHARE = (0.02, 0.9)    # a sheet on a darker table covers this share of the image (more: it fills it)
SHEET_FILL = 0.85        # and this much of the rectangle around it (a page, a card; not a stroke)
SHEET_SIDE = 16          # and is at least this many pixels across (inside its blurred edge)
FLAT_SPREADS = (4, 2, 0)  # a surround is flat within this many grey levels (a camera's noise on a desk), else less
FLAT_TILES = 32          # a flat surround is seen in tiles this fraction of the long side (threshold)
SHEET_LOOK = 64          # the sheet is looked for on a copy this many pixels on its long side


def histogram(image: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """The 256 counts of a uint8 image's values (where the 0/1 uint8 mask `where` is set), by
    OpenCV's calcHist: half the time of np.bincount on a frame. Its counts are float32, exact
    below 2**24; a larger image is counted by numpy."""
    if image.size >= 1 << 24:
        return np.bincount((image if where is None else image[where.view(bool)]).ravel(), minlength=256)
    return cv2.calcHist([image], [0], where, [256], [0, 256]).ravel().astype(np.int64)


def percentiles(image: np.ndarray, qs: tuple[float, ...], where: np.ndarray | None = None) -> list[int]:
    """Percentiles of a uint8 image (where the 0/1 mask `where` is set) from its histogram:
    O(pixels), unlike a sort."""
    cdf = np.cumsum(histogram(image, where))
    return [int(np.searchsorted(cdf, q / 100 * (cdf[-1] - 1), side="right")) for q in qs]


def dark_ink(gray: np.ndarray) -> bool:
    """Is the ink darker than the paper? Ink is the minority that stands far out from its
    surroundings, so deviations from a local mean are skewed towards the ink's side: the sign of
    their third moment decides. A lone small digit still counts (a median/percentile rule misses a
    digit covering under 1 % of a frame), and the halo a stroke leaves in the local mean is broad
    but shallow, so it does not outweigh the stroke.

    The window is the one of SKEW_WINDOWS where the skew is most decided: a wide one when a digit
    fills the image (a narrow one is no wider than its strokes), a narrow one when a card lies on
    a darker table (a wide one sees the bright card as the minority).

    A sheet lying on a darker table, too small a part of the image for that, is seen alone too:
    seen whole through a wide window, a small bright sheet in a dark frame is the bright minority
    that chalk on a board would be; seen alone, its ink is the dark minority. When the whole says
    light ink, a window on it sees dark strokes all the same, and the sheet alone says dark ink,
    the ink is dark. (A white bar that a chalk 1 filling the image makes looks like a sheet, but
    no window sees dark strokes in it.) A sheet in a flat surround as bright as paper
    (`paper_surround`) is seen alone the same way: seen whole, a shaded sheet's shading can
    outweigh its strokes.
    """
    whole = skews(gray)
    if says_dark(whole):
        return True
    if min(whole.values(), default=0.0) >= 0:
        return False
    box = sheet(gray)
    if box is None:
        surround = paper_surround(Tiles(gray))
        if surround is None:
            return False
        box = cv2.boundingRect(1 - surround)
    x, y, w, h = box
    return says_dark(skews(gray[y:y + h, x:x + w]))


def says_dark(skew_by_window: dict[int, float]) -> bool:
    """The most decided window's verdict (of `skews`' windows, or any subset of them)."""
    return max(skew_by_window.values(), key=abs, default=0.0) < 0


def sheet(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """x, y, w, h of the inside of a bright sheet on a darker surround, or None when no sheet
    stands out or it fills the image. A copy SHEET_LOOK px on its long side, median-filtered past
    its strokes, is split into bright and dark (Otsu); the largest bright region is a sheet when it
    is near rectangular (SHEET_FILL of the rectangle around it: a stroke of chalk is not) and
    covers SHEET_SHARE of the image."""
    h, w = gray.shape
    f = min(1.0, SHEET_LOOK / max(h, w))
    small = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    _, bright = cv2.threshold(cv2.medianBlur(small, 3), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    region = _largest_region(bright, connectivity=4)
    if region is None:
        return None
    (x, y, bw, bh, area), (rw, rh) = region
    least, most = SHEET_SHARE
    if not least * bright.size <= area <= most * bright.size or area < SHEET_FILL * rw * rh:
        return None
    # Inside the filter's reach (two pixels of the copy) there is only the sheet.
    x0, y0, x1, y1 = (round(v / f) for v in (x + 2, y + 2, x + bw - 2, y + bh - 2))
    if min(x1 - x0, y1 - y0) < SHEET_SIDE:
        return None
    return x0, y0, x1 - x0, y1 - y0


def _largest_region(mask: np.ndarray, connectivity: int
                    ) -> tuple[tuple[int, int, int, int, int], tuple[float, float]] | None:
    """The largest connected region of a 0/1 `mask`: its x, y, w, h and area, and the sides of the
    least rectangle around its outline (through pixel centres: a full w x h block gives w-1 x h-1),
    against which a sheet is told from a stroke. None when the mask is empty."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=connectivity)
    if n < 2:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    outline, _ = cv2.findContours((labels == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    _, sides, _ = cv2.minAreaRect(np.concatenate(outline))
    return tuple(int(v) for v in stats[i]), sides


def skews(gray: np.ndarray, windows: tuple[int, ...] = SKEW_WINDOWS) -> dict[int, float]:
    """The skewness of each pixel's deviation from the mean of a window 1/d of the long side wide,
    for each d in `windows` (0 for a flat image)."""
    h, w = gray.shape
    out = {}
    for div in windows:
        k = max(3, (max(h, w) // div) | 1)
        local = cv2.subtract(gray, cv2.blur(gray, (k, k)), dtype=cv2.CV_32F)
        square = cv2.multiply(local, local)
        # Whole numbers below 2**24, summed in double by OpenCV: exact, so every machine agrees.
        spread = cv2.sumElems(square)[0] / gray.size
        out[div] = cv2.sumElems(cv2.multiply(square, local))[0] / gray.size / spread ** 1.5 if spread > 0 else 0.0
    return out


class Tiles:
    """An image cut into tiles 1/FLAT_TILES of its long side (at least 4 px) and each tile's spread
    (max - min), by which `flat_tiles` finds a flat surround: measured once per image, as the
    sheet's surround and the ink's threshold both ask."""

    def __init__(self, gray: np.ndarray):
        self.gray = gray
        h, w = gray.shape
        self.side = max(h, w) // FLAT_TILES if max(h, w) >= 4 * FLAT_TILES else 0
        self.shape = (h // self.side, w // self.side) if self.side else (0, 0)
        self._spreads: dict[bool, np.ndarray] = {}

    def centres(self, image: np.ndarray) -> np.ndarray:
        """`image` (the size of `gray`) read at each tile's centre."""
        t = self.side
        return image[t // 2:self.shape[0] * t:t, t // 2:self.shape[1] * t:t]

    def spread(self, averaged: bool = False) -> np.ndarray:
        """Each tile's max - min, of `gray` or (`averaged`) of its 3x3 means."""
        if averaged not in self._spreads:
            image = cv2.blur(self.gray, (3, 3)) if averaged else self.gray
            se = cv2.getStructuringElement(cv2.MORPH_RECT, (self.side, self.side))
            self._spreads[averaged] = self.centres(cv2.morphologyEx(image, cv2.MORPH_GRADIENT, se))
        return self._spreads[averaged]


def paper_surround(tiles: Tiles) -> np.ndarray | None:
    """The flat surround of a sheet (`flat_tiles`) as a 0/1 uint8 mask of the image, when it is
    as bright as paper: its median at least OFF_PAPER times the sheet's bright paper (a darker
    table is off the page by that rule, and a closing never takes it for paper). None when there
    is none."""
    flat = flat_tiles(tiles)
    if flat is None:
        return None
    gray, t = tiles.gray, tiles.side
    h, w = gray.shape
    mask = np.repeat(np.repeat(flat.astype(np.uint8), t, 0), t, 1)
    mask = cv2.copyMakeBorder(mask, 0, h - mask.shape[0], 0, w - mask.shape[1], cv2.BORDER_REPLICATE)
    surround, paper = percentiles(gray, (50,), mask)[0], percentiles(gray, (90,), 1 - mask)[0]
    return mask if surround >= OFF_PAPER * paper else None


def flat_tiles(tiles: Tiles, off_page: np.ndarray | None = None) -> np.ndarray | None:
    """The tiles (bool, one per tile) on the page where the image is one flat colour, when the
    rest is one near-rectangular region (SHEET_FILL of the rectangle around it: a sheet, not a
    digit's strokes in a digital image, whose paper is as flat as any surround) that leaves a
    surround (the sheet at most SHEET_SHARE's largest share of the image: a few flat tiles in a
    corner are not one). None when there is no such surround.

    Flat is first within a few grey levels (FLAT_SPREADS): a plain desk seen with a camera's noise
    is as smooth as that, and its noise would otherwise set the floor under the paper's texture.
    Where the sheet's own smooth paper then breaks its rectangle, flat is within fewer levels (a
    small copy averages a desk's noise down further than paper's texture), and then exactly.
    Where none of those finds one but the first sees a surround's share of flat tiles, a noisier
    desk (flat in part of its tiles only): flat within the first level once each pixel is the
    mean of its 3x3 neighbours (a desk's pixel noise averages away, strokes do not)."""
    if not tiles.side:
        return None
    on_page = True if off_page is None else ~tiles.centres(off_page)
    least = (1 - SHEET_SHARE[1]) * tiles.shape[0] * tiles.shape[1]     # the share of tiles a sheet leaves

    def candidates():
        first = (tiles.spread() <= FLAT_SPREADS[0]) & on_page
        yield first
        for most in FLAT_SPREADS[1:]:
            yield (tiles.spread() <= most) & on_page
        if first.sum() >= least:
            yield (tiles.spread(averaged=True) <= FLAT_SPREADS[0]) & on_page

    for flat in candidates():
        if flat.all() or flat.sum() < least:
            continue
        (*_, area), (rw, rh) = _largest_region((~flat).astype(np.uint8), connectivity=8)
        if area < SHEET_FILL * (rw + 1) * (rh + 1):     # tiles are cells: +1 each way
            continue
        return flat
    return None
