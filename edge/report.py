"""Pictures of a labelled folder run, drawn with OpenCV (a Pi has no matplotlib)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .atomic import write_bytes

RED, GREEN, WHITE, BLACK = (40, 40, 220), (60, 170, 60), (255, 255, 255), (0, 0, 0)


def _png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    write_bytes(path, data.tobytes())


def confusion_image(matrix: list[list[int]], cell: int = 44) -> np.ndarray:
    """Rows true 0-9, columns predicted 0-9 and x (error / not one digit); shade ~ log count."""
    m = np.asarray(matrix)
    rows, cols = m.shape
    img = np.full(((rows + 1) * cell, (cols + 1) * cell, 3), 255, np.uint8)
    peak = np.log1p(m.max()) or 1.0
    font = cv2.FONT_HERSHEY_SIMPLEX
    for j in range(cols):
        cv2.putText(img, "x" if j == 10 else str(j), ((j + 1) * cell + 16, 28), font, 0.6, BLACK, 1)
    for i in range(rows):
        cv2.putText(img, str(i), (16, (i + 1) * cell + 28), font, 0.6, BLACK, 1)
        for j in range(cols):
            n = int(m[i, j])
            shade = int(255 - 200 * np.log1p(n) / peak)
            color = (255, shade, shade) if i == j else (shade, shade, 255)
            x, y = (j + 1) * cell, (i + 1) * cell
            cv2.rectangle(img, (x, y), (x + cell - 1, y + cell - 1), color, -1)
            if n:
                cv2.putText(img, str(n), (x + 4, y + 28), font, 0.45, BLACK, 1)
    return img


def contact_sheet(rows, columns: int = 20, scale: int = 2, limit: int = 400) -> np.ndarray:
    """The 28x28 inputs the model saw, prediction under each; wrong ones framed in red (first)."""
    items = [(r, c) for r in rows for c in r.crops[:1]]
    items.sort(key=lambda rc: bool(rc[0].correct))   # mistakes first, so they are never cut off
    items = items[:limit]
    tile_w, tile_h = 28 * scale + 4, 28 * scale + 20
    n_rows = max(1, int(np.ceil(len(items) / columns)))
    sheet = np.full((n_rows * tile_h, columns * tile_w, 3), 255, np.uint8)
    for k, (row, crop) in enumerate(items):
        y, x = divmod(k, columns)
        x0, y0 = x * tile_w + 2, y * tile_h + 2
        big = cv2.resize(crop, (28 * scale, 28 * scale), interpolation=cv2.INTER_NEAREST)
        sheet[y0:y0 + 28 * scale, x0:x0 + 28 * scale] = big[..., None]
        wrong = row.correct is False
        if wrong:
            cv2.rectangle(sheet, (x0 - 2, y0 - 2), (x0 + 28 * scale + 1, y0 + 28 * scale + 1), RED, 2)
        text = row.reading.replace("\n", "/") + (f" ({row.label})" if wrong else "")
        cv2.putText(sheet, text, (x0, y0 + 28 * scale + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    RED if wrong else BLACK, 1)
    return sheet


def write_report(rows, evaluation: dict | None, out: Path) -> None:
    if evaluation:
        _png(out / "confusion_matrix.png", confusion_image(evaluation["confusion"]))
    _png(out / "contact_sheet.png", contact_sheet(rows))


def boxes_image(image: np.ndarray, records: list[dict], min_confidence: float, long_side: int = 1200) -> np.ndarray:
    """The photo scaled to `long_side` with each digit's box and reading over it: green when
    confident, red below `min_confidence`; the label is sized to the digit, so a page stays legible."""
    h, w = image.shape[:2]
    f = min(1.0, long_side / max(h, w))
    out = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    for r in records:
        x, y, bw, bh = (round(v * f) for v in r["box"])
        color = GREEN if r["confidence"] >= min_confidence else RED
        cv2.rectangle(out, (x, y), (x + bw, y + bh), color, 1 if bh < 40 else 2)
        scale = float(np.clip(bh / 50, 0.35, 0.9))
        cv2.putText(out, r["digit"], (x, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                    1 if scale < 0.6 else 2, cv2.LINE_AA)
    return out


def write_boxes(rows, out: Path, min_confidence: float, max_pixels: int) -> None:
    """One JPEG per image: what the reader found, for a person to check."""
    from .images import BadImage, read_image
    from .ink import to_gray
    for row in rows:
        try:
            image = read_image(row.path, max_pixels)
        except BadImage:
            continue
        if image.dtype != np.uint8 or image.ndim == 2:
            image = cv2.cvtColor(to_gray(image), cv2.COLOR_GRAY2BGR)
        ok, data = cv2.imencode(".jpg", boxes_image(image, row.records, min_confidence),
                                [cv2.IMWRITE_JPEG_QUALITY, 80])
        write_bytes(out / f"{Path(row.path).stem}.boxes.jpg", data.tobytes())
