"""python -m train: train a digit CNN on MNIST and write it, its manifest and plots to build/model/."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .config import ARCHS, DEFAULTS, TrainConfig


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    p.add_argument("--arch", choices=ARCHS, default="edge",
                   help="edge: the default small int8-friendly CNN; seed: the classic seed CNN")
    p.add_argument("--epochs", type=int, help="default: " + ", ".join(
        f"{d['epochs']} for {a}" for a, d in DEFAULTS.items()))
    p.add_argument("--batch-size", type=int, help="default: " + ", ".join(
        f"{d['batch_size']} for {a}" for a, d in DEFAULTS.items()))
    p.add_argument("--limit", type=int, metavar="N", help="train on the first N training images (quick runs)")
    p.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $MNIST_DIR, "
                   "then ~/.keras/datasets/mnist.npz, then Keras' download)")
    p.add_argument("--out", type=Path, default=Path("build/model"),
                   help="output folder (default: build/model; `make publish` copies a validated model to models/)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    p.add_argument("--h5", action="store_true", help="also write the legacy .h5 the seeds used")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 20:
        p.error("--limit must be at least 20")
    if (args.epochs is not None and args.epochs < 1) or (args.batch_size is not None and args.batch_size < 1):
        p.error("--epochs and --batch-size must be >= 1")
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out}: exists and is not a folder")

    from edge.quiet import import_tensorflow
    import_tensorflow()                  # first, and without its C++ start-up lines
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from .data import MnistError  # heavy imports after argument parsing, so --help is instant
    from .train import run

    # A progress bar is for a person watching; in a log (make train > log) one line per epoch.
    cfg = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, limit=args.limit,
                      data_dir=args.data_dir, out=args.out, seed=args.seed, h5=args.h5,
                      verbose="auto" if sys.stdout.isatty() else 2)
    try:
        manifest = run(cfg)
    except MnistError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{manifest['arch']}: {manifest['params']:,} parameters, {manifest['macs']:,} MACs/image, "
          f"{manifest['epochs']} epochs in {manifest['train_seconds']:.0f} s")
    print(f"test accuracy: {manifest['test_accuracy']:.2%} ({manifest['test_errors']} errors of 10,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
