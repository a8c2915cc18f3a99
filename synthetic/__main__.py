"""python -m synthetic OUT.jpg [--paper ruled] [--seed 0]: a photo-like page of MNIST test digits,
the README's first example input (MNIST from --data-dir, $MNIST_DIR, the Keras cache or download).
Prints the page's true reading."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from .pages import label, page


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m synthetic", description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--paper", choices=("ruled", "squared", "boxed", "plain"), default="ruled")
    p.add_argument("--rows", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heading", action="store_true", help="print a heading of letters above (a distractor)")
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    from train.data import load_mnist
    x, y = load_mnist(args.data_dir)[1]
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(x), 6 * args.rows, replace=False)
    image = page([x[i] for i in idx], rng, paper=args.paper, rows=args.rows, heading=args.heading)
    if not cv2.imwrite(str(args.out), image, [cv2.IMWRITE_JPEG_QUALITY, 85]):
        print(f"error: cannot write {args.out}", file=sys.stderr)
        return 1
    print(label([int(y[i]) for i in idx], args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
