"""Camera pipeline speed: per-frame preprocessing, inference and total on 640x480 frames from a real video.

python -m bench.pipeline [--model models/digit_int8.tflite] [--frames 300]
Writes a video of camera-like frames (one digit, then four digits), decodes it with OpenCV, and
times find_digits + one batched invoke per frame on one core. Prints a Markdown table and
writes bench/pipeline.json. Also reports digit accuracy on those frames.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from edge.interpreter import DEFAULT_MODEL, DigitModel  # noqa: E402
from edge.reading import read  # noqa: E402

from .machine import cpu_name  # noqa: E402
from synthetic.frames import digit_accuracy, write_video  # noqa: E402


def load_test_digits(data_dir: str | None):
    from train.data import load_mnist  # the benchmark may use train/; the device code never does
    return load_mnist(data_dir)[1]


def measure(model: DigitModel, frames: list[np.ndarray], repeats: int = 3) -> dict:
    """Median over repeats of the mean per-frame milliseconds of each stage."""
    runs = []
    for _ in range(repeats):
        ms = {"preprocess": [], "inference": [], "total": []}
        for f in frames:
            t = read(model, f)[0].ms
            for k in ms:
                ms[k].append(t[k])
        runs.append({k: float(np.mean(v)) for k, v in ms.items()})
    out = {}
    for k in ("preprocess", "inference", "total"):
        values = [r[k] for r in runs]
        out[k] = {"median_ms": float(np.median(values)), "min_ms": min(values), "max_ms": max(values)}
    out["fps"] = 1000.0 / out["total"]["median_ms"]
    return out


def video_frames(path: Path, x, y, n_digits: int, n_frames: int, rng: np.random.Generator,
                 keep: bool = True) -> tuple[list[np.ndarray], list[str]]:
    """Write an MJPG video of camera-like frames, decode it back with OpenCV (as a camera would
    deliver them). Returns the decoded frames (empty unless keep) and the true readings."""
    truth = write_video(path, (x, y), n_frames, seed=rng, fps=30, counts=(n_digits,))
    frames = []
    if keep:
        cap = cv2.VideoCapture(str(path))
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
    return frames, truth


def accuracy(model: DigitModel, frames: list[np.ndarray], truth: list[str]) -> float:
    readings = [read(model, f, min_confidence=0.0)[0].text for f in frames]
    return digit_accuracy(truth, readings)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--frames", type=int, default=200, help="frames per case (default: 200)")
    p.add_argument("--data-dir", help="MNIST folder (default: $MNIST_DIR)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes over the frames (default: 3)")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "pipeline.json")
    args = p.parse_args(argv)
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # one core, as on a busy Pi
    except (AttributeError, OSError):
        pass
    cv2.setNumThreads(1)
    x, y = load_test_digits(args.data_dir)
    model = DigitModel(args.model, threads=1)
    rng = np.random.default_rng(0)
    results = {}
    for n in (1, 4):
        with tempfile.TemporaryDirectory() as tmp:
            frames, truth = video_frames(Path(tmp) / "frames.avi", x, y, n, args.frames, rng)
        results[f"{n}_digit"] = {**measure(model, frames, args.repeats), "frames": len(frames),
                                  "digit_accuracy": accuracy(model, frames, truth)}
    report = {"machine": {"cpu": cpu_name(), "python": platform.python_version(), "opencv": cv2.__version__,
                          "backend": model.backend, "cores_used": 1}, "model": str(args.model), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("| frame (640x480) | preprocess ms | inference ms | total ms | frames/s | digits read right |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name.replace('_', ' ')} | {r['preprocess']['median_ms']:.3f} | {r['inference']['median_ms']:.3f} | "
              f"{r['total']['median_ms']:.3f} | {r['fps']:.0f} | {r['digit_accuracy']:.2%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
