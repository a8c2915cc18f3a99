"""python -m edge.classify: classify every image in files, folders and globs with the published model.

Same preprocessing and interpreter as the camera path. Output: CSV (default) or JSON lines, one row
per file, sorted by path. Exit codes: 0 all classified, 3 some failed, 1 none could be classified
(or the model is unusable), 2 usage error.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_text
from .images import DEFAULT_MAX_PIXELS, BadImage, Entry, find_images, read_image
from .interpreter import BACKENDS, DEFAULT_MODEL, DigitModel, ModelError, read_manifest
from .preprocess import find_digits
from . import touching
from .run import describe
from .score import PhotoResult, photo_table, read_photo_labels

log = logging.getLogger("edge.classify")

EXIT_OK, EXIT_NONE, EXIT_USAGE, EXIT_SOME_FAILED = 0, 1, 2, 3
CHUNK = 64


@dataclass
class Row:
    path: str
    reading: str = ""
    confidence: float | None = None     # the least confident digit of the reading
    digits: int = 0
    status: str = "ok"
    error: str = ""
    label: str | None = None
    correct: bool | None = None
    seconds: float = 0.0                # decode + find digits + this file's share of the invoke
    crops: list = field(default_factory=list, repr=False)   # 28x28 inputs, kept only for --report
    records: list = field(default_factory=list, repr=False)  # per-digit boxes, kept only for --report


@dataclass
class Settings:
    model_path: str
    manifest: dict
    threads: int = 1
    backend: str | None = None
    single: bool = False
    min_confidence: float = 0.5
    max_pixels: int = DEFAULT_MAX_PIXELS
    keep_crops: bool = False


_worker_model: DigitModel | None = None
_worker_settings: Settings | None = None


def _init_worker(settings: Settings) -> None:
    global _worker_model, _worker_settings
    _worker_settings = settings
    _worker_model = DigitModel(settings.model_path, manifest=settings.manifest, threads=settings.threads,
                               backend=settings.backend)


def _init_pool_worker(settings: Settings) -> None:
    """A forked worker inherits its parent's signal handlers; a parent that installed a SIGTERM
    handler (the camera loop does) would leave workers that Pool.terminate() cannot stop. Workers
    die on SIGTERM and leave Ctrl-C to the parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(settings)


def classify_chunk(entries: list[Entry]) -> list[Row]:
    """Decode and preprocess a chunk of files, then classify all their digits in one invoke."""
    s, model = _worker_settings, _worker_model
    rows, found = [], []
    for entry in entries:
        row = Row(entry.path)
        rows.append(row)
        if entry.problem:
            row.status, row.error = "error", entry.problem
            found.append([])
            continue
        start = time.perf_counter()
        try:
            digits = find_digits(read_image(entry.path, s.max_pixels), single=s.single)
        except BadImage as e:
            row.status, row.error = "error", str(e)
            digits = []
        except Exception as e:  # any other failure is still one row, never the end of the run
            first_line = (str(e).strip().splitlines() or [""])[0][:120]
            row.status, row.error = "error", f"{type(e).__name__}: {first_line}"
            digits = []
        if row.status == "ok" and not digits:
            row.status, row.error = "error", "no digit found"
        row.seconds = time.perf_counter() - start
        found.append(digits)
    start = time.perf_counter()
    read = touching.predict(model, found, drop_non_digits=not s.single)   # one invoke for the chunk
    per_digit = (time.perf_counter() - start) / max(1, sum(len(ds) for ds in found))
    for row, (digits, p) in zip(rows, read):
        if not digits:
            if row.status == "ok":     # every piece was read as not a digit
                row.status, row.error = "error", "no digit found"
            continue
        row.reading, records = describe(model, digits, p, s.min_confidence)
        row.confidence = min(r["confidence"] for r in records)
        row.digits = len(digits)
        row.seconds += per_digit * len(digits)
        if s.keep_crops:
            row.crops, row.records = [d.pixels for d in digits], records
    return rows


def classify(entries: list[Entry], settings: Settings, workers: int = 1, progress: bool = False) -> list[Row]:
    """Rows for all entries in the order given, using `workers` processes, each with its own interpreter."""
    # Chunks of up to 64 files share one invoke; with few files, smaller chunks keep every worker busy.
    size = max(1, min(CHUNK, -(-len(entries) // (4 * workers))))
    chunks = [entries[i:i + size] for i in range(0, len(entries), size)]
    bar = Progress(len(entries)) if progress else None
    rows: list[Row] = []
    if workers <= 1 or len(chunks) <= 1:
        _init_worker(settings)
        for chunk in chunks:
            rows += classify_chunk(chunk)
            bar and bar.update(len(chunk))
    else:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=_init_pool_worker, initargs=(settings,)) as pool:
            for chunk_rows in pool.imap(classify_chunk, chunks):
                rows += chunk_rows
                bar and bar.update(len(chunk_rows))
    bar and bar.close()
    return rows


class Progress:
    """A minimal progress bar on stderr (only used when stderr is a terminal)."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        frac = self.done / max(1, self.total)
        rate = self.done / max(1e-9, time.perf_counter() - self.start)
        sys.stderr.write(f"\r[{'#' * int(30 * frac):<30}] {self.done}/{self.total} {rate:.0f} img/s")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


# --- labels and evaluation -------------------------------------------------------------------

def labels_from_dirs(rows: list[Row]) -> None:
    for row in rows:
        parent = Path(row.path).parent.name
        if len(parent) == 1 and parent.isdigit():
            row.label = parent


def labels_from_csv(rows: list[Row], path: Path) -> None:
    """CSV with columns path,label; paths match as given or by file name."""
    table = {}
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            table[os.path.normpath(rec["path"])] = rec["label"].strip()
    for row in rows:
        row.label = table.get(os.path.normpath(row.path), table.get(Path(row.path).name))


def photo_results(rows: list[Row], path: Path) -> list[PhotoResult]:
    """Rows of the images named in a labels.json (by file name), scored as pages of digits."""
    labels, printed = read_photo_labels(path)
    return [PhotoResult(Path(r.path).name, labels[Path(r.path).name], r.reading, r.seconds,
                        Path(r.path).name in printed) for r in rows if Path(r.path).name in labels]


def evaluate(rows: list[Row]) -> dict | None:
    labelled = [r for r in rows if r.label is not None]
    if not labelled:
        return None
    for r in labelled:
        r.correct = r.status == "ok" and r.reading == r.label
    classes = sorted({r.label for r in labelled})
    per_class = {c: float(np.mean([r.correct for r in labelled if r.label == c])) for c in classes}
    matrix = np.zeros((10, 11), int)   # last column: errors and readings that are not one digit
    for r in labelled:
        if r.label.isdigit() and len(r.label) == 1:
            col = int(r.reading) if r.status == "ok" and len(r.reading) == 1 and r.reading.isdigit() else 10
            matrix[int(r.label), col] += 1
    return {"labelled": len(labelled), "correct": int(sum(r.correct for r in labelled)),
            "accuracy": float(np.mean([r.correct for r in labelled])), "per_class": per_class,
            "confusion": matrix.tolist()}


def evaluation_text(ev: dict) -> str:
    lines = [f"accuracy: {ev['accuracy']:.2%} ({ev['correct']}/{ev['labelled']} labelled images)",
             "per class: " + "  ".join(f"{c}: {a:.1%}" for c, a in ev["per_class"].items()),
             "confusion (rows true, columns predicted, x = error or not one digit):",
             "      " + " ".join(f"{c:>5}" for c in [*map(str, range(10)), "x"])]
    for i, counts in enumerate(ev["confusion"]):
        lines.append(f"  {i}:  " + " ".join(f"{n:>5}" for n in counts))
    return "\n".join(lines)


# --- output ----------------------------------------------------------------------------------

def format_rows(rows: list[Row], fmt: str, labelled: bool) -> str:
    fields = ["path", "reading", "confidence", "digits", "status", "error"] + (["label", "correct"] if labelled else [])
    records = [{k: v for k, v in asdict(r).items() if k in fields} for r in rows]
    if fmt == "jsonl":
        return "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: "" if v is None else v for k, v in rec.items()})
    return buf.getvalue()


def summary_text(rows: list[Row], seconds: float) -> str:
    failed = Counter(r.error for r in rows if r.status == "error")
    ok = len(rows) - sum(failed.values())
    reasons = ", ".join(f"{n} {why}" for why, n in failed.most_common())
    return (f"summary: {len(rows)} files seen, {ok} classified, {sum(failed.values())} failed"
            f"{' (' + reasons + ')' if reasons else ''}; {len(rows) / max(seconds, 1e-9):.0f} images/s")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edge.classify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="image files, folders or globs")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--follow-links", action="store_true", help="enter folder symlinks (never the same folder twice)")
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="output format (default: csv)")
    p.add_argument("--out", type=Path, help="write results here (atomically) instead of stdout")
    p.add_argument("--single", action="store_true", help="one digit per image (the whole image)")
    p.add_argument("--labels-from-dirs", action="store_true", help="a file's parent folder name is its true digit")
    p.add_argument("--labels", type=Path, metavar="CSV|JSON",
                   help="CSV with columns path,label (one digit per image), or labels.json of pages: file name -> "
                        "text, rows by newlines, numbers by spaces (printed.json beside it lists pages whose "
                        "printed digits are not labelled)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write confusion_matrix.png and contact_sheet.png here; with labels.json, one picture "
                        "per image of the boxes found")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: CPU count)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the .tflite model (manifest .json beside it)")
    p.add_argument("--allow-mismatch", action="store_true", help="run a model whose sha256 does not match its manifest")
    p.add_argument("--backend", choices=BACKENDS, help="force an interpreter backend")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads per worker (default: 1)")
    p.add_argument("--min-confidence", type=float, default=0.5, help="below this a digit reads as '?'")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse images larger than this, from the header (default: {DEFAULT_MAX_PIXELS})")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.workers < 1 or args.threads < 1 or args.max_pixels < 1:
        p.error("--workers, --threads and --max-pixels must be >= 1")
    if args.labels and not args.labels.is_file():
        p.error(f"--labels {args.labels}: no such file")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        manifest = read_manifest(args.model, allow_mismatch=args.allow_mismatch)
        DigitModel(args.model, manifest=manifest, backend=args.backend)   # fail fast, before any worker
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_NONE
    settings = Settings(str(args.model), manifest, args.threads, args.backend, args.single, args.min_confidence,
                        args.max_pixels, keep_crops=args.report is not None)
    start = time.perf_counter()
    entries = find_images(args.paths, recursive=args.recursive, follow_links=args.follow_links)
    rows = classify(entries, settings, args.workers, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - start
    if args.labels_from_dirs:
        labels_from_dirs(rows)
    photos = None
    if args.labels and args.labels.suffix.lower() == ".json":
        try:
            photos = photo_results(rows, args.labels)
        except (ValueError, OSError) as e:
            print(f"error: --labels {args.labels}: {e}", file=sys.stderr)
            return EXIT_USAGE
    elif args.labels:
        labels_from_csv(rows, args.labels)
    ev = evaluate(rows)
    text = format_rows(rows, args.format, labelled=ev is not None)
    if args.out:
        write_text(args.out, text)
    else:
        sys.stdout.write(text)
    print(summary_text(rows, seconds), file=sys.stderr)
    if ev:
        print(evaluation_text(ev), file=sys.stderr)
    if photos is not None:
        print(photo_table(photos), file=sys.stderr)
    if args.report:
        from .report import write_boxes, write_report
        write_report(rows, ev, args.report)
        if photos is not None:
            write_boxes(rows, args.report, settings.min_confidence, settings.max_pixels)
    failed = sum(r.status == "error" for r in rows)
    if not rows or failed == len(rows):
        return EXIT_NONE
    return EXIT_SOME_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
