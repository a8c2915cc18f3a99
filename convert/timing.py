"""The one timing loop behind every latency figure (the conversion report and the benchmarks)."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np


def per_image_us(fn: Callable[[], object], n_images: int, repeats: int = 3, min_seconds: float = 0.2) -> dict:
    """Microseconds per image of `fn()` (which handles `n_images`): after one warm-up call, `repeats`
    timed loops of at least `min_seconds` each; their median, min, max."""
    fn()
    runs = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        runs.append(elapsed / (n * n_images) * 1e6)
    return {"median": float(np.median(runs)), "min": float(min(runs)), "max": float(max(runs)), "runs": len(runs)}
