"""Touching digits and what is not a digit: which reading of each piece to keep.

Geometry alone cannot tell a wide 0 from a touching 23, so preprocessing proposes cuts and the
classifier decides: a piece is split when its parts are each read far more confidently than the
whole (every crop, whole and parts, goes through the same batched invoke). A model with a
"not a digit" class then has the pieces it reads as such (letters, pieces of rules) dropped.
"""
from __future__ import annotations

import numpy as np

from .layout import Box

WIDE = 1.0            # a piece at least this wide for its height may be two or three digits
ROW_WIDE = 1.4        # ... and this much wider than the median piece of its row (rows of 3 or more)
MARGIN = 0.25         # the parts' mean confidence must beat the whole's by this much
PART_FLOOR = 0.5      # and every part must be read at least this confidently


def cut_columns(mask: np.ndarray, parts: int) -> list[int] | None:
    """Columns that cut a piece's mask into `parts`: near each even split, the column that
    crosses the least ink (a smoothed projection, so a stroke's width counts, not one pixel)."""
    h, w = mask.shape
    if w < 4 * parts:
        return None
    profile = np.convolve(mask.sum(axis=0).astype(np.float64), np.ones(3) / 3, mode="same")
    cuts = []
    for k in range(1, parts):
        centre = w * k / parts
        start = max(1, int(centre - 0.3 * w / parts))
        window = profile[start:min(w - 1, int(centre + 0.3 * w / parts) + 1)]
        if not len(window):
            return None
        columns = np.arange(start, start + len(window))
        cuts.append(int(columns[np.argmin(window + 1e-3 * np.abs(columns - centre))]))   # ties: nearest the centre
    return cuts


def split_boxes(mask: np.ndarray, box: Box, typical_width: float | None = None) -> list[list[Box]]:
    """Ways to cut a box (page pixels) into 2 or 3 digits, each part trimmed to
    its ink. A piece is a candidate when wide for its height and, on a row of several pieces,
    much wider than the row's typical piece (a large, looped 2 is not two digits)."""
    x, y, w, h = box.x, box.y, box.w, box.h
    if w < WIDE * h or (typical_width is not None and w < ROW_WIDE * typical_width):
        return []
    crop = mask[y:y + h, x:x + w]
    options = []
    for parts in (2, 3) if w >= 1.5 * h else (2,):
        cuts = cut_columns(crop, parts)
        if cuts is None:
            continue
        edges = [0, *cuts, w]
        option = []
        for a, b in zip(edges, edges[1:]):
            rows = np.flatnonzero(crop[:, a:b].any(axis=1))
            if len(rows) < 0.3 * h:
                break
            option.append(Box(x + a, y + int(rows[0]), b - a, int(rows[-1] - rows[0] + 1)))
        else:
            options.append(option)
    return options


def choose(whole: np.ndarray, options: list[list[np.ndarray]]) -> int | None:
    """Index of the split to keep, or None to keep the piece whole. `whole` is the piece's class
    probabilities; each option is the list of its parts' probabilities."""
    best, best_score = None, float(whole.max()) + MARGIN
    for i, parts in enumerate(options):
        confidence = [float(p.max()) for p in parts]
        score = float(np.mean(confidence))
        if min(confidence) >= PART_FLOOR and score > best_score:
            best, best_score = i, score
    return best


def _crops(digits) -> list[np.ndarray]:
    """Every digit's 28x28 input, then every part of every proposed split, in reading order."""
    return [d.pixels for d in digits] + [p.pixels for d in digits for option in d.splits for p in option]


def _resolve(digits, scored: np.ndarray, probs: np.ndarray, reject: int | None = None):
    """Each piece replaced by the split `choose` keeps (judged on `scored`), with its `probs`.
    With a not-a-digit class, only a piece the model does not take for one digit (it reads it as
    not a digit, or as no digit with confidence) is a candidate: a wide single digit is not cut."""
    out, keep, i = [], [], len(digits)
    for k, d in enumerate(digits):
        spans = []
        for option in d.splits:
            spans.append((i, i + len(option)))
            i += len(option)
        undecided = reject is None or probs[k].argmax() == reject or scored[k].max() < PART_FLOOR
        pick = choose(scored[k], [scored[a:b] for a, b in spans]) if spans and undecided else None
        if pick is None:
            out.append(d)
            keep.append(k)
        else:
            out += d.splits[pick]
            keep += range(*spans[pick])
    return out, probs[keep]


def predict(model, groups: list[list], drop_non_digits: bool = True) -> list[tuple[list, np.ndarray]]:
    """(digits, probabilities) for each image's digits, with touching digits split where the
    classifier reads the parts better and, with a not-a-digit class, non-digits dropped
    (`drop_non_digits=False`, for an image that is one digit by definition, reads the best digit
    instead). One batched invoke for all images and all candidates."""
    crops = [_crops(g) for g in groups]
    flat = [c for cs in crops for c in cs]
    probs = model.predict(np.stack(flat)) if flat else np.zeros((0, len(model.labels)), np.float32)
    reject = getattr(model, "not_a_digit", None)
    digit_probs = probs.copy()
    if reject is not None:
        digit_probs[:, reject] = 0.0      # splits are judged by how well the parts read as digits
    out, i = [], 0
    for group, cs in zip(groups, crops):
        span = slice(i, i + len(cs))
        i += len(cs)
        digits, p = _resolve(group, digit_probs[span], probs[span] if drop_non_digits else digit_probs[span],
                             reject if drop_non_digits else None)
        if reject is not None and drop_non_digits:
            keep = p.argmax(1) != reject
            digits, p = [d for d, k in zip(digits, keep) if k], p[keep]
        out.append((digits, p))
    return out
