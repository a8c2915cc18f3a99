"""python -m bench: every speed and size claim of the toolkit, measured side by side in one run.

make bench (≤ 10 min here) or make bench QUICK=1 (≤ 1 min; fewer repeats and images, same
structure). Writes bench/results.json (machine, every figure with median and spread) and
bench/results.md (the table the README's performance section is copied from).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from edge.interpreter import DigitModel  # noqa: E402

from convert.quantize import MODES  # noqa: E402
from convert.timing import per_image_us  # noqa: E402

from . import live, photos, pipeline  # noqa: E402
from .machine import PEAK_RSS, machine, peak_kb  # noqa: E402



def quartiles(values: np.ndarray) -> dict:
    q1, median, q3 = (float(v) for v in np.percentile(values, (25, 50, 75)))
    return {"median": median, "min": q1, "max": q3, "runs": int(len(values))}


def inference(models: Path, x: np.ndarray, quick: bool) -> dict:
    """The seeds' way (Keras predict, one image per call) against every .tflite through edge/."""
    import keras
    from train.model import normalize

    repeats, secs = (2, 0.1) if quick else (5, 1.0)
    keras_model = keras.models.load_model(models / "digit_cnn.keras", compile=False)
    manifest = json.loads((models / "digit_cnn.json").read_text())
    one = normalize(x[:1], manifest["normalization"])
    out = {"keras_predict_batch1": per_image_us(lambda: keras_model.predict(one, verbose=0), 1, repeats, secs)}
    batch = x[:256]
    for mode in MODES:
        path = models / f"digit_{mode}.tflite"
        if not path.exists():
            continue
        for threads in sorted({1, os.cpu_count() or 1}):
            m = DigitModel(path, threads=threads)
            out[f"{mode}_batch1_threads{threads}"] = per_image_us(lambda: m.predict(batch[:1]), 1, repeats, secs)
            out[f"{mode}_batch256_threads{threads}"] = per_image_us(lambda: m.predict(batch), 256, repeats, secs)
    base = out["keras_predict_batch1"]["median"]
    for v in out.values():
        v["speedup_vs_keras_predict"] = base / v["median"]
    return out


def training(quick: bool, data_dir: str | None) -> dict:
    """Per architecture: seconds per full epoch (54,000 images), from the timed steps of a short
    run's second (warm) epoch; and the int8 speed of that architecture, from converting the short
    run's model (speed does not depend on how well it was trained)."""
    import keras
    from convert.quantize import calibration_images, convert
    from train.data import load_mnist
    from train.model import NORMALIZATION, normalize
    from train.config import DEFAULTS, TrainConfig
    from train.train import run

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.t)

    (x_train, y_train), (x_test, _) = load_mnist(data_dir)
    out = {}
    for arch in ("seed", "edge"):
        timer = StepTimer()
        with tempfile.TemporaryDirectory() as tmp:
            manifest = run(TrainConfig(arch=arch, epochs=2, limit=1500 if quick else 12000, data_dir=data_dir,
                                       out=Path(tmp), verbose=0, callbacks=[timer]))
            model = keras.models.load_model(Path(tmp) / "digit_cnn.keras", compile=False)
            calibration = normalize(calibration_images(x_train, y_train, 100), NORMALIZATION)
            path = Path(tmp) / "int8.tflite"
            path.write_bytes(convert(model, "int8", calibration))
            int8 = DigitModel(path, manifest={"sha256": "", "normalization": NORMALIZATION,
                                                "labels": manifest["labels"]}, threads=1)
            batch = x_test[:256]
            us = per_image_us(lambda: int8.predict(batch), 256, 2 if quick else 5, 0.3 if quick else 1.0)
        steps = np.array(timer.times[len(timer.times) // 2:])
        full_steps = int(np.ceil(54000 / DEFAULTS[arch]["batch_size"]))
        out[arch] = {"seconds_per_epoch": quartiles(steps * full_steps),
                     "params": manifest["params"], "macs": manifest["macs"],
                     "int8_us_per_image_batch256": us, "int8_mac_per_second": manifest["macs"] / (us["median"] * 1e-6)}
    return out


def _subprocess_json(module: str, args: list[str]) -> dict:
    """Run a benchmark module in a fresh process, as a user would: no TensorFlow loaded, and
    forked workers that do not inherit this process's memory."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        subprocess.run([sys.executable, "-m", module, *args, "--out", str(out)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def camera(models: Path, quick: bool, data_dir: str | None) -> dict:
    args = ["--model", str(models / "digit_int8.tflite"), "--frames", "30" if quick else "200",
            "--repeats", "2" if quick else "3"] + (["--data-dir", data_dir] if data_dir else [])
    return _subprocess_json("bench.pipeline", args)["results"]


def folders(models: Path, quick: bool, data_dir: str | None) -> dict:
    args = ["--model", str(models / "digit_int8.tflite"), "--small", "500" if quick else "5000",
            "--large", "2" if quick else "24", "--repeats", "2" if quick else "3"] + \
           (["--data-dir", data_dir] if data_dir else [])
    return _subprocess_json("bench.folder", args)["images_per_second"]


def edge_peak_rss(models: Path, x, y) -> dict:
    """Peak resident memory of `python -m edge` reading a 4-digit video: what a Pi must have free."""
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "rss.avi"
        pipeline.video_frames(video, x, y, 4, 60, rng, keep=False)
        r = subprocess.run([sys.executable, "-c", PEAK_RSS, "edge", "--source", str(video), "--json", "--model",
                            str(models / "digit_int8.tflite")], cwd=ROOT, check=True, capture_output=True, text=True)
    return {"edge_runtime_peak_rss_mb": peak_kb(r.stderr) / 1024}


def live_view(models: Path, quick: bool, data_dir: str | None) -> dict:
    args = ["--model", str(models / "digit_int8.tflite")] + (["--quick"] if quick else []) + \
           (["--data-dir", data_dir] if data_dir else [])
    return _subprocess_json("bench.live", args)


def sizes(models: Path) -> dict:
    return {p.name: p.stat().st_size for p in sorted(models.glob("digit_*")) if p.suffix in (".keras", ".tflite")}


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['machine']}; " +
             ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + f". Mode: {'quick' if r['quick'] else 'full'}.",
             "", "| inference (per image) | µs median | min–max | vs Keras predict |", "| --- | --- | --- | --- |"]
    for k, v in r["inference"].items():
        lines.append(f"| {k} | {v['median']:.1f} | {v['min']:.1f}–{v['max']:.1f} | {v['speedup_vs_keras_predict']:,.0f}x |")
    lines += ["", "| architecture | params | MACs/image | int8 µs/image (batch 256, 1 thread) | achieved MAC/s "
              "| training s/epoch (54k images, median of steps ×) |", "| --- | --- | --- | --- | --- | --- |"]
    for arch, t in r["training"].items():
        lines.append(f"| {arch} | {t['params']:,} | {t['macs']:,} | {t['int8_us_per_image_batch256']['median']:.1f} | "
                     f"{t['int8_mac_per_second'] / 1e9:.1f} G | {t['seconds_per_epoch']['median']:.1f} |")
    lines += ["", "| camera frame 640x480, 1 core | preprocess ms | inference ms | total ms | fps | digits right |",
              "| --- | --- | --- | --- | --- | --- |"]
    for k, v in r["camera"].items():
        lines.append(f"| {k.replace('_', ' ')} | {v['preprocess']['median_ms']:.3f} | {v['inference']['median_ms']:.3f} | "
                     f"{v['total']['median_ms']:.3f} | {v['fps']:.0f} | {v['digit_accuracy']:.2%} |")
    lines += ["", "| folder | images/s median | min–max |", "| --- | --- | --- |"]
    for k, v in r["folder"].items():
        lines.append(f"| {k} | {v['median']:,.1f} | {v['min']:,.1f}–{v['max']:,.1f} |")
    lines += ["", live.markdown(r["live"])]
    if r.get("photos"):
        lines += ["", photos.markdown(r["photos"])]
    lines += ["", "| file | bytes |", "| --- | --- |"] + [f"| {k} | {v:,} |" for k, v in r["sizes"].items()]
    lines += ["", f"Peak RSS of `python -m edge` on a video: {r['memory']['edge_runtime_peak_rss_mb']:.0f} MB.",
              f"int8 batched vs Keras predict per image: {r['int8_batched_vs_keras_predict']:,.0f}x."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="≤ 1 minute: fewer repeats and images")
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "results.json",
                   help="default: build/bench/results.json (bench/results.* hold the README's figures)")
    p.add_argument("--data-dir", help="MNIST folder (default: $MNIST_DIR, Keras cache, download)")
    p.add_argument("--photos", type=Path, default=photos.DEFAULT_PHOTOS,
                   help="labelled real photos (default: $PHOTOS_DIR or ../shared/datasets/real-photos)")
    args = p.parse_args(argv)
    from edge.quiet import import_tensorflow
    import_tensorflow()                       # without its C++ start-up lines
    from train.data import load_mnist
    (_, _), (x, y) = load_mnist(args.data_dir)
    start = time.perf_counter()
    r = {"quick": args.quick, "machine": machine(), "stage_seconds": {}}

    def stage(name: str, fn, *a):
        t = time.perf_counter()
        r[name] = fn(*a)
        r["stage_seconds"][name] = round(time.perf_counter() - t, 1)

    stage("inference", inference, args.models, x, args.quick)
    stage("training", training, args.quick, args.data_dir)
    int8 = r["inference"]["int8_batch256_threads1"]["median"]
    r["int8_batched_vs_keras_predict"] = r["inference"]["keras_predict_batch1"]["median"] / int8
    stage("camera", camera, args.models, args.quick, args.data_dir)
    stage("folder", folders, args.models, args.quick, args.data_dir)
    stage("live", live_view, args.models, args.quick, args.data_dir)
    # Real photos beside Tesseract (quick: its usual page-segmentation mode only).
    stage("photos", photos.run, args.photos, args.models / "digit_int8.tflite",
          (11,) if args.quick else photos.PSM_MODES)
    r["sizes"] = sizes(args.models)
    stage("memory", edge_peak_rss, args.models, x, y)
    r["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    table = markdown(r)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"bench: {r['seconds']:.0f} s; wrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
