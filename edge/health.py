"""Raspberry Pi health: CPU temperature and throttling, logged at start and in the exit summary.

A Pi that is too hot or under-powered slows down silently; a reading of the camera loop's fps
means little without knowing that. Elsewhere (no vcgencmd, no thermal zone) these return None.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware documentation).
THROTTLE_BITS = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage has occurred",
    17: "ARM frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


def parse_throttled(text: str) -> dict:
    """'throttled=0x50005' -> {"raw": 0x50005, "flags": [...]}; ValueError on anything else."""
    text = text.strip()
    if not text.startswith("throttled="):
        raise ValueError(f"not a get_throttled answer: {text!r}")
    raw = int(text.split("=", 1)[1], 16)
    return {"raw": raw, "flags": [name for bit, name in THROTTLE_BITS.items() if raw >> bit & 1]}


def throttled() -> dict | None:
    if not shutil.which("vcgencmd"):
        return None
    try:
        out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=2).stdout
        return parse_throttled(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def cpu_temperature(zone: Path = Path("/sys/class/thermal/thermal_zone0/temp")) -> float | None:
    """Degrees Celsius from the kernel's thermal zone (millidegrees in the file)."""
    try:
        return int(zone.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


def status() -> str:
    """One line for the log and the exit summary."""
    temp, thr = cpu_temperature(), throttled()
    parts = [f"cpu {temp:.1f} °C" if temp is not None else "cpu temperature unknown"]
    if thr is not None:
        parts.append(f"throttled=0x{thr['raw']:x}" + (f" ({', '.join(thr['flags'])})" if thr["flags"] else " (ok)"))
    return "; ".join(parts)
