"""Which local-mean windows decide the polarity (dark ink or light) right, on images whose answer is known.

python -m bench.polarity [--photos DIR] [--windows 2 4 8 16 32 64]

Every combination of the windows (1/d of the long side) is scored as `edge.paper.dark_ink` uses
them (the most decided skew wins) on: the folder test's 1,000 one-digit MNIST images (both
polarities, 28 to 400 px: a digit that fills its image), generated camera frames with 1 to 4
digits (both polarities), and the labelled real photos (all dark ink), upright, turned by
+-3/6/10 degrees and padded with 5, 15, 30, 50 and 100 % of the photo's width and height in the
colour of its edge (more of the table it lies on). Each image is seen as the reader's first look
sees it. The last row is the reader's own rule, `edge.paper.dark_ink`: its windows, and a sheet on
a darker table, or in a flat surround as bright as paper, seen alone as well.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from bench.photos import DEFAULT_PHOTOS, on_table, turn
from edge.images import read_image
from edge.ink import to_gray
from edge.paper import SKEW_WINDOWS, dark_ink, says_dark, skews
from edge.preprocess import first_look
from synthetic.frames import frame, one_digit_image
from train.data import load_mnist

WINDOWS = (2, 4, 8, 16, 32, 64)


def seen_first(gray: np.ndarray) -> np.ndarray:
    """The image as the reader's first look decides its polarity on."""
    return first_look(gray)[0]


def cases(photos: Path, windows: tuple[int, ...]) -> list[tuple[str, bool, dict[int, float], bool]]:
    """(set, truly dark ink, skew per window, the reader's verdict) for every image."""
    out = []

    def add(name: str, dark: bool, image: np.ndarray) -> None:
        seen = seen_first(to_gray(image))
        out.append((name, dark, skews(seen, windows), dark_ink(seen)))

    _, (x, _) = load_mnist()
    for i in range(1000):           # the images tests/test_classify.py's labelled folder writes
        img, dark = one_digit_image(x[i], i)
        add("one-digit images", dark, img)
    rng = np.random.default_rng(0)
    for i in range(160):
        dark = i % 2 == 0
        digits = [x[j] for j in rng.integers(0, len(x), 1 + i % 4)]
        add("camera frames", dark, frame(digits, rng, dark_ink=dark))
    names = sorted(json.loads((photos / "labels.json").read_text())) if (photos / "labels.json").is_file() else []
    for name in names:
        image = read_image(str(photos / name))
        for degrees in (0, 3, -3, 6, -6, 10, -10):
            seen = turn(image, degrees) if degrees else image
            add("real photos, upright and turned", True, seen)
        for percent in (5, 15, 30, 50, 100):
            add("real photos, more table", True, on_table(image, percent, same_frame=False))
    return out


def wrong(case_list: list, chosen: tuple[int, ...]) -> dict[str, int]:
    """Images each set gets wrong when the polarity is decided by the windows `chosen`."""
    counts: dict[str, int] = {}
    for name, dark, by_window, _ in case_list:
        decided = says_dark({d: by_window[d] for d in chosen})
        counts[name] = counts.get(name, 0) + (decided != dark)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.polarity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder with images and labels.json")
    p.add_argument("--windows", type=int, nargs="+", default=list(WINDOWS), help="window divisors to combine")
    args = p.parse_args(argv)
    if not (args.photos / "labels.json").is_file():
        print(f"bench.polarity: no labelled photos at {args.photos}; scoring the MNIST images only", file=sys.stderr)
    found = cases(args.photos, tuple(args.windows))
    sets = list(dict.fromkeys(case[0] for case in found))
    sizes = {s: sum(case[0] == s for case in found) for s in sets}
    print("windows (1/d of the side) | " + " | ".join(f"{s} ({sizes[s]}) wrong" for s in sets))
    combos = [c for r in range(1, len(args.windows) + 1) for c in itertools.combinations(args.windows, r)]
    rows = sorted((sum(wrong(found, c).values()), len(c), c) for c in combos)
    for _, _, c in rows:
        mark = "  <- edge.paper.SKEW_WINDOWS" if c == SKEW_WINDOWS else ""
        print(" ".join(map(str, c)) + " | " + " | ".join(str(n) for n in wrong(found, c).values()) + mark)
    reader = [sum(verdict != dark for name, dark, _, verdict in found if name == s) for s in sets]
    print("the reader (edge.paper.dark_ink) | " + " | ".join(map(str, reader)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
