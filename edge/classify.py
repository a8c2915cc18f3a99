"""python -m edge.classify: read the digits in every image of files, folders and globs.

Same preprocessing and interpreter as the camera path. Output: CSV (default) or JSON lines, one row
per file, sorted by path, written as the files finish (with --out, to OUT.partial, renamed to OUT
at the end; --resume carries over the rows of an interrupted run). Exit codes: 0 all classified,
3 some failed, 1 none could be classified (or the model is unusable), 2 usage error.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, add_common_flags, count, setup_logging
from .evaluation import Tally, labels_from_csv, labels_from_dirs, photo_results
from .folder import Settings, classify_iter
from .images import DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_PIXELS, iter_images
from .interpreter import DigitModel, ModelError, read_manifest
from .output import RowWriter, done_paths
from .score import photo_table, read_photo_labels

log = logging.getLogger("edge.classify")


class Progress:
    """A minimal progress bar on stderr (only used when stderr is a terminal)."""

    def __init__(self):
        self.done, self.start, self.shown = 0, time.perf_counter(), 0.0

    def update(self, n: int = 1) -> None:
        """Files stream in as the folders are walked, so there is a count, not a total."""
        self.done += n
        now = time.perf_counter()
        if now - self.shown >= 0.2:
            self.shown = now
            rate = self.done / max(1e-9, now - self.start)
            sys.stderr.write(f"\r{self.done:,} files, {rate:,.0f} images/s ")
            sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt


def summary_text(failed: Counter, seen: int, seconds: float) -> str:
    n_failed = sum(failed.values())
    reasons = ", ".join(f"{n} {why}" for why, n in failed.most_common())
    return (f"summary: {seen} files seen, {seen - n_failed} classified, {n_failed} failed"
            f"{' (' + reasons + ')' if reasons else ''}; {seen / max(seconds, 1e-9):.0f} images/s")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edge.classify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="image files, folders or globs")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--follow-links", action="store_true", help="enter folder symlinks (never the same folder twice)")
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="output format (default: csv)")
    p.add_argument("--out", type=Path, help="write results here (atomically) instead of stdout")
    p.add_argument("--resume", action="store_true",
                   help="with --out: keep the rows of an earlier run (OUT.partial, else OUT) and skip their files")
    p.add_argument("--single", action="store_true", help="one digit per image (the whole image)")
    p.add_argument("--labels-from-dirs", action="store_true", help="a file's parent folder name is its true digit")
    p.add_argument("--labels", type=Path, metavar="CSV|JSON",
                   help="CSV with columns path,label (one digit per image), or labels.json of pages: file name -> "
                        "text, rows by newlines, numbers by spaces (printed.json beside it lists pages whose "
                        "printed digits are not labelled)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write confusion_matrix.png and contact_sheet.png here; with labels.json, one picture "
                        "per image of the boxes found")
    p.add_argument("--workers", type=count(1), default=os.cpu_count() or 1, help="processes (default: CPU count)")
    add_common_flags(p, threads_help="interpreter threads per worker (default: 1)")
    p.add_argument("--max-pixels", type=count(1), default=DEFAULT_MAX_PIXELS,
                   help=f"refuse images larger than this, from the header (default: {DEFAULT_MAX_PIXELS})")
    p.add_argument("--max-decoded-mb", type=count(1), default=DEFAULT_MAX_DECODED_BYTES // 2**20,
                   help="refuse images that would take more memory than this decoded, from the header "
                        f"(default: {DEFAULT_MAX_DECODED_BYTES // 2**20}, which fits 4 workers on a 1 GB Pi)")
    return p


def check_paths(p: argparse.ArgumentParser, args) -> None:
    """Output paths are checked before any work, so a typo costs nothing."""
    if args.labels and not args.labels.is_file():
        p.error(f"--labels {args.labels}: no such file")
    if args.out and args.out.is_dir():
        p.error(f"--out {args.out}: is a folder")
    if args.out and not args.out.parent.resolve().is_dir():
        p.error(f"--out {args.out}: no such folder {args.out.parent}")
    if args.resume and not args.out:
        p.error("--resume needs --out")
    if args.report and args.report.exists() and not args.report.is_dir():
        p.error(f"--report {args.report}: exists and is not a folder")
    if args.model.suffix != ".tflite":
        p.error(f"--model {args.model}: expected a .tflite file")


@dataclass
class Outcome:
    """What a run saw, beyond the rows it wrote."""
    seen: int = 0
    failed: Counter = field(default_factory=Counter)
    tally: Tally = field(default_factory=Tally)
    kept: list = field(default_factory=list)       # (row, correct, label), only for --report and pages


def run(args, settings: Settings, labeler, keep_rows: bool, writer: RowWriter) -> Outcome:
    """Classify every entry and write each row as it comes; KeyboardInterrupt and BrokenPipeError
    propagate (the rows written so far are in the writer's file)."""
    entries = iter_images(args.paths, recursive=args.recursive, follow_links=args.follow_links)
    if args.resume:
        entries = (e for e in entries if e.path not in writer.carried_paths)
    out, bar = Outcome(), Progress() if sys.stderr.isatty() else None
    for row in classify_iter(entries, settings, args.workers):
        out.seen += 1
        label = labeler(row.path) if labeler else None
        correct = out.tally.add(label, row.reading, row.status == "ok") if label is not None else None
        writer.write(row, label, correct)
        if row.status == "error":
            out.failed[row.error] += 1
        if keep_rows:
            out.kept.append((row, correct, label))
        bar and bar.update()
    bar and bar.close()
    return out


def report(args, settings: Settings, out: Outcome, pages: tuple[dict, set] | None) -> int:
    """The evaluation on stderr and the --report pictures; the exit code. `pages`: the labels and
    printed-page names of a labels.json."""
    if out.tally.labelled:
        print(out.tally.text(), file=sys.stderr)
    rows = [r for r, _, _ in out.kept]
    if pages:
        print(photo_table(photo_results(rows, *pages)), file=sys.stderr)
    if args.report:
        from .report import write_boxes, write_report
        write_report(out.kept, out.tally if out.tally.labelled else None, args.report)
        if pages:
            write_boxes(rows, args.report, settings.min_confidence, settings.max_pixels, settings.max_decoded_bytes)
    return EXIT_ERROR if out.seen and sum(out.failed.values()) == out.seen else (
        EXIT_SOME_FAILED if out.failed else EXIT_OK)


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    check_paths(p, args)
    setup_logging(args.verbose)
    try:
        manifest = read_manifest(args.model, allow_mismatch=args.allow_mismatch)
        DigitModel(args.model, manifest=manifest, backend=args.backend)   # fail fast, before any worker
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    labeler, pages = None, None
    try:
        if args.labels and args.labels.suffix.lower() == ".json":
            pages = read_photo_labels(args.labels)
        elif args.labels_from_dirs:
            labeler = labels_from_dirs
        elif args.labels:
            labeler = labels_from_csv(args.labels)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        print(f"error: --labels {args.labels}: {e}", file=sys.stderr)
        return EXIT_USAGE
    settings = Settings(str(args.model), manifest, args.threads, args.backend, args.single, args.min_confidence,
                        args.max_pixels, keep_crops=args.report is not None,
                        max_decoded_bytes=args.max_decoded_mb * 2**20)
    start = time.perf_counter()
    earlier = done_paths(args.out) if args.resume else {}      # before the writer truncates OUT.partial
    writer = RowWriter(args.out, args.format, labelled=labeler is not None)
    if args.resume:
        writer.carry_over(earlier)
        log.info("resuming: %d rows kept", writer.carried)
    signal.signal(signal.SIGTERM, _interrupt)        # like Ctrl-C: keep what is done, for --resume
    try:
        out = run(args, settings, labeler, bool(args.report or pages), writer)
    except KeyboardInterrupt:
        writer.close(complete=False)
        print("error: interrupted" + (f"; --resume to go on from {writer.partial}" if args.out else ""),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:        # `| head`: the reader has what it wanted
        writer.close(complete=False)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    writer.close(complete=True)
    print(summary_text(out.failed, out.seen, time.perf_counter() - start), file=sys.stderr)
    code = report(args, settings, out, pages)
    if not out.seen and not writer.carried:
        return EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
