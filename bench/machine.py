"""Which machine a figure was measured on: CPU, cores, library versions."""
from __future__ import annotations

import os
import platform

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
