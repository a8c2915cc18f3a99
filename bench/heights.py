"""How small can a digit be and still be read? The floor under edge/preprocess.py's MIN_DIGIT_PX.

python -m bench.heights [--model M] [--digits 1000] [--heights 5 6 7 8 10 12] [--floor PX]
MNIST test digits, shrunk (INTER_AREA) until they are h pixels tall, dark on a light 640x480
frame in 5 rows of 10, read by the same code as a camera frame. A page at camera resolution has
digits this small (a form's digits are 6-7 px tall in a 640 px frame); below the floor the reader
drops them as specks; `--floor 5` reads them anyway, to show what the floor gives up.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from edge import preprocess
from edge.interpreter import DEFAULT_MODEL, DigitModel
from edge.reading import read
from edge.score import score

HEIGHTS = (5, 6, 7, 8, 10, 12)
PAPER, INK = 235, 35          # grey levels of the page and of the darkest ink
PER_ROW, ROWS = 10, 5
TALLEST = 20                  # 5 rows 4 heights apart fit in 480 px


def shrunk(digit: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit (white on black) cropped to its ink and shrunk to `height` rows."""
    ys, xs = np.nonzero(digit > 30)
    crop = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def frame(digits: list[np.ndarray], height: int) -> np.ndarray:
    """Dark digits on a light 640x480 page, rows 4 heights apart, digits 2 heights apart."""
    page = np.full((480, 640), PAPER, np.uint8)
    for k, digit in enumerate(digits):
        small = shrunk(digit, height)
        row, col = divmod(k, PER_ROW)
        y, x = 60 + row * 4 * height, 40 + col * 2 * height
        ink = PAPER - small.astype(np.int32) * (PAPER - INK) // 255
        page[y:y + small.shape[0], x:x + small.shape[1]] = ink.astype(np.uint8)
    return page


def run(model: DigitModel, x: np.ndarray, y: np.ndarray, heights: tuple[int, ...] = HEIGHTS,
        n: int = 1000, seed: int = 0) -> dict:
    """Per height: digits read right (longest common subsequence, as on the photos) and extras."""
    idx = np.random.default_rng(seed).choice(len(x), n, replace=False)
    per_frame = PER_ROW * ROWS
    out = {}
    for h in heights:
        right = extra = true = 0
        for start in range(0, n, per_frame):
            chunk = idx[start:start + per_frame]
            label = "\n".join("".join(str(y[i]) for i in chunk[r:r + PER_ROW])
                              for r in range(0, len(chunk), PER_ROW))
            s = score(label, read(model, frame([x[i] for i in chunk], h))[0].text)
            right, extra, true = right + s.right, extra + s.extra, true + s.true
        out[str(h)] = {"digits": true, "right": right, "extra": extra, "right_rate": right / max(1, true)}
    return out


def markdown(r: dict) -> str:
    lines = ["| digit height in a 640x480 frame (MNIST test digits) | digits right | extras |",
             "| --- | --- | --- |"]
    lines += [f"| {h} px | {v['right']}/{v['digits']} ({v['right_rate']:.1%}) | {v['extra']} |" for h, v in r.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.heights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--digits", type=int, default=1000, help="MNIST test digits per height")
    p.add_argument("--heights", type=int, nargs="+", default=list(HEIGHTS))
    p.add_argument("--floor", type=int, default=preprocess.MIN_DIGIT_PX,
                   help=f"read digits down to this height (the reader's floor: {preprocess.MIN_DIGIT_PX} px)")
    p.add_argument("--data-dir", help="MNIST folder (default: $MNIST_DIR, Keras cache, download)")
    p.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = p.parse_args(argv)
    if not all(1 <= h <= TALLEST for h in args.heights) or not 1 <= args.digits <= 10_000:
        p.error(f"--heights must lie in 1..{TALLEST} (5 rows of 10 on a 640x480 frame), --digits in 1..10000")
    from train.data import load_mnist   # the benchmark may use train/; the device code never does
    _, (x, y) = load_mnist(args.data_dir)
    preprocess.MIN_DIGIT_PX = args.floor    # an experiment on the reader's own floor, this process only
    r = run(DigitModel(args.model, quiet=True), x, y, tuple(args.heights), args.digits)
    if args.out:
        args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
