"""Scoring a folder run against labels: one digit per image (folders named by digit, or a CSV of
path,label), kept as running counts so a labelled run of any size costs no memory per file.
Pages of several digits (labels.json) are scored by edge/score.py."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .score import PhotoResult

Labeler = Callable[[str], "str | None"]


def labels_from_dirs(path: str) -> str | None:
    """A file's parent folder named by one digit is its label (the layout MNIST-as-PNG sets use)."""
    parent = Path(path).parent.name
    return parent if len(parent) == 1 and parent.isdigit() else None


def labels_from_csv(path: Path) -> Labeler:
    """CSV with columns path,label; paths match as given or by file name. ValueError without them."""
    table = {}
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise ValueError(f"needs a header with columns path,label (found {', '.join(reader.fieldnames or []) or 'none'})")
        for rec in reader:
            table[os.path.normpath(rec["path"])] = (rec["label"] or "").strip()
    return lambda p: table.get(os.path.normpath(p), table.get(Path(p).name))


def photo_results(rows, labels: dict[str, str], printed: set[str]) -> list[PhotoResult]:
    """Rows of the images named in a labels.json (by file name), scored as pages of digits
    (`labels` and `printed` as edge.score.read_photo_labels gives them)."""
    return [PhotoResult(Path(r.path).name, labels[Path(r.path).name], r.reading, r.seconds,
                        Path(r.path).name in printed) for r in rows if Path(r.path).name in labels]


class Tally:
    """Accuracy, per-class accuracy and a confusion matrix (rows true 0-9, columns predicted 0-9
    and a last one for errors and readings that are not one digit)."""

    def __init__(self):
        self.labelled = self.correct = 0
        self.per_class: dict[str, list[int]] = {}       # label -> [right, seen]
        self.confusion = np.zeros((10, 11), int)

    def add(self, label: str, reading: str, ok: bool) -> bool:
        right = ok and reading == label
        self.labelled += 1
        self.correct += right
        counts = self.per_class.setdefault(label, [0, 0])
        counts[0] += right
        counts[1] += 1
        if len(label) == 1 and label.isdigit():
            col = int(reading) if ok and len(reading) == 1 and reading.isdigit() else 10
            self.confusion[int(label), col] += 1
        return right

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled if self.labelled else 0.0

    def text(self) -> str:
        lines = [f"accuracy: {self.accuracy:.2%} ({self.correct}/{self.labelled} labelled images)",
                 "per class: " + "  ".join(f"{c}: {r / n:.1%}" for c, (r, n) in sorted(self.per_class.items())),
                 "confusion (rows true, columns predicted, x = error or not one digit):",
                 "      " + " ".join(f"{c:>5}" for c in [*map(str, range(10)), "x"])]
        for i, counts in enumerate(self.confusion):
            lines.append(f"  {i}:  " + " ".join(f"{n:>5}" for n in counts))
        return "\n".join(lines)
