"""python -m convert.publish: copy a validated model from build/model/ to models/, where the device
and the repository take it from.

`make train convert` never touches models/: a run writes build/model/ (untracked), and only this
explicit step replaces what is published, and only with modes that passed the gate. It refuses a
model less accurate on MNIST's test set than the one published (--force to publish it anyway).
The conversion report in models/ is merged per mode, so publishing int8 keeps the other modes' rows.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.atomic import write_bytes, write_text
from edge.interpreter import sha256_file

from .report import markdown

TRAINING_FILES = ("digit_cnn.keras", "digit_cnn.json", "training_curves.png", "confusion_matrix.png",
                  "misclassified.png")


class PublishError(Exception):
    pass


def _accuracy(manifest_path: Path) -> float | None:
    try:
        return float(json.loads(manifest_path.read_text())["validated"]["tflite_accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def publish(src: Path, dst: Path, force: bool = False) -> list[str]:
    """The names of the files written to `dst`."""
    try:
        run = json.loads((src / "conversion_report.json").read_text())
    except (OSError, ValueError) as e:
        raise PublishError(f"{src}/conversion_report.json: {e}; run `make convert` first") from None
    passed = [mode for mode, r in run["models"].items() if r["passed"]]
    if not passed:
        raise PublishError(f"no model in {src} passed validation; nothing to publish")
    for mode in passed:
        manifest = json.loads((src / f"digit_{mode}.json").read_text())
        new, old = _accuracy(src / f"digit_{mode}.json"), _accuracy(dst / f"digit_{mode}.json")
        if new is None:
            raise PublishError(f"{src}/digit_{mode}.json: no validated accuracy")
        if old is not None and new < old and not force:
            raise PublishError(f"{mode}: {new:.2%} on MNIST's test set is below the published {old:.2%} "
                               "(--force to publish it anyway)")
        if sha256_file(src / f"digit_{mode}.tflite") != manifest["sha256"]:
            raise PublishError(f"{src}/digit_{mode}.tflite changed since it was validated; run `make convert` again")
        keras_file = src / TRAINING_FILES[0]
        if keras_file.is_file() and sha256_file(keras_file) != manifest["source_model"]["sha256"]:
            raise PublishError(f"{keras_file} is not the model digit_{mode}.tflite was converted from "
                               "(trained again since?); run `make convert` again")
    written = []
    for name in [f"digit_{m}{ext}" for m in passed for ext in (".tflite", ".json")] + list(TRAINING_FILES):
        if (src / name).is_file():
            write_bytes(dst / name, (src / name).read_bytes())
            written.append(name)
    try:
        merged = json.loads((dst / "conversion_report.json").read_text())
    except (OSError, ValueError):
        merged = dict(run, models={})
    # each row says which Keras model it came from: publishing one mode leaves the others' rows
    models = {**merged.get("models", {}), **{m: {**run["models"][m], "source_sha256": run["source_model"]["sha256"]}
                                             for m in passed}}
    merged = dict(run, models=models, passed=all(r["passed"] for r in models.values()))
    write_text(dst / "conversion_report.json", json.dumps(merged, indent=2) + "\n")
    write_text(dst / "conversion_report.md", markdown(merged))
    return written + ["conversion_report.json", "conversion_report.md"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m convert.publish", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="src", type=Path, default=Path("build/model"), help="default: build/model")
    p.add_argument("--to", dest="dst", type=Path, default=Path("models"), help="default: models")
    p.add_argument("--force", action="store_true", help="publish even a model less accurate than the published one")
    args = p.parse_args(argv)
    try:
        written = publish(args.src, args.dst, args.force)
    except PublishError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"published to {args.dst}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
