"""Rows of a folder run written as they finish: CSV or JSON lines, to stdout or to a file.

A file is written as OUT.partial (flushed every row) and renamed over OUT when the run completes,
so a killed run loses nothing it finished, leaves the previous OUT intact, and `--resume` can go
on from the partial file. File names are written byte for byte: a name that is not UTF-8 comes
out as the same bytes it has on disk (Python's surrogateescape), never a crash.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

from .atomic import mode_for, resolved

FIELDS = ["path", "reading", "confidence", "digits", "status", "error"]
LABEL_FIELDS = ["label", "correct"]


def csv_field(value) -> str:
    """Quoted when it holds a comma, a quote or a line break (Python's csv module leaves a lone
    \\r unquoted, which splits the row for every reader)."""
    text = "" if value is None else str(value)
    if any(c in text for c in ',"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def partial_path(out: Path) -> Path:
    """Beside the file the output lands in (a symlink's target), so the final rename is atomic."""
    target = resolved(out)
    return target.with_name(target.name + ".partial")


def done_paths(out: Path) -> dict[str, str]:
    """Rows of an earlier run (OUT.partial if it was interrupted, else OUT) by path, as written."""
    for source in (partial_path(out), out):
        if source.is_file():
            break
    else:
        return {}
    rows: dict[str, str] = {}
    with open(source, encoding="utf-8", errors="surrogateescape", newline="") as f:
        if source.suffix == ".jsonl" or out.suffix == ".jsonl" or f.read(1) == "{":
            f.seek(0)
            for line in f:
                if line.strip():
                    try:
                        rows[json.loads(line)["path"]] = line
                    except (ValueError, KeyError):
                        continue        # a line cut short by the kill
        else:
            f.seek(0)
            f.readline()                # the header: this run writes its own
            for rec in csv.reader(f):
                if len(rec) >= len(FIELDS):
                    rows[rec[0]] = ",".join(csv_field(v) for v in rec) + "\n"
    return rows


class RowWriter:
    def __init__(self, out: Path | None, fmt: str, labelled: bool):
        self.out, self.fmt = out, fmt
        self.fields = FIELDS + (LABEL_FIELDS if labelled else [])
        self.carried_paths: set[str] = set()
        self.partial = partial_path(out) if out else None
        if out:
            self.target = resolved(out)
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.partial, "w", encoding="utf-8", errors="surrogateescape", newline="")
            os.chmod(self.partial, mode_for(self.target))
        else:
            sys.stdout.reconfigure(errors="surrogateescape")
            self.file = sys.stdout
        if fmt == "csv":
            self.file.write(",".join(self.fields) + "\n")

    @property
    def carried(self) -> int:
        return len(self.carried_paths)

    def carry_over(self, rows: dict[str, str]) -> None:
        """Copy an earlier run's rows (from `done_paths`) into this output; their paths are done."""
        for line in rows.values():
            self.file.write(line)
        self.file.flush()
        self.carried_paths = set(rows)

    def write(self, row, label: str | None = None, correct: bool | None = None) -> None:
        record = {"path": row.path, "reading": row.reading, "confidence": row.confidence, "digits": row.digits,
                  "status": row.status, "error": row.error}
        if len(self.fields) > len(FIELDS):
            record.update(label=label, correct=correct)
        if self.fmt == "jsonl":
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            self.file.write(",".join(csv_field(record[k]) for k in self.fields) + "\n")
        self.file.flush()

    def close(self, complete: bool) -> None:
        """A complete run replaces OUT; an interrupted one leaves OUT.partial for --resume."""
        if not self.out:
            try:
                self.file.flush()
            except BrokenPipeError:
                pass
            return
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        if complete:
            os.replace(self.partial, self.target)
