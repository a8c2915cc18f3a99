"""What the two programs (python -m edge, python -m edge.classify) share on the command line:
exit codes, the model flags and the checks on numbers, so both refuse the same bad input."""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from .interpreter import BACKENDS, DEFAULT_MODEL
from .reading import DEFAULT_MIN_CONFIDENCE

# One meaning in both programs (the README's table).
EXIT_OK = 0             # done: every frame read / every file classified
EXIT_ERROR = 1          # nothing could be done: unusable model, source, or no file classified
EXIT_USAGE = 2          # bad arguments (argparse's own code)
EXIT_SOME_FAILED = 3    # edge.classify: some files could not be classified, the rest were
EXIT_CAMERA_LOST = 4    # edge: the camera kept failing after every reopen (systemd restarts it)
EXIT_INTERRUPTED = 130  # edge.classify: Ctrl-C or SIGTERM; the rows done are kept for --resume


def count(minimum: int):
    """argparse type: an integer >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def number(minimum: float = 0.0, maximum: float | None = None):
    """argparse type: a finite float in [minimum, maximum]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"a finite number >= {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value
    return parse


def add_common_flags(p: argparse.ArgumentParser, threads_help: str = "interpreter threads (default: 1)") -> None:
    """--model, --allow-mismatch, --backend, --threads, --min-confidence, -v: the same flags, with the
    same checks, in both programs."""
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the .tflite model (manifest .json beside it)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="run a model whose sha256 does not match its manifest (warns)")
    p.add_argument("--backend", choices=BACKENDS, help="force an interpreter backend (default: first available)")
    p.add_argument("--threads", type=count(1), default=1, help=threads_help)
    p.add_argument("--min-confidence", type=number(0.0, 1.0), default=DEFAULT_MIN_CONFIDENCE,
                   help=f"below this a digit reads as '?' (default: {DEFAULT_MIN_CONFIDENCE})")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def setup_logging(verbose: bool = False) -> None:
    """Logs to stderr (stdout carries only results)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
