"""Write files so an interrupted run leaves the previous version intact: a temp file beside the
target, fsync, rename. Standard library only, so train/ and convert/ use it too.

Rewriting keeps what the user set up: an existing file's permissions (a 0600 results file stays
0600), and a symlink stays a symlink (its target is rewritten).
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator


def mode_for(target: Path) -> int:
    """An existing file's permissions, or what a new file gets under the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask       # mkstemp makes 0600; new published files are read by others


def resolved(target: str | Path) -> Path:
    """Where writing `target` lands: a symlink's target, so the link stays a link."""
    target = Path(target)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `target` (same suffix); on success fsync it and rename over target."""
    target = resolved(target)
    if target.is_dir():
        raise IsADirectoryError(f"{target}: is a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, mode_for(target))
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))
