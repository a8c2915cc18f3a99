"""python -m train.ensemble A.keras B.keras [--out build/ensemble]: one model that averages the
probabilities of two trained models (the same architecture and labels, different seeds).

Two nets trained from different seeds make different mistakes on handwriting far from MNIST's;
their mean is surer where they agree and less sure where they do not. The result is one Keras
model (so one .tflite, one invoke) with a manifest like `python -m train`'s, ready for
`python -m convert --model OUT/digit_cnn.keras`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from edge.atomic import atomic_path, write_text
from edge.interpreter import sha256_file

from .config import MODEL_NAME


def build_ensemble(paths: list[Path], out: Path, data_dir: str | None = None) -> dict:
    import keras
    from keras import layers

    from .data import load_mnist
    from .model import count_macs, normalize

    manifests = [json.loads(p.with_suffix(".json").read_text()) for p in paths]
    if len({json.dumps(m["labels"]) for m in manifests}) != 1 or len({json.dumps(m["normalization"])
                                                                     for m in manifests}) != 1:
        raise ValueError("the models must share labels and normalization")
    members = [keras.models.load_model(p, compile=False) for p in paths]
    for i, m in enumerate(members):
        m.name = f"member{i}"
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, layers.Average()([m(inputs) for m in members]), name="ensemble")
    (_, _), (x_test, y_test) = load_mnist(data_dir)
    y_pred = model.predict(normalize(x_test, manifests[0]["normalization"]), batch_size=1000, verbose=0).argmax(1)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{MODEL_NAME}.keras"
    with atomic_path(path) as tmp:
        model.save(tmp)
    manifest = dict(manifests[0])
    manifest.update({
        "arch": f"{manifests[0]['arch']} x{len(members)} (mean of probabilities)",
        "params": int(model.count_params()),
        "macs": int(sum(count_macs(m) for m in members)),
        "seed": [m["seed"] for m in manifests],
        "test_accuracy": float((y_pred == y_test).mean()),
        "test_errors": int((y_pred != y_test).sum()),
        "members": [{"file": str(p), "sha256": sha256_file(p), "test_accuracy": m["test_accuracy"]}
                    for p, m in zip(paths, manifests)],
        "model_file": path.name,
        "model_sha256": sha256_file(path),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    })
    manifest.pop("history", None)
    write_text(out / f"{MODEL_NAME}.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.ensemble", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, help="two or more .keras files with manifests beside them")
    p.add_argument("--out", type=Path, default=Path("build/ensemble"))
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    if len(args.models) < 2:
        p.error("give at least two models")
    for path in args.models:
        if not (path.is_file() and path.with_suffix(".json").is_file()):
            p.error(f"{path}: needs the .keras file and its .json manifest")
    from edge.quiet import import_tensorflow
    import_tensorflow()
    m = build_ensemble(args.models, args.out, args.data_dir)
    print(f"{m['arch']}: {m['params']:,} parameters, {m['macs']:,} MACs/image; "
          f"test accuracy {m['test_accuracy']:.2%} ({m['test_errors']} errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
