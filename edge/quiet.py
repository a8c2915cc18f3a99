"""Importing TensorFlow without its C++ start-up lines on stderr.

TF_CPP_MIN_LOG_LEVEL silences TensorFlow's own logging, but not what absl prints before logging is
initialised (the oneDNN notice and its "All log messages before absl::InitializeLog()" banner):
those go straight to file descriptor 2, so it is pointed at /dev/null for the import only. A
failing import still raises, and its Python error is printed as usual.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys


@contextlib.contextmanager
def stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_silenced():
        return importlib.import_module("tensorflow")
