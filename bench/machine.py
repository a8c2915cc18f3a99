"""Which machine a figure was measured on: CPU, cores, library versions."""
from __future__ import annotations

import os
import platform
import re

import cv2
import numpy as np


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import ai_edge_litert
    versions = {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
                "ai_edge_litert": getattr(ai_edge_litert, "__version__", "?")}
    try:
        import keras
        import tensorflow as tf
        versions.update(tensorflow=tf.__version__, keras=keras.__version__)
    except ImportError:
        pass
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "machine": platform.machine(),
            "system": platform.system(), "versions": versions}


# `python -c PEAK_RSS MODULE ARGS...` runs `python -m MODULE ARGS...`, keeps its exit code and
# prints its peak resident memory on stderr. VmHWM, not ru_maxrss: Linux carries ru_maxrss across
# exec from the (large) parent that started it.
PEAK_RSS = """
import runpy, sys
module, sys.argv = sys.argv[1], sys.argv[1:]
code = 0
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print("peak_kb", hwm, file=sys.stderr)
sys.exit(code)
"""


def peak_kb(stderr: str) -> int:
    """The peak a PEAK_RSS run printed."""
    return int(re.search(r"peak_kb (\d+)", stderr).group(1))
