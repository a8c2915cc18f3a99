"""Conversion to .tflite, validated through the edge runtime's own interpreter on all 10k test digits."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from convert.convert import ConvertConfig, run
from edge.interpreter import DigitModel, ModelError, sha256_file

from conftest import ROOT


def test_int8_model_is_full_integer_builtin_only_and_within_the_gate(converted, mnist):
    out, report = converted
    assert report["passed"], report
    r = report["models"]["int8"]
    assert r["test_images"] == 10000
    assert r["drop_pp"] <= 0.2 and r["agreement"] >= 0.995
    assert not r["select_tf_ops"] and not any(op.startswith("Flex") for op in r["ops"])
    model = DigitModel(out / "digit_int8.tflite", backend="ai_edge_litert")   # LiteRT alone, no TensorFlow
    assert model.input_dtype == np.int8 and model.output_dtype == np.int8
    (_, _), (x_test, y_test) = mnist
    acc = float((model.predict(x_test).argmax(1) == y_test).mean())
    assert acc == pytest.approx(r["tflite_accuracy"], abs=1e-9)
    assert acc > 0.9
    f32 = report["models"]["float32"]
    assert f32["agreement"] >= 0.9999 and f32["prob_abs_diff_max"] < 1e-4
    assert r["size_bytes"] * 3.0 < f32["size_bytes"]


def test_report_and_manifest_files(converted):
    out, report = converted
    saved = json.loads((out / "conversion_report.json").read_text())
    assert saved["passed"] is True and set(saved["models"]) == {"int8", "float32"}
    for key in ("keras_accuracy", "tflite_accuracy", "drop_pp", "agreement", "prob_abs_diff_mean",
                "prob_abs_diff_max", "per_class_change_pp", "size_bytes", "latency_us_batch1",
                "latency_us_batch256"):
        assert key in saved["models"]["int8"], key
    assert "| int8 | yes |" in (out / "conversion_report.md").read_text()
    m = json.loads((out / "digit_int8.json").read_text())
    assert m["sha256"] == sha256_file(out / "digit_int8.tflite")
    assert m["input"]["dtype"] == "int8" and m["input"]["shape"] == [-1, 28, 28, 1]
    q = m["input"]["quantization"]
    assert q["scale"] == pytest.approx(1 / 255) and q["zero_point"] == -128   # int8 = pixel - 128, lossless
    assert m["normalization"] == {"scale": 1 / 255, "offset": 0.0}
    assert m["labels"] == [str(i) for i in range(10)] + ["x"] and m["not_a_digit"] == "x"   # 11th class
    assert m["validated"]["test_images"] == 10000 and len(m["source_model"]["sha256"]) == 64


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_batch_n_equals_n_times_batch_1(converted, mnist, mode):
    out, _ = converted
    model = DigitModel(out / f"digit_{mode}.tflite")
    digits = mnist[1][0][:37]
    batched = model.predict(digits)
    single = np.concatenate([model.predict(d[None]) for d in digits])
    assert np.array_equal(batched, single)


def test_tampered_model_is_refused(converted, tmp_path, caplog):
    out, _ = converted
    shutil.copy(out / "digit_int8.tflite", tmp_path / "digit_int8.tflite")
    shutil.copy(out / "digit_int8.json", tmp_path / "digit_int8.json")
    data = bytearray((tmp_path / "digit_int8.tflite").read_bytes())
    data[len(data) // 2] ^= 0x01    # one bit of one weight
    (tmp_path / "digit_int8.tflite").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its manifest"):
        DigitModel(tmp_path / "digit_int8.tflite")
    DigitModel(tmp_path / "digit_int8.tflite", allow_mismatch=True)
    assert "running it anyway" in caplog.text


def test_broken_calibration_fails_the_gate_and_keeps_the_published_model(converted, small_model, mnist_dir, tmp_path):
    out, _ = converted
    for name in ("digit_int8.tflite", "digit_int8.json"):
        shutil.copy(out / name, tmp_path / name)
    before = (tmp_path / "digit_int8.tflite").read_bytes(), (tmp_path / "digit_int8.json").read_bytes()
    # Calibrate on raw 0..255 pixels while the model was trained on 0..1: a classic quantization bug.
    report = run(ConvertConfig(keras_model=small_model, out=tmp_path, modes=("int8",), data_dir=str(mnist_dir),
                               calibration_normalization={"scale": 1.0, "offset": 0.0}, min_accuracy=0.0))
    assert report["passed"] is False
    assert report["models"]["int8"]["drop_pp"] > 0.2
    assert ((tmp_path / "digit_int8.tflite").read_bytes(), (tmp_path / "digit_int8.json").read_bytes()) == before
    assert json.loads((tmp_path / "conversion_report.json").read_text())["passed"] is False
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_cli_gate_no_model_can_meet_exits_1(small_model, mnist_dir, tmp_path):
    shutil.copy(small_model, tmp_path / "digit_cnn.keras")
    shutil.copy(small_model.with_suffix(".json"), tmp_path / "digit_cnn.json")
    r = subprocess.run([sys.executable, "-m", "convert", "--model", str(tmp_path / "digit_cnn.keras"),
                        "--out", str(tmp_path), "--mode", "float32", "--min-agreement", "100.01",
                        "--min-accuracy", "0", "--data-dir", str(mnist_dir)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "float32 failed validation; not written" in r.stderr
    assert not (tmp_path / "digit_float32.tflite").exists()
    assert json.loads((tmp_path / "conversion_report.json").read_text())["passed"] is False


def test_a_useless_model_fails_the_default_accuracy_floor(small_model, mnist_dir, tmp_path):
    """An untrained model loses nothing in conversion (Keras and int8 agree on their guesses): the
    gate used to pass it. The default floor is the published model's claim minus 0.5 pp."""
    import keras
    from convert.convert import FLOOR_MARGIN_PP, published_accuracy
    from train.model import build
    manifest = json.loads(small_model.with_suffix(".json").read_text())
    keras.utils.set_random_seed(0)
    build("edge", classes=len(manifest["labels"])).save(tmp_path / "digit_cnn.keras")
    (tmp_path / "digit_cnn.json").write_text(json.dumps(manifest))
    report = run(ConvertConfig(keras_model=tmp_path / "digit_cnn.keras", out=tmp_path, modes=("float32",),
                               data_dir=str(mnist_dir)))
    floor = published_accuracy() - FLOOR_MARGIN_PP
    assert report["gate"]["min_accuracy_pct"] == pytest.approx(floor) and floor > 98
    r = report["models"]["float32"]
    assert r["drop_pp"] <= 0.2 and r["tflite_accuracy"] < 0.5          # it lost nothing, and is useless
    assert r["passed"] is False and any("floor" in f for f in r["failures"])
    assert not (tmp_path / "digit_float32.tflite").exists()


def test_publish_refuses_a_less_accurate_model_and_merges_the_report(converted, tmp_path):
    from convert.publish import PublishError, publish
    src, _ = converted
    dst = tmp_path / "models"
    dst.mkdir()
    for name in ("digit_int8.tflite", "digit_int8.json", "conversion_report.json"):
        shutil.copy(ROOT / "models" / name, dst / name)        # the published model claims 99.5 %
    before = (dst / "digit_int8.tflite").read_bytes()
    with pytest.raises(PublishError, match="below the published"):
        publish(src, dst)
    assert (dst / "digit_int8.tflite").read_bytes() == before
    written = publish(src, dst, force=True)
    assert "digit_int8.tflite" in written and (dst / "digit_int8.tflite").read_bytes() == (src / "digit_int8.tflite").read_bytes()
    merged = json.loads((dst / "conversion_report.json").read_text())
    assert set(merged["models"]) == {"int8", "float16", "dynamic", "float32"}   # the modes not rerun are kept
    assert DigitModel(dst / "digit_int8.tflite").labels[-1] == "x"
    stale = tmp_path / "stale"                      # trained again after converting: not publishable
    shutil.copytree(src, stale)
    (stale / "digit_cnn.keras").write_bytes(b"another model")
    with pytest.raises(PublishError, match="not the model"):
        publish(stale, dst, force=True)


def test_cli_missing_model_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "convert", "--model", str(tmp_path / "nope.keras")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == f"error: {tmp_path / 'nope.keras'} not found; run `make train` first"
    r = subprocess.run([sys.executable, "-m", "convert", "--model", "models/digit_int8.tflite"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "expected the Keras model" in r.stderr and "Traceback" not in r.stderr


def test_stripping_names_changes_nothing_the_device_computes(small_model, mnist):
    import keras
    from convert.quantize import convert
    model = keras.models.load_model(small_model, compile=False)
    stripped, named = convert(model, "float32"), convert(model, "float32", keep_names=True)
    assert len(stripped) < len(named)
    import tempfile
    from pathlib import Path
    outs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, data in enumerate((stripped, named)):
            path = Path(tmp) / f"m{i}.tflite"
            path.write_bytes(data)
            labels = json.loads(small_model.with_suffix(".json").read_text())["labels"]
            outs.append(DigitModel(path, manifest={"sha256": "", "normalization": {"scale": 1 / 255, "offset": 0},
                                                   "labels": labels})
                        .predict(mnist[1][0][:500]))
    assert np.array_equal(outs[0], outs[1])


def test_int8_graph_runs_as_one_xnnpack_partition(converted):
    # Flatten with a dynamic batch became SHAPE/STRIDED_SLICE/PACK/RESHAPE, which XNNPACK does not
    # take, and split the graph in two; the head is now a 3x3 convolution and a spatial mean.
    out, _ = converted
    ops = DigitModel(out / "digit_int8.tflite").op_names()
    assert not {"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"} & set(ops), ops
    if DigitModel(out / "digit_int8.tflite").backend == "ai_edge_litert":   # XNNPACK on by default there
        assert ops.count("DELEGATE") == 1, ops
