"""Pictures of a labelled folder run, drawn with OpenCV (a Pi has no matplotlib)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .atomic import write_bytes
from .draw import annotate
from .reading import Reading

RED, BLACK = (40, 40, 220), (0, 0, 0)
BOXES_SIDE = 1200        # pictures of pages of boxes are scaled to this long side


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


def contact_sheet(kept, columns: int = 20, scale: int = 2, limit: int = 400) -> np.ndarray:
    """The 28x28 inputs the model saw, prediction under each; wrong ones framed in red (first).
    `kept` holds (row, correct, label) for each file."""
    items = [(r, correct, label, c) for r, correct, label in kept for c in r.crops[:1]]
    items.sort(key=lambda item: bool(item[1]))   # mistakes first, so they are never cut off
    items = items[:limit]
    tile_w, tile_h = 28 * scale + 4, 28 * scale + 20
    n_rows = max(1, int(np.ceil(len(items) / columns)))
    sheet = np.full((n_rows * tile_h, columns * tile_w, 3), 255, np.uint8)
    for k, (row, correct, label, crop) in enumerate(items):
        y, x = divmod(k, columns)
        x0, y0 = x * tile_w + 2, y * tile_h + 2
        big = cv2.resize(crop, (28 * scale, 28 * scale), interpolation=cv2.INTER_NEAREST)
        sheet[y0:y0 + 28 * scale, x0:x0 + 28 * scale] = big[..., None]
        wrong = correct is False
        if wrong:
            cv2.rectangle(sheet, (x0 - 2, y0 - 2), (x0 + 28 * scale + 1, y0 + 28 * scale + 1), RED, 2)
        text = row.reading.replace("\n", "/") + (f" ({label})" if wrong else "")
        cv2.putText(sheet, text, (x0, y0 + 28 * scale + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    RED if wrong else BLACK, 1)
    return sheet


def write_report(kept, tally, out: Path) -> None:
    """confusion_matrix.png (when labelled) and contact_sheet.png; `kept` as for contact_sheet."""
    out.mkdir(parents=True, exist_ok=True)
    if tally:
        _png(out / "confusion_matrix.png", confusion_image(tally.confusion))
    _png(out / "contact_sheet.png", contact_sheet(kept))


def write_boxes(rows, out: Path, min_confidence: float, max_pixels: int, max_decoded_bytes: int) -> None:
    """One JPEG per image: what the reader found, for a person to check."""
    from .images import BadImage, read_image
    for row in rows:
        try:
            image = read_image(row.path, max_pixels, max_decoded_bytes=max_decoded_bytes)
        except BadImage:
            continue
        found = row.read or Reading("", ())      # a page where nothing was found is worth seeing too
        picture = annotate(image, found, min_confidence, long_side=BOXES_SIDE, confidences=False)
        ok, data = cv2.imencode(".jpg", picture,
                                [cv2.IMWRITE_JPEG_QUALITY, 80])
        write_bytes(out / f"{Path(row.path).stem}.boxes.jpg", data.tobytes())
