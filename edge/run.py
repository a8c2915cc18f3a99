"""The camera loop: frame -> digits -> one batched invoke -> one line per frame on stdout."""
from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from .atomic import write_bytes
from . import touching
from .interpreter import DigitModel
from .preprocess import Digit, find_digits, reading
from .sources import EndOfStream

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_CAMERA_LOST = 0, 1, 4   # 2: usage, from argparse


@dataclass
class RunOptions:
    single: bool = False
    min_confidence: float = 0.5
    json: bool = False
    on_change: int = 0            # print only readings stable for this many frames (0: every frame)
    every: int = 1                # process every Nth frame
    fps: float = 0.0              # cap on processed frames per second (0: no cap)
    roi: tuple[int, int, int, int] | None = None
    max_frames: int = 0           # stop after this many processed frames (0: no limit)
    debug_dir: Path | None = None
    save_annotated: Path | None = None
    show: bool = False


@dataclass
class FrameResult:
    frame: int
    time: str
    reading: str
    digits: list[dict]
    ms: dict

    def as_json(self) -> str:
        return json.dumps({"frame": self.frame, "time": self.time, "reading": self.reading,
                           "digits": self.digits, "ms": self.ms})

    def as_text(self) -> str:
        conf = ",".join(f"{d['confidence']:.2f}" for d in self.digits) or "-"
        shown = self.reading.replace("\n", "/") or "-"
        return (f"{self.time} frame={self.frame} reading={shown} confidence={conf} "
                f"preprocess={self.ms['preprocess']:.2f}ms inference={self.ms['inference']:.2f}ms "
                f"total={self.ms['total']:.2f}ms")


@dataclass
class Summary:
    frames_read: int = 0
    frames_processed: int = 0
    bad_frames: int = 0
    readings: int = 0
    lines_printed: int = 0
    ms: dict = field(default_factory=lambda: {"preprocess": [], "inference": [], "total": []})
    started: float = field(default_factory=time.perf_counter)

    def text(self) -> str:
        elapsed = time.perf_counter() - self.started
        mean = {k: (float(np.mean(v)) if v else 0.0) for k, v in self.ms.items()}
        fps = self.frames_processed / elapsed if elapsed > 0 else 0.0
        return (f"summary: {self.frames_read} frames read, {self.frames_processed} processed, "
                f"{self.bad_frames} bad, {self.readings} with digits; {fps:.1f} fps; mean ms "
                f"preprocess {mean['preprocess']:.2f}, inference {mean['inference']:.2f}, total {mean['total']:.2f}")


def classify_frame(model: DigitModel, image: np.ndarray, single: bool = False
                   ) -> tuple[list[Digit], np.ndarray, dict]:
    """Digits found in one image, their probabilities (one invoke for all), and timings in ms."""
    t0 = time.perf_counter()
    digits = find_digits(image, single=single)
    t1 = time.perf_counter()
    digits, probs = touching.predict(model, [digits], drop_non_digits=not single)[0]
    t2 = time.perf_counter()
    ms = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "total": (t2 - t0) * 1e3}
    return digits, probs, ms


def describe(model: DigitModel, digits: list[Digit], probs: np.ndarray, min_confidence: float,
             offset: tuple[int, int] = (0, 0)) -> tuple[str, list[dict]]:
    """Reading string and per-digit records, '?' for digits below min_confidence."""
    best = probs.argmax(1) if len(probs) else np.zeros(0, int)
    conf = probs.max(1) if len(probs) else np.zeros(0)
    labels = [model.labels[i] for i in best]
    text = reading(digits, labels, [c >= min_confidence for c in conf])
    records = [{"digit": labels[i], "confidence": round(float(conf[i]), 4),
                "box": [d.box[0] + offset[0], d.box[1] + offset[1], d.box[2], d.box[3]]}
               for i, d in enumerate(digits)]
    return text, records


def annotate(frame: np.ndarray, records: list[dict], min_confidence: float) -> np.ndarray:
    out = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    for r in records:
        x, y, w, h = r["box"]
        color = (0, 200, 0) if r["confidence"] >= min_confidence else (0, 0, 230)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, 2)
        cv2.putText(out, f"{r['digit']} {r['confidence']:.2f}", (x, max(12, y - 6)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, 2)
    return out


def valid_frame(frame) -> bool:
    return (isinstance(frame, np.ndarray) and frame.dtype in (np.uint8, np.uint16) and frame.size > 0
            and (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))))


class StopFlag:
    """Set by SIGINT/SIGTERM so the loop ends cleanly and the camera is released."""

    def __init__(self):
        self.stop = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self.stop = True


def run(source, model: DigitModel, opts: RunOptions, out: TextIO = sys.stdout,
        stop: StopFlag | None = None, summary: Summary | None = None) -> Summary:
    """Read frames until the source ends, max_frames, or a stop signal.

    CameraLost propagates; pass in `summary` to still have the counts when it does.
    """
    stop = stop or StopFlag()
    summary = summary if summary is not None else Summary()
    stable_text, stable_count, printed_text = None, 0, None
    min_interval = 1.0 / opts.fps if opts.fps > 0 else 0.0
    last_start = 0.0
    show = opts.show
    while not stop.stop:
        if opts.max_frames and summary.frames_processed >= opts.max_frames:
            break
        try:
            frame = source.read()
        except EndOfStream:
            break
        summary.frames_read += 1
        if not valid_frame(frame):
            summary.bad_frames += 1
            continue
        if (summary.frames_read - 1) % opts.every:
            continue
        if min_interval:
            wait = last_start + min_interval - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            last_start = time.perf_counter()
        offset = (0, 0)
        image = frame
        if opts.roi:
            x, y, w, h = opts.roi
            image, offset = frame[y:y + h, x:x + w], (x, y)
            if image.size == 0:
                summary.bad_frames += 1
                continue
        try:
            digits, probs, ms = classify_frame(model, image, opts.single)
        except Exception as e:  # one bad frame never ends the run
            log.warning("frame %d skipped: %s: %s", summary.frames_read, type(e).__name__, e)
            summary.bad_frames += 1
            continue
        index = summary.frames_processed
        summary.frames_processed += 1
        for k in ms:
            summary.ms[k].append(ms[k])
        text, records = describe(model, digits, probs, opts.min_confidence, offset)
        summary.readings += bool(text)
        result = FrameResult(index, dt.datetime.now().isoformat(timespec="milliseconds"), text, records,
                             {k: round(v, 3) for k, v in ms.items()})
        if opts.debug_dir:
            for i, d in enumerate(digits):
                ok, png = cv2.imencode(".png", d.pixels)
                write_bytes(opts.debug_dir / f"frame{index:06d}_{i}_{records[i]['digit']}.png", png.tobytes())
        if opts.save_annotated or show:
            drawn = annotate(frame, records, opts.min_confidence)
            if opts.save_annotated:
                ok, jpg = cv2.imencode(".jpg", drawn)
                write_bytes(opts.save_annotated / f"frame{index:06d}.jpg", jpg.tobytes())
            if show:
                show = _show(drawn)
        if opts.on_change:
            stable_count = stable_count + 1 if text == stable_text else 1
            stable_text = text
            if stable_count != opts.on_change or text == printed_text:
                continue
            printed_text = text
        print(result.as_json() if opts.json else result.as_text(), file=out, flush=True)
        summary.lines_printed += 1
    return summary


def _show(image: np.ndarray) -> bool:
    """Draw in a window; False (and a warning) when there is no display or no GUI in this OpenCV."""
    try:
        cv2.imshow("digits", image)
        cv2.waitKey(1)
        return True
    except cv2.error as e:
        log.warning("--show disabled: no display available (%s)", str(e).strip().splitlines()[-1])
        return False
