"""Convert the trained Keras model to .tflite, validate on all 10k test digits, publish only what passes."""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.atomic import atomic_path, write_text
from edge.interpreter import DEFAULT_MODEL, sha256_file
from train.data import load_mnist
from train.model import normalize

from . import report
from .quantize import calibration_images, convert
from .validate import validate

log = logging.getLogger(__name__)


class GateFailed(Exception):
    """Raised inside the atomic write so a failing model never replaces an earlier good one."""


@dataclass
class ConvertConfig:
    keras_model: Path = Path("build/model/digit_cnn.keras")
    out: Path = Path("build/model")
    modes: tuple[str, ...] = ("int8",)
    calibration_size: int = 500
    max_drop: float = 0.2          # percentage points
    min_agreement: float = 99.5    # percent
    min_accuracy: float | None = None   # percent on MNIST's test set; None: the published model's claim - 0.5
    data_dir: str | None = None
    seed: int = 0
    keep_names: bool = False       # keep tensor names and signatures in the .tflite (for Netron)
    # Only for proving the gate works: calibrate with a different normalization than training used.
    calibration_normalization: dict | None = field(default=None, repr=False)


def tflite_manifest(mode: str, data: bytes, details: dict, source: dict, source_sha: str, result: dict) -> dict:
    return {
        "mode": mode,
        "file": f"digit_{mode}.tflite",
        "sha256": details["sha256"],
        "size_bytes": len(data),
        "input": details["input"],
        "output": details["output"],
        "normalization": source["normalization"],
        "pixel_convention": "float input = uint8 pixel * scale + offset; 0 = background, 255 = ink",
        "labels": source.get("labels", [str(i) for i in range(10)]),
        **({"not_a_digit": source["not_a_digit"]} if "not_a_digit" in source else {}),
        "source_model": {"file": source["model_file"], "sha256": source_sha, "arch": source["arch"],
                         "params": source["params"], "macs": source["macs"]},
        "validated": {k: result[k] for k in ("test_images", "keras_accuracy", "tflite_accuracy",
                                             "drop_pp", "agreement") if k in result},
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def tensor_details(path: Path) -> dict:
    from edge.interpreter import load_interpreter_class

    _, interpreter_class = load_interpreter_class()
    it = interpreter_class(model_path=str(path))
    def tensor(d):
        scale, zero = d["quantization"]
        return {"shape": [int(s) for s in d["shape_signature"]], "dtype": np.dtype(d["dtype"]).name,
                "quantization": {"scale": float(scale), "zero_point": int(zero)}}
    return {"sha256": sha256_file(path), "input": tensor(it.get_input_details()[0]),
            "output": tensor(it.get_output_details()[0])}


def run(cfg: ConvertConfig) -> dict:
    """Convert, validate and (if the gate passes) publish each mode. Returns the report."""
    import keras

    source = json.loads(cfg.keras_model.with_suffix(".json").read_text())
    source_sha = sha256_file(cfg.keras_model)
    if source.get("model_sha256") not in (None, source_sha):
        log.warning("%s does not match the sha256 in its manifest; converting it anyway", cfg.keras_model)
    norm = source["normalization"]
    (x_train, y_train), (x_test, y_test) = load_mnist(cfg.data_dir)

    model = keras.models.load_model(cfg.keras_model, compile=False)
    keras_probs = model.predict(normalize(x_test, norm), batch_size=1000, verbose=0)
    calibration = normalize(calibration_images(x_train, y_train, cfg.calibration_size, cfg.seed),
                            cfg.calibration_normalization or norm)

    floor = accuracy_floor(cfg)          # the published claim, read once for every mode
    results = {}
    for mode in cfg.modes:
        log.info("converting to %s", mode)
        data = convert(model, mode, calibration if mode == "int8" else None, keep_names=cfg.keep_names)
        target = cfg.out / f"digit_{mode}.tflite"
        try:
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
                details = tensor_details(tmp)
                manifest = tflite_manifest(mode, data, details, source, source_sha, {})
                result = validate(tmp, manifest, x_test, y_test, keras_probs)
                result["failures"] = gate(result, cfg, floor)
                result["passed"] = not result["failures"]
                results[mode] = result
                if not result["passed"]:
                    raise GateFailed(mode)
            write_text(target.with_suffix(".json"),
                       json.dumps(tflite_manifest(mode, data, details, source, source_sha, result), indent=2) + "\n")
            result["written"] = str(target)
        except GateFailed:
            result["written"] = None
            log.error("%s failed the gate (%s); %s left untouched", mode, "; ".join(result["failures"]), target)

    out = {
        "passed": all(r["passed"] for r in results.values()),
        "gate": {"max_drop_pp": cfg.max_drop, "min_agreement_pct": cfg.min_agreement,
                 "min_accuracy_pct": floor},
        "source_model": {"file": str(cfg.keras_model), "sha256": source_sha, "arch": source["arch"],
                         "keras_accuracy": float((keras_probs.argmax(1) == y_test).mean())},
        "calibration": {"images": int(len(calibration)), "from": "training set, class-balanced",
                        "seed": cfg.seed},
        "models": results,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_text(cfg.out / "conversion_report.json", json.dumps(out, indent=2) + "\n")
    write_text(cfg.out / "conversion_report.md", report.markdown(out))
    return out


FLOOR_MARGIN_PP = 0.5     # a new model may be this far below the published one's test accuracy


def published_accuracy(model: Path = DEFAULT_MODEL) -> float | None:
    """The MNIST test accuracy (percent) the published model's manifest claims, if there is one."""
    try:
        return 100 * float(json.loads(model.with_suffix(".json").read_text())["validated"]["tflite_accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def accuracy_floor(cfg: ConvertConfig) -> float | None:
    if cfg.min_accuracy is not None:
        return cfg.min_accuracy
    claim = published_accuracy()
    return None if claim is None else round(claim - FLOOR_MARGIN_PP, 2)


def gate(result: dict, cfg: ConvertConfig, floor: float | None) -> list[str]:
    """Why a candidate may not be used: it lost accuracy against its Keras source, or it is not
    good enough in itself (a model trained for one epoch loses nothing in conversion)."""
    failures = []
    if floor is not None and result["tflite_accuracy"] * 100 < floor:
        failures.append(f"accuracy {result['tflite_accuracy']:.2%} < floor {floor}% (--min-accuracy)")
    if result["drop_pp"] > cfg.max_drop:
        failures.append(f"accuracy drop {result['drop_pp']:.2f} pp > {cfg.max_drop} pp")
    if result["agreement"] * 100 < cfg.min_agreement:
        failures.append(f"agreement {result['agreement']:.2%} < {cfg.min_agreement}%")
    if result["select_tf_ops"]:
        failures.append("uses Select TF ops (Flex), which tflite-runtime cannot run")
    return failures
