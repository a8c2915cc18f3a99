"""Many files read in worker processes: one row per file, in the order given, as they finish.

Files go in chunks (up to CHUNK share one invoke); each worker process has its own interpreter.
A worker that dies (the kernel's OOM killer, a crash in a decoder) costs the file it held an
error row, never the run: the pool is restarted and the chunk retried file by file.
"""
from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import signal
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from . import touching
from .errors import first_line
from .images import DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_PIXELS, BadImage, Entry, read_image
from .interpreter import DigitModel
from .preprocess import find_digits
from .reading import DEFAULT_MIN_CONFIDENCE, Reading, label

log = logging.getLogger(__name__)

CHUNK = 64
WORKER_DIED = "worker died while reading it (out of memory, or killed)"


@dataclass
class Row:
    path: str
    reading: str = ""
    confidence: float | None = None     # the least confident digit of the reading
    digits: int = 0
    status: str = "ok"
    error: str = ""
    seconds: float = 0.0                # decode + find digits + this file's share of the invoke
    read: Reading | None = field(default=None, repr=False)   # boxes and values, kept only for --report
    crops: list = field(default_factory=list, repr=False)    # 28x28 inputs, kept only for --report


@dataclass
class Settings:
    model_path: str
    manifest: dict
    threads: int = 1
    backend: str | None = None
    single: bool = False
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    max_pixels: int = DEFAULT_MAX_PIXELS
    keep_crops: bool = False
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES


_worker_model: DigitModel | None = None
_worker_settings: Settings | None = None


def _init_worker(settings: Settings) -> None:
    global _worker_model, _worker_settings
    _worker_settings = settings
    _worker_model = DigitModel(settings.model_path, manifest=settings.manifest, threads=settings.threads,
                               backend=settings.backend, quiet=True)


def _init_pool_worker(settings: Settings) -> None:
    """A forked worker inherits its parent's signal handlers; a parent that installed a SIGTERM
    handler (the camera loop does) would leave workers that the pool cannot stop. Workers die on
    SIGTERM and leave Ctrl-C to the parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(settings)


def _error(e: Exception) -> str:
    if isinstance(e, BadImage):
        return str(e)
    return first_line(e, limit=120, with_type=True)


def classify_chunk(entries: list[Entry]) -> list[Row]:
    """Decode and preprocess a chunk of files, then classify all their digits in one invoke."""
    s, model = _worker_settings, _worker_model
    rows, found = [], []
    for entry in entries:
        row = Row(entry.path)
        rows.append(row)
        digits = []
        start = time.perf_counter()
        if entry.problem:
            row.status, row.error = "error", entry.problem
        else:
            try:
                image = read_image(entry.path, s.max_pixels, max_decoded_bytes=s.max_decoded_bytes)
                digits = find_digits(image, single=s.single)
            except Exception as e:  # any failure is one row, never the end of the run
                row.status, row.error = "error", _error(e)
        row.seconds = time.perf_counter() - start
        found.append(digits)
    start = time.perf_counter()
    results = touching.predict(model, found, drop_non_digits=not s.single)   # one invoke for the chunk
    per_digit = (time.perf_counter() - start) / max(1, sum(len(ds) for ds in found))
    for row, (digits, probs) in zip(rows, results):
        if not digits:
            if row.status == "ok":     # nothing found, or every piece was read as not a digit
                row.status, row.error = "error", "no digit found"
            continue
        reading = label(model.labels, digits, probs, s.min_confidence)
        row.reading, row.confidence, row.digits = reading.text, reading.confidence, len(digits)
        row.seconds += per_digit * len(digits)
        if s.keep_crops:
            row.read, row.crops = reading, [d.pixels for d in digits]
    return rows


def _chunks(entries: Iterable[Entry], workers: int) -> tuple[int, Iterator[list[Entry]]]:
    """(files known so far, chunks): up to CHUNK files share one invoke, but with few files,
    smaller chunks keep every worker busy. Only the first 4 x workers x CHUNK entries are looked at
    ahead; the rest stream."""
    it = iter(entries)
    head = list(itertools.islice(it, 4 * workers * CHUNK))
    size = max(1, min(CHUNK, -(-len(head) // (4 * workers))))

    def chunks() -> Iterator[list[Entry]]:
        rest = itertools.chain(head, it)
        while chunk := list(itertools.islice(rest, size)):
            yield chunk
    return len(head), chunks()


def classify_iter(entries: Iterable[Entry], settings: Settings, workers: int = 1) -> Iterator[Row]:
    """Rows in the order of `entries`, each as soon as its chunk is done."""
    known, chunks = _chunks(entries, workers)
    if workers <= 1 or known <= 1:
        _init_worker(settings)
        for chunk in chunks:
            yield from classify_chunk(chunk)
        return
    yield from _pooled(chunks, settings, workers)


def classify(entries: Iterable[Entry], settings: Settings, workers: int = 1) -> list[Row]:
    return list(classify_iter(entries, settings, workers))


def _pooled(chunks: Iterable[list[Entry]], settings: Settings, workers: int) -> Iterator[Row]:
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pool_worker, initargs=(settings,))

    pool, pending, chunks = new_pool(), deque(), iter(chunks)

    def submit(chunk: list[Entry]) -> Future:
        try:
            return pool.submit(classify_chunk, chunk)
        except BrokenProcessPool as e:   # a worker died since the last result: its result() will say so
            failed = Future()
            failed.set_exception(e)
            return failed

    def fill() -> None:       # a few chunks ahead per worker: busy workers, bounded memory
        while len(pending) < 2 * workers and (chunk := next(chunks, None)) is not None:
            pending.append((chunk, submit(chunk)))

    try:
        fill()
        while pending:
            chunk, future = pending.popleft()
            try:
                rows = future.result()
            except BrokenProcessPool:
                log.warning("a worker died; restarting the pool and retrying its %d file(s) one by one", len(chunk))
                pool.shutdown(wait=True, cancel_futures=True)
                pool, rows = new_pool(), []
                for entry in chunk:
                    try:
                        rows += submit([entry]).result()
                    except BrokenProcessPool:
                        pool.shutdown(wait=True, cancel_futures=True)
                        pool = new_pool()
                        rows.append(Row(entry.path, status="error", error=WORKER_DIED))
                pending = deque((c, submit(c)) for c, _ in pending)
            yield from rows
            fill()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
