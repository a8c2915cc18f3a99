"""A reading drawn over the image it came from: the camera's --show and --save-annotated, the
live view, and the folder classifier's --report pictures all draw the same boxes."""
from __future__ import annotations

import cv2
import numpy as np

from .ink import to_gray
from .reading import Reading

GREEN, RED = (60, 170, 60), (40, 40, 220)   # confident, below --min-confidence (BGR)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """An 8-bit colour copy of any frame a source or decoder returns (grey, 16-bit, alpha)."""
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image.copy()
    return cv2.cvtColor(to_gray(image), cv2.COLOR_GRAY2BGR)


def annotate(image: np.ndarray, reading: Reading, min_confidence: float, long_side: int | None = None,
             confidences: bool = True) -> np.ndarray:
    """Each digit's box and value (and confidence) over the image, scaled down to `long_side`;
    labels are sized to the digit, so a page of small digits stays legible."""
    out = to_bgr(image)
    h, w = out.shape[:2]
    f = min(1.0, long_side / max(h, w)) if long_side else 1.0
    if f < 1.0:
        out = cv2.resize(out, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    for d in reading.digits:
        x, y, bw, bh = (round(v * f) for v in d.box)
        color = GREEN if d.confidence >= min_confidence else RED
        cv2.rectangle(out, (x, y), (x + bw, y + bh), color, 1 if bh < 40 else 2)
        scale = float(np.clip(bh / 50, 0.35, 0.9))
        text = f"{d.value} {d.confidence:.2f}" if confidences else d.value
        cv2.putText(out, text, (x, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                    1 if scale < 0.6 else 2, cv2.LINE_AA)
    return out
