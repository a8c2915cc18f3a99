"""Photo-like pages for tests, seeded: MNIST test digits written with a thin pen on a sheet of
ruled, squared or boxed paper lying on a darker table, seen in perspective under a soft shadow,
with a printed line of letters as a distractor.

A floor for tests, never a target to tune on: reading is tuned on real photos (make eval-photos).
"""
from __future__ import annotations

import cv2
import numpy as np


def pen(digit: np.ndarray, height: int, thickness: float) -> np.ndarray:
    """A 28x28 MNIST digit as a pen stroke `height` pixels tall, about `thickness` pixels wide
    (MNIST's own strokes, scaled up, are a marker's; a ballpoint is thinner): float alpha 0..1."""
    big = cv2.resize(digit, (height, height), interpolation=cv2.INTER_LINEAR_EXACT)
    core = (big > 127).astype(np.uint8)
    natural = 2.5 * height / 28
    if natural > thickness + 1:
        core = cv2.erode(core, np.ones((3, 3), np.uint8), iterations=int((natural - thickness) // 2))
    return cv2.GaussianBlur(core.astype(np.float32), (0, 0), 0.7)


def page(digits: list[np.ndarray], rng: np.random.Generator, paper: str = "ruled", rows: int = 2,
         size: tuple[int, int] = (900, 1200), digit_height: int = 60, touching: bool = False,
         heading: bool = True, tilt: float = 0.0, table: tuple[float, float] = (1.25, 1.2)) -> np.ndarray:
    """BGR photo of a sheet with `digits` written in `rows` rows (numbers of three, a gap between).

    paper: "ruled", "squared", "boxed" or "plain". `touching` writes each number's digits so
    that neighbours touch. `tilt` turns the sheet on the table by that many degrees. `table` is the
    photo's height and width as multiples of the sheet's.
    """
    h, w = size
    sheet = np.full((h, w), 235, np.float32)
    step = int(digit_height * 1.6)
    if paper == "ruled":
        for y in range(step, h, step):
            cv2.line(sheet, (0, y), (w, y), 150, 2)
    elif paper == "squared":
        for v in range(0, max(h, w), step // 2):
            cv2.line(sheet, (0, v), (w, v), 175, 1)
            cv2.line(sheet, (v, 0), (v, h), 175, 1)
    if heading:
        cv2.putText(sheet, "Name / Class / Date", (40, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 60, 2)
    per_row = int(np.ceil(len(digits) / rows))
    advance = int(digit_height * (0.62 if touching else 0.9))
    for i, d in enumerate(digits):
        r, c = divmod(i, per_row)
        x = 60 + c * advance + (c // 3) * digit_height + int(rng.integers(-3, 4))
        y_base = step * (r + 1) + step - 8 if paper == "ruled" else 100 + r * step * 2 + digit_height
        y = y_base - digit_height + int(rng.integers(-3, 4))
        if paper == "boxed":
            cv2.rectangle(sheet, (x - 4, y - 6), (x + advance - 2, y + digit_height + 6), 90, 2)
        alpha = pen(d, digit_height, thickness=rng.uniform(2.5, 4.0))
        region = sheet[y:y + digit_height, x:x + digit_height]
        a = alpha[:region.shape[0], :region.shape[1]]
        sheet[y:y + a.shape[0], x:x + a.shape[1]] = region * (1 - 0.8 * a) + 30 * 0.8 * a
    # The sheet lies on a darker table, seen in slight perspective, under a soft shadow.
    H, W = int(h * table[0]), int(w * table[1])
    surface = np.full((H, W), 70, np.float32) + rng.normal(0, 6, (H, W)).astype(np.float32)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    j = lambda: rng.uniform(-0.02, 0.02) * w  # noqa: E731
    ox, oy = (W - w) / 2, (H - h) / 2
    dst = np.float32([[ox + j(), oy + j()], [ox + w + j(), oy + j()], [ox + w + j(), oy + h + j()], [ox + j(), oy + h + j()]])
    if tilt:
        turn = cv2.getRotationMatrix2D((W / 2, H / 2), tilt, 1.0)
        dst = np.float32(np.hstack([dst, np.ones((4, 1), np.float32)]) @ turn.T)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(sheet, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=-1)
    photo = np.where(warped >= 0, warped, surface)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    shadow = 1 - 0.35 / (1 + np.exp(-(xx - 0.8 * W) / (0.05 * W)))
    photo = cv2.GaussianBlur(photo * shadow, (0, 0), 0.8) + rng.normal(0, 3, (H, W)).astype(np.float32)
    gray = np.clip(photo, 0, 255).astype(np.uint8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def label(digit_labels: list[int], rows: int) -> str:
    """The labels.json text of a page: rows by newlines, numbers of three by spaces."""
    per_row = int(np.ceil(len(digit_labels) / rows))
    lines = []
    for r in range(rows):
        row = [str(v) for v in digit_labels[r * per_row:(r + 1) * per_row]]
        lines.append(" ".join("".join(row[i:i + 3]) for i in range(0, len(row), 3)))
    return "\n".join(lines)
