"""Scoring a page reading against its label: the figures readers of real photos are compared by.

A label is what a person reads on the page: rows separated by newlines, numbers by spaces
(`"10 10 1982\n123"`). Layout is not scored, only the digits in reading order:
- digits right: the longest common subsequence of true and read digits, so one missed or extra
  digit costs one, not the rest of the row;
- extra digits: read digits that match nothing, split into misreads (a digit read as another:
  where the label has a digit the reading missed) and the rest (marks, letters, lines read as
  digits);
- character error rate: edit distance between the two digit strings over the true count; a '?'
  (a digit read below the confidence floor) is a substitution.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

READ_CHARS = set("0123456789?")


def digit_string(text: str) -> str:
    """Digits and '?' only: spaces, newlines and anything else are layout."""
    return "".join(c for c in text if c in READ_CHARS)


def lcs_split(truth: str, read: str) -> tuple[int, int]:
    """(right, misread): the longest common subsequence, and of the read digits it leaves
    unmatched, those that stand where a true digit went unmatched too (between the same two matched
    digits), i.e. a digit read as another rather than a mark read as a digit. A '?' standing there
    takes a true digit first: it is a substitution, not a misread."""
    n, m = len(truth), len(read)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n):
        for j in range(m):
            table[i + 1][j + 1] = (table[i][j] + 1 if truth[i] == read[j]
                                   else max(table[i][j + 1], table[i + 1][j]))
    gaps = [[0, 0, 0]]       # between two matched digits: true digits missed, '?' read, digits read
    i, j = n, m
    while i or j:
        if i and j and truth[i - 1] == read[j - 1]:
            i, j = i - 1, j - 1
            gaps.append([0, 0, 0])
        elif j and (not i or table[i][j - 1] >= table[i - 1][j]):
            j -= 1
            gaps[-1][1 if read[j] == "?" else 2] += 1
        else:
            i -= 1
            gaps[-1][0] += 1
    return table[n][m], sum(min(stray, max(0, missed - unsure)) for missed, unsure, stray in gaps)


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@dataclass
class Score:
    true: int            # digits in the label
    right: int           # longest common subsequence with the reading
    extra: int           # read digits that match nothing
    errors: int          # edit distance (substitutions, misses, extras)
    misread: int = 0     # of the extras, digits read as another digit (the rest are marks read as digits)

    @property
    def cer(self) -> float:
        return self.errors / max(1, self.true)

    def __add__(self, other: Score) -> Score:
        return Score(self.true + other.true, self.right + other.right, self.extra + other.extra,
                     self.errors + other.errors, self.misread + other.misread)


def score(label: str, reading: str) -> Score:
    truth, read = digit_string(label).replace("?", ""), digit_string(reading)
    right, misread = lcs_split(truth, read)
    return Score(len(truth), right, len(read.replace("?", "")) - right, edit_distance(truth, read), misread)


def read_photo_labels(path: Path) -> tuple[dict[str, str], set[str]]:
    """labels.json (file name -> label) and the names listed in printed.json beside it, if any:
    pages with printed digits that are not labelled, where extra digits are not counted."""
    labels = json.loads(Path(path).read_text())
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ValueError(f"{path}: expected a JSON object of file name -> label text")
    printed_path = Path(path).with_name("printed.json")
    printed = set(json.loads(printed_path.read_text())) if printed_path.is_file() else set()
    return labels, printed


@dataclass
class PhotoResult:
    name: str
    label: str
    reading: str
    seconds: float
    printed: bool = False     # unlabelled printed digits on the page: extras are not counted

    @cached_property
    def score(self) -> Score:          # the tables and totals ask for it again and again
        return score(self.label, self.reading)


def totals(results: list[PhotoResult]) -> dict:
    """Set-level figures: digits right over all photos; extras and CER over the photos without
    printed digits (on the others a reader that also reads the print is not wrong)."""
    every = sum((r.score for r in results), Score(0, 0, 0, 0))
    clean = sum((r.score for r in results if not r.printed), Score(0, 0, 0, 0))
    seconds = [r.seconds for r in results]
    return {"images": len(results), "digits": every.true, "right": every.right,
            "right_rate": every.right / max(1, every.true),
            "clean_images": sum(not r.printed for r in results), "clean_digits": clean.true,
            "clean_extra": clean.extra, "clean_extra_rate": clean.extra / max(1, clean.true),
            "clean_misread": clean.misread,
            "clean_cer": clean.cer, "mean_seconds": sum(seconds) / max(1, len(seconds)),
            "max_seconds": max(seconds, default=0.0)}


def photo_table(results: list[PhotoResult]) -> str:
    """A fixed-width table, one photo a line, the set's totals last."""
    width = max([len(r.name) for r in results] + [24])
    lines = [f"{'image':<{width}}  digits  right  extra    CER  seconds  reading"]
    for r in results:
        s = r.score
        extra = f"({s.extra})" if r.printed else str(s.extra)
        shown = r.reading.replace("\n", "/")
        lines.append(f"{r.name:<{width}}  {s.true:>6}  {s.right:>5}  {extra:>5}  {s.cer:>5.1%}  {r.seconds:>7.2f}"
                     f"  {shown[:60]}{'…' if len(shown) > 60 else ''}")
    t = totals(results)
    lines.append(f"digits right: {t['right']}/{t['digits']} ({t['right_rate']:.1%}) over {t['images']} images; "
                 f"without printed digits ({t['clean_images']} images, {t['clean_digits']} digits): "
                 f"extra {t['clean_extra']} ({t['clean_extra_rate']:.1%}; {t['clean_misread']} of them misread digits, "
                 f"{t['clean_extra'] - t['clean_misread']} marks read as digits), CER {t['clean_cer']:.1%}; "
                 f"seconds per image: mean {t['mean_seconds']:.2f}, max {t['max_seconds']:.2f}")
    lines.append("(n) = extras on a page with printed digits, not counted")
    return "\n".join(lines)
