"""Folder classification throughput: small PNGs and 12 MP JPEGs, 1 worker and N workers.

python -m bench.folder [--small 5000] [--large 40] [--workers N]
Writes the images into a temporary folder (real files, decoded by OpenCV like any user's), then
times the same code path as `python -m edge.classify` (find_images + classify); median of 3 runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from edge.folder import Settings, classify  # noqa: E402
from edge.images import find_images  # noqa: E402
from edge.interpreter import DEFAULT_MODEL, read_manifest  # noqa: E402


def write_small(folder: Path, x: np.ndarray, n: int) -> None:
    for i in range(n):
        img = x[i % len(x)]
        cv2.imwrite(str(folder / f"{i:06d}.png"), img if i % 2 else 255 - img)


def write_large(folder: Path, x: np.ndarray, n: int, rng: np.random.Generator) -> None:
    """4000x3000 'phone photos': a few digits in dark ink on unevenly lit paper, JPEG quality 90."""
    yy, xx = np.mgrid[0:3000, 0:4000].astype(np.float32)
    for i in range(n):
        paper = 200 + 30 * (xx / 4000) - 20 * (yy / 3000) + rng.normal(0, 4, (3000, 4000)).astype(np.float32)
        for k in range(3):
            d = cv2.resize(x[(i * 3 + k) % len(x)], (700, 700), interpolation=cv2.INTER_AREA).astype(np.float32)
            x0, y0 = 700 + k * 900, 1100
            paper[y0:y0 + 700, x0:x0 + 700] -= d * 0.6
        cv2.imwrite(str(folder / f"photo_{i:03d}.jpg"), np.clip(paper, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])


def rates(folder: Path, settings: Settings, workers: int, repeats: int = 3) -> list[float]:
    """Images per second of each of `repeats` full runs (listing, decoding, classifying)."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        rows = classify(find_images([str(folder)]), settings, workers)
        elapsed = time.perf_counter() - start
        # Every file is decoded and read; a digit the model takes for "not a digit" (about 1 in
        # 1,000 MNIST digits) is a "no digit found" row, which is still a file classified.
        problems = [r.error for r in rows if r.status != "ok" and r.error != "no digit found"]
        assert not problems and sum(r.status != "ok" for r in rows) <= 0.01 * len(rows), problems[:3]
        out.append(len(rows) / elapsed)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.folder", description=__doc__)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--small", type=int, default=5000, help="small PNGs (default: 5000)")
    p.add_argument("--large", type=int, default=24, help="12 MP JPEGs (default: 24)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case (default: 3)")
    p.add_argument("--data-dir", help="MNIST folder (default: $MNIST_DIR)")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "folder.json")
    args = p.parse_args(argv)
    from train.data import load_mnist
    x = load_mnist(args.data_dir)[1][0]
    settings = Settings(str(args.model), read_manifest(args.model))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "small", Path(tmp) / "large"
        small.mkdir()
        large.mkdir()
        write_small(small, x, args.small)
        write_large(large, x, args.large, np.random.default_rng(0))
        for name, folder in (("small_png_28px", small), ("jpeg_12mp", large)):
            for w in sorted({1, args.workers}):
                runs = rates(folder, settings, w, args.repeats)
                results[f"{name}_workers{w}"] = {"median": float(np.median(runs)), "min": min(runs),
                                                 "max": max(runs), "runs": len(runs)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"images_per_second": results, "cpu_count": os.cpu_count()}, indent=2) + "\n")
    print("| images | workers | images/s (median) |")
    print("| --- | --- | --- |")
    for key, value in results.items():
        name, w = key.rsplit("_workers", 1)
        print(f"| {name} | {w} | {value['median']:,.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
