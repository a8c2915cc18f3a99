"""The camera loop: frame -> reading (one batched invoke) -> one line per frame on stdout.

`run()` is the loop; what happens around a reading (waiting for a steady one, writing debug
pictures, keeping the statistics) has a small class of its own below it.
"""
from __future__ import annotations

import datetime as dt
import errno
import functools
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import cv2
import numpy as np

from .atomic import write_bytes
from .draw import annotate
from .errors import first_line
from .interpreter import DigitModel
from .reading import DEFAULT_MIN_CONFIDENCE, Reading, read
from .sources import EndOfStream

log = logging.getLogger(__name__)

MAX_FRAME_ERRORS = 50    # this many frames in a row failing to read (not to arrive) end the run


class FrameErrors(Exception):
    """Every recent frame failed in the reader itself (a model that cannot run, not a camera)."""


@dataclass
class RunOptions:
    single: bool = False
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    json: bool = False
    on_change: int = 0            # print only readings stable for this many frames (0: every frame)
    every: int = 1                # process every Nth frame
    fps: float = 0.0              # cap on processed frames per second (0: no cap)
    roi: tuple[int, int, int, int] | None = None
    max_frames: int = 0           # stop after this many frames read (0: no limit)
    max_frame_errors: int = MAX_FRAME_ERRORS
    debug_dir: Path | None = None
    save_annotated: Path | None = None
    show: bool = False


@dataclass
class FrameResult:
    frame: int
    time: str
    reading: Reading

    @functools.cached_property
    def record(self) -> dict:
        """The JSON record: what --json prints and the live view serves (built once per frame)."""
        return {"frame": self.frame, "time": self.time, "reading": self.reading.text,
                "digits": self.reading.records(), "ms": {k: round(v, 3) for k, v in self.reading.ms.items()}}

    def as_json(self) -> str:
        return json.dumps(self.record)

    def as_text(self) -> str:
        r = self.reading
        conf = ",".join(f"{d.confidence:.2f}" for d in r.digits) or "-"
        shown = r.text.replace("\n", "/") or "-"
        return (f"{self.time} frame={self.frame} reading={shown} confidence={conf} "
                f"preprocess={r.ms['preprocess']:.2f}ms inference={r.ms['inference']:.2f}ms "
                f"total={r.ms['total']:.2f}ms")


@dataclass
class Summary:
    """Counts and running sums only: memory stays flat however long the camera runs."""
    frames_read: int = 0
    frames_processed: int = 0
    bad_frames: int = 0
    readings: int = 0
    lines_printed: int = 0
    ms_sum: dict = field(default_factory=lambda: {"preprocess": 0.0, "inference": 0.0, "total": 0.0})
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None          # when the loop stopped (what comes after is not the loop's)

    def add(self, reading: Reading) -> None:
        self.frames_processed += 1
        self.readings += bool(reading.text)
        for k in self.ms_sum:
            self.ms_sum[k] += reading.ms.get(k, 0.0)

    def mean_ms(self) -> dict:
        return {k: v / self.frames_processed if self.frames_processed else 0.0 for k, v in self.ms_sum.items()}

    def fps(self) -> float:
        elapsed = (self.ended or time.perf_counter()) - self.started
        return self.frames_processed / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        mean = self.mean_ms()
        return (f"summary: {self.frames_read} frames read, {self.frames_processed} processed, "
                f"{self.bad_frames} bad, {self.readings} with digits; {self.fps():.1f} fps; mean ms "
                f"preprocess {mean['preprocess']:.2f}, inference {mean['inference']:.2f}, total {mean['total']:.2f}")


class OnChange:
    """--on-change N: a reading is printed once, when it has been the same for N frames."""

    def __init__(self, frames: int):
        self.frames, self.current, self.count, self.printed = frames, None, 0, None

    def wants(self, text: str) -> bool:
        if not self.frames:
            return True
        self.count = self.count + 1 if text == self.current else 1
        self.current = text
        if self.count != self.frames or text == self.printed:
            return False
        self.printed = text
        return True


class DebugWriter:
    """--debug-dir crops and --save-annotated frames. A full disk or a bad folder must not end a
    service that reads digits: the first failure is a warning and the writing stops."""

    def __init__(self, debug_dir: Path | None, annotated_dir: Path | None):
        self.debug_dir, self.annotated_dir = debug_dir, annotated_dir

    def write(self, index: int, frame: np.ndarray, reading: Reading, digits, min_confidence: float) -> None:
        try:
            if self.debug_dir:
                for i, (d, r) in enumerate(zip(digits, reading.digits)):
                    ok, png = cv2.imencode(".png", d.pixels)
                    write_bytes(self.debug_dir / f"frame{index:06d}_{i}_{r.value}.png", png.tobytes())
            if self.annotated_dir:
                ok, jpg = cv2.imencode(".jpg", annotate(frame, reading, min_confidence))
                write_bytes(self.annotated_dir / f"frame{index:06d}.jpg", jpg.tobytes())
        except OSError as e:
            what = "no space left on the device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
            log.warning("stopped writing debug pictures: %s (%s); reading goes on",
                        what, e.filename or self.debug_dir or self.annotated_dir)
            self.debug_dir = self.annotated_dir = None


class StopFlag:
    """Set by SIGINT/SIGTERM so the loop ends cleanly and the camera is released. `wait()` sleeps
    until the timeout or the signal, whichever comes first (a reconnect backoff must not delay
    a shutdown)."""

    def __init__(self):
        self._event = threading.Event()

    @property
    def stop(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self._event.set()


def valid_frame(frame) -> bool:
    return (isinstance(frame, np.ndarray) and frame.dtype in (np.uint8, np.uint16) and frame.size > 0
            and (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))))


def crop_roi(frame: np.ndarray, roi: tuple[int, int, int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    if not roi:
        return frame, (0, 0)
    x, y, w, h = roi
    return frame[y:y + h, x:x + w], (x, y)


def run(source, model: DigitModel, opts: RunOptions, out: TextIO = sys.stdout,
        stop: StopFlag | None = None, summary: Summary | None = None,
        on_result: Callable[[FrameResult, np.ndarray, bool], None] | None = None) -> Summary:
    """Read frames until the source ends, max_frames, or a stop signal.

    CameraLost and FrameErrors propagate; pass in `summary` to still have the counts when they do.
    `on_result(result, frame, printed)` sees every processed frame (the live view).
    """
    stop = stop or StopFlag()
    summary = summary if summary is not None else Summary()
    try:
        return _loop(source, model, opts, out, stop, summary, on_result)
    finally:
        summary.ended = time.perf_counter()


def _loop(source, model, opts: RunOptions, out: TextIO, stop: StopFlag, summary: Summary, on_result) -> Summary:
    on_change, debug = OnChange(opts.on_change), DebugWriter(opts.debug_dir, opts.save_annotated)
    min_interval = 1.0 / opts.fps if opts.fps > 0 else 0.0
    last_start, errors_in_a_row, show = 0.0, 0, opts.show
    while not stop.stop and not (opts.max_frames and summary.frames_read >= opts.max_frames):
        try:
            frame = source.read()
        except EndOfStream:
            break
        summary.frames_read += 1
        image, offset = crop_roi(frame, opts.roi) if valid_frame(frame) else (None, (0, 0))
        if image is None or image.size == 0:
            summary.bad_frames += 1
            continue
        if (summary.frames_read - 1) % opts.every:
            continue
        if min_interval:
            stop.wait(max(0.0, last_start + min_interval - time.perf_counter()))
            last_start = time.perf_counter()
        try:
            reading, digits = read(model, image, opts.single, opts.min_confidence, offset)
        except Exception as e:  # one bad frame never ends the run; a run of them does
            errors_in_a_row += 1
            summary.bad_frames += 1
            message = first_line(e, with_type=True)
            if errors_in_a_row >= opts.max_frame_errors:
                raise FrameErrors(f"{errors_in_a_row} frames in a row could not be read; last: {message}") from None
            log.warning("frame %d skipped: %s", summary.frames_read, message)
            continue
        errors_in_a_row = 0
        result = FrameResult(summary.frames_processed, dt.datetime.now().isoformat(timespec="milliseconds"), reading)
        summary.add(reading)
        debug.write(result.frame, frame, reading, digits, opts.min_confidence)
        if show:
            show = _show(annotate(frame, reading, opts.min_confidence))
        printed = on_change.wants(reading.text)
        if printed:
            print(result.as_json() if opts.json else result.as_text(), file=out, flush=True)
            summary.lines_printed += 1
        if on_result:
            on_result(result, frame, printed)
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
