"""The camera loop under viewers and over a long run.

python -m bench.live [--quick]
- Viewers: `python -m edge --serve` on a 640x480 four-digit video with 0, 1 and 5 viewers pulling
  the MJPEG stream as fast as they can (as browsers do): frames/s from the program's own summary
  and its peak RSS (VmHWM), the median of 3 interleaved runs after a warm-up run (quick: one run).
  Viewers attach when the server accepts connections, a few frames in.
- Soak: the loop in this process over many small camera frames (a digit each), RSS sampled after
  warm-up and at the end: what a day of frames would add.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from edge.interpreter import DEFAULT_MODEL, DigitModel
from edge.run import RunOptions, run
from edge.sources import EndOfStream
from synthetic.frames import frame, write_video

from .machine import PEAK_RSS, peak_kb

ROOT = Path(__file__).resolve().parent.parent

def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _viewer(port: int, stop: threading.Event, frames: list[int]) -> None:
    while not stop.is_set():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/stream.mjpg")
            r = conn.getresponse()
            while not stop.is_set():
                if not r.fp.read(65536):
                    break
                frames[0] += 1
        except OSError:
            time.sleep(0.01)


def with_viewers(video: Path, model: Path, n: int) -> dict:
    port, stop, received = _port(), threading.Event(), [0]
    proc = subprocess.Popen([sys.executable, "-c", PEAK_RSS, "edge", "--source", str(video), "--json", "--model", str(model),
                             "--serve", f"127.0.0.1:{port}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    threads = [threading.Thread(target=_viewer, args=(port, stop, received), daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    _, err = proc.communicate(timeout=600)
    stop.set()
    fps = float(re.search(r"; ([\d.]+) fps;", err).group(1))
    return {"viewers": n, "fps": fps, "peak_rss_mb": peak_kb(err) / 1024,
            "stream_bytes_read_chunks": received[0]}


class Repeat:
    """The same few frames, n times: a camera that never stops."""
    live = False

    def __init__(self, frames: list[np.ndarray], n: int, on_frame=None):
        self.frames, self.n, self.i, self.on_frame = frames, n, 0, on_frame

    def read(self) -> np.ndarray:
        if self.i >= self.n:
            raise EndOfStream("done")
        self.i += 1
        if self.on_frame:
            self.on_frame(self.i)
        return self.frames[self.i % len(self.frames)]


def _rss_kb() -> int:
    return int([line for line in open("/proc/self/status") if line.startswith("VmRSS:")][0].split()[1])


def soak(model_path: Path, n: int, data_dir: str | None) -> dict:
    from train.data import load_mnist   # the benchmark may use train/; the device code never does
    (_, _), (x, _) = load_mnist(data_dir)
    rng = np.random.default_rng(3)
    frames = [cv2.resize(frame([x[i]], rng), (160, 120), interpolation=cv2.INTER_AREA) for i in range(50)]
    warm = min(10_000, n // 5)
    samples = {}

    def sample(i: int) -> None:
        if i == warm or i == n:
            samples[i] = _rss_kb()

    model = DigitModel(model_path)
    start = time.perf_counter()
    with open(os.devnull, "w") as out:
        summary = run(Repeat(frames, n, sample), model, RunOptions(json=True), out=out)
    return {"frames": summary.frames_processed, "seconds": round(time.perf_counter() - start, 1),
            "rss_after_warmup_mb": samples[warm] / 1024, "rss_at_end_mb": samples[n] / 1024,
            "growth_mb": (samples[n] - samples[warm]) / 1024, "warmup_frames": warm}


def run_all(model: Path, quick: bool, data_dir: str | None) -> dict:
    from train.data import load_mnist
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "viewers.avi"
        write_video(video, load_mnist(data_dir)[1], n_frames=300 if quick else 3000, counts=(4,))
        if not quick:
            with_viewers(video, model, 0)                 # warm-up: page cache, first imports
        runs = {n: [] for n in (0, 1, 5)}
        for _ in range(1 if quick else 3):                # interleaved, so drift hits every count alike
            for n in runs:
                runs[n].append(with_viewers(video, model, n))
    viewers = [sorted(rs, key=lambda v: v["fps"])[len(rs) // 2] | {"runs": len(rs)} for rs in runs.values()]
    base = viewers[0]
    for v in viewers:
        v["fps_vs_no_viewer"] = v["fps"] / base["fps"]
        v["rss_vs_no_viewer"] = v["peak_rss_mb"] / base["peak_rss_mb"]
    return {"viewers": viewers, "soak": soak(model, 6_000 if quick else 200_000, data_dir)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "live.json")
    args = p.parse_args(argv)
    r = run_all(args.model, args.quick, args.data_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(markdown(r))
    return 0


def markdown(r: dict) -> str:
    lines = ["| camera loop, 640x480, 4 digits | frames/s | vs no viewer | peak RSS MB | vs no viewer |",
             "| --- | --- | --- | --- | --- |"]
    for v in r["viewers"]:
        lines.append(f"| {v['viewers']} viewer(s) | {v['fps']:.0f} | {v['fps_vs_no_viewer']:.0%} | "
                     f"{v['peak_rss_mb']:.0f} | {v['rss_vs_no_viewer']:.2f}x |")
    s = r["soak"]
    lines += ["", f"Soak: {s['frames']:,} frames in {s['seconds']:.0f} s; RSS {s['rss_after_warmup_mb']:.1f} MB after "
              f"{s['warmup_frames']:,} frames, {s['rss_at_end_mb']:.1f} MB at the end: growth {s['growth_mb']:+.2f} MB."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
