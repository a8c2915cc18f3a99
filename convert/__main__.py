"""python -m convert: quantize the trained Keras model to .tflite and validate it on all 10k test digits."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .quantize import MODES


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m convert", description=__doc__)
    p.add_argument("--model", type=Path, default=Path("build/model/digit_cnn.keras"),
                   help="Keras model with its .json manifest beside it (default: build/model/digit_cnn.keras, "
                        "what `make train` writes)")
    p.add_argument("--mode", default="int8", choices=[*MODES, "all"],
                   help="int8 (default, full-integer), float16, dynamic, float32, or all")
    p.add_argument("--out", type=Path, default=Path("build/model"),
                   help="output folder (default: build/model; `make publish` copies what passed to models/)")
    p.add_argument("--calibration-size", type=int, default=500,
                   help="class-balanced training images for int8 calibration (default: 500)")
    p.add_argument("--max-drop", type=float, default=0.2,
                   help="largest accuracy drop vs Keras, in percentage points (default: 0.2)")
    p.add_argument("--min-agreement", type=float, default=99.5,
                   help="smallest top-1 agreement with Keras, in percent (default: 99.5)")
    p.add_argument("--min-accuracy", type=float, metavar="PCT",
                   help="smallest MNIST test accuracy, in percent (default: the published model's minus 0.5)")
    p.add_argument("--keep-names", action="store_true",
                   help="keep tensor names and signature defs in the .tflite (stripped by default: a device never reads them)")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DIR, Keras cache, download)")
    args = p.parse_args(argv)
    if args.calibration_size < 10:
        p.error("--calibration-size must be at least 10")
    if args.model.suffix not in (".keras", ".h5"):
        p.error(f"--model {args.model}: expected the Keras model (.keras or .h5) that `make train` writes, "
                "not a converted one")
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out}: exists and is not a folder")
    from edge.quiet import import_tensorflow
    import_tensorflow()                  # first, and without its C++ start-up lines

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for path in (args.model, args.model.with_suffix(".json")):
        if not path.is_file():
            print(f"error: {path} not found; run `make train` first", file=sys.stderr)
            return 2
    from train.data import MnistError
    from .convert import ConvertConfig, run
    from .report import markdown

    modes = MODES if args.mode == "all" else (args.mode,)
    cfg = ConvertConfig(keras_model=args.model, out=args.out, modes=modes, calibration_size=args.calibration_size,
                        max_drop=args.max_drop, min_agreement=args.min_agreement, min_accuracy=args.min_accuracy,
                        data_dir=args.data_dir,
                        keep_names=args.keep_names)
    try:
        result = run(cfg)
    except MnistError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(result))
    if not result["passed"]:
        failed = [m for m, r in result["models"].items() if not r["passed"]]
        print(f"error: {', '.join(failed)} failed validation; not written", file=sys.stderr)
        return 1
    print(f"wrote {args.out}; `make publish` copies it to models/, where the device looks", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
