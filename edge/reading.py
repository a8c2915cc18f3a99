"""What was read from an image: the typed result the camera loop, the folder classifier and the
live view all print, draw and serve, and the one place that turns probabilities into text."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import touching
from .interpreter import DigitModel
from .preprocess import Digit, find_digits
from .stats import median

DEFAULT_MIN_CONFIDENCE = 0.5   # below this a digit reads as '?' (a coin flip between two classes)
WORD_GAP = 1.6                 # a step this many times a row's usual step between digits separates two numbers


@dataclass(frozen=True)
class ReadDigit:
    value: str                          # the model's label for it
    confidence: float                   # the model's probability of that label
    box: tuple[int, int, int, int]      # x, y, w, h in the frame's pixels
    row: int                            # text row, top to bottom

    def record(self) -> dict:
        return {"digit": self.value, "confidence": round(self.confidence, 4), "box": list(self.box)}


@dataclass(frozen=True)
class Reading:
    text: str                           # rows by newlines, numbers by spaces, '?' where unsure
    digits: tuple[ReadDigit, ...]
    ms: dict = field(default_factory=dict)   # preprocess, inference, total (when timed)

    @property
    def confidence(self) -> float | None:
        """The least confident digit's, which is how far the whole reading can be trusted."""
        return min((d.confidence for d in self.digits), default=None)

    def records(self) -> list[dict]:
        return [d.record() for d in self.digits]


def label(labels: list[str], digits: list[Digit], probs: np.ndarray,
          min_confidence: float = DEFAULT_MIN_CONFIDENCE, offset: tuple[int, int] = (0, 0),
          ms: dict | None = None) -> Reading:
    """The reading of digits already classified (`probs`, one row per digit); `offset` moves boxes
    from a region of interest back into the frame."""
    best = probs.argmax(1) if len(probs) else np.zeros(0, int)
    conf = probs.max(1) if len(probs) else np.zeros(0)
    values = [labels[i] for i in best]
    read = tuple(ReadDigit(values[i], float(conf[i]),
                           (d.box[0] + offset[0], d.box[1] + offset[1], d.box[2], d.box[3]), d.row)
                 for i, d in enumerate(digits))
    return Reading(text_of(read, min_confidence), read, ms or {})


def read(model: DigitModel, image: np.ndarray, single: bool = False,
         min_confidence: float = DEFAULT_MIN_CONFIDENCE, offset: tuple[int, int] = (0, 0)
         ) -> tuple[Reading, list[Digit]]:
    """One image read end to end (one invoke for all its digits), timed; also the digits, whose
    28x28 pixels are what the model saw."""
    t0 = time.perf_counter()
    digits = find_digits(image, single=single)
    t1 = time.perf_counter()
    digits, probs = touching.predict(model, [digits], drop_non_digits=not single)[0]
    t2 = time.perf_counter()
    ms = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "total": (t2 - t0) * 1e3}
    return label(model.labels, digits, probs, min_confidence, offset, ms), digits


def text_of(digits: tuple[ReadDigit, ...] | list[ReadDigit], min_confidence: float = 0.0) -> str:
    """Values in reading order: rows separated by newlines, numbers that stand apart on a row by a
    space, '?' below min_confidence. Numbers stand apart when the step from one digit's centre to
    the next is WORD_GAP times the row's usual step (a narrow 1 does not widen it, as an
    edge-to-edge gap would): evenly spaced digits stay one number, "646 555 0111" gets its spaces."""
    by_row: dict[int, list[ReadDigit]] = {}
    for d in digits:
        by_row.setdefault(d.row, []).append(d)
    wide: dict[int, float] = {}
    for r, ds in by_row.items():
        steps = np.diff([d.box[0] + d.box[2] / 2 for d in ds])
        height = median([d.box[3] for d in ds])
        usual = median(steps) if len(steps) >= 2 else height
        wide[r] = WORD_GAP * max(usual, 0.5 * height)
    out, last = [], None
    for d in digits:
        if last is not None and d.row != last.row:
            out.append("\n")
        elif last is not None and (d.box[0] + d.box[2] / 2) - (last.box[0] + last.box[2] / 2) > wide[d.row]:
            out.append(" ")
        out.append(d.value if d.confidence >= min_confidence else "?")
        last = d
    return "".join(out)
