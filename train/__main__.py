"""python -m train: train a digit CNN on MNIST and write it to models/."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .model import ARCHS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    p.add_argument("--arch", choices=ARCHS, default="edge",
                   help="edge: the default small int8-friendly CNN; seed: the classic seed CNN")
    p.add_argument("--epochs", type=int, help="default: 30 for edge, 10 for seed")
    p.add_argument("--batch-size", type=int, help="default: 128 for edge, 200 for seed")
    p.add_argument("--limit", type=int, metavar="N", help="train on the first N training images (quick runs)")
    p.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $MNIST_DIR, "
                   "then ~/.keras/datasets/mnist.npz, then Keras' download)")
    p.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    p.add_argument("--h5", action="store_true", help="also write the legacy .h5 the seeds used")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 20:
        p.error("--limit must be at least 20")

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from .data import MnistError  # heavy imports after argument parsing, so --help is instant
    from .train import TrainConfig, run

    cfg = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, limit=args.limit,
                      data_dir=args.data_dir, out=args.out, seed=args.seed, h5=args.h5)
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
