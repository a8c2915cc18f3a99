"""Finding image files and decoding them safely: every bad file becomes a short reason, never a crash.

A real folder holds empty files, truncated uploads, text files with image names, symlink
loops, 16-bit and palette PNGs, CMYK and EXIF-rotated JPEGs, and 12 MP phone photos. Sizes are
read from the header before decoding, so a "decompression bomb" is refused without allocating it.
"""
from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass
from glob import glob, has_magic
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".gif"}
DEFAULT_MAX_PIXELS = 100_000_000     # 100 MP; refused from the header above this
# Large JPEGs are decoded at 1/2, 1/4 or 1/8 while the long side stays >= this: small handwriting
# on a 12 MP page needs more than the ~1,000 px a 1/4 decode leaves (the reader then works at the
# scale that makes the text ~48 px, up to 2,400 px).
REDUCE_TARGET = 1400


class BadImage(Exception):
    """The file cannot be classified; str(e) is the short reason written into the output."""


@dataclass(frozen=True)
class Entry:
    path: str               # as the user will recognise it (relative to what they passed)
    problem: str | None = None   # set when the entry is already known to be bad (loop, broken link, ...)


def _stat_problem(path: str) -> str | None:
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop"
        if os.path.islink(path):
            return "broken symlink"
        if e.errno == errno.EACCES:
            return "permission denied"
        return f"cannot stat ({e.strerror})"
    return None


def find_images(paths: list[str], recursive: bool = False, follow_links: bool = False) -> list[Entry]:
    """Expand files, folders and globs into a sorted, de-duplicated list of entries.

    Folder links are only entered with follow_links, and no folder is entered twice (a link back
    to an ancestor would otherwise loop forever).
    """
    entries: dict[str, Entry] = {}
    seen_dirs: set[tuple[int, int]] = set()

    def add_dir(d: str, top: bool) -> None:
        if os.path.islink(d) and not follow_links and not top:
            return
        try:
            st = os.stat(d)
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            return
        seen_dirs.add(key)
        try:
            children = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            entries[d] = Entry(d, f"cannot list folder ({e.strerror})")
            return
        for child in children:
            p = child.path
            is_image_name = Path(child.name).suffix.lower() in IMAGE_SUFFIXES
            problem = _stat_problem(p)
            if problem:
                if is_image_name or child.is_symlink():
                    entries[p] = Entry(p, problem)
                continue
            if child.is_dir():
                if recursive:
                    add_dir(p, top=False)
                elif is_image_name:
                    entries[p] = Entry(p, "is a directory")
            elif is_image_name:
                entries[p] = Entry(p)

    for arg in paths:
        matches = sorted(glob(arg)) if has_magic(arg) else [arg]
        if not matches:
            entries[arg] = Entry(arg, "no such file (glob matched nothing)")
        for p in matches:
            if os.path.isdir(p):
                add_dir(p, top=True)
            elif os.path.lexists(p):
                entries[p] = Entry(p, _stat_problem(p))
            else:
                entries[p] = Entry(p, "no such file")
    return [entries[k] for k in sorted(entries)]


# --- header sniffing -------------------------------------------------------------------------

def sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:1] == b"P" and data[1:2] in b"123456" and len(data) > 2 and data[2:3].isspace():
        return "pnm"
    return None


def header_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) from the header without decoding, for the formats that carry it simply."""
    try:
        if kind == "png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if kind == "gif":
            return struct.unpack("<HH", data[6:10])
        if kind == "bmp":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if kind == "jpeg":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    return None
                marker = data[i + 1]
                if marker == 0xFF:
                    i += 1
                    continue
                length = struct.unpack(">H", data[i + 2:i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", data[i + 5:i + 9])
                    return w, h
                i += 2 + length
    except struct.error:
        return None
    return None


def _complete(data: bytes, kind: str) -> bool:
    """Decoders paint a truncated JPEG grey and carry on; we refuse it instead."""
    if kind == "jpeg":
        return data.find(b"\xff\xd9", max(0, data.rfind(b"\xff\xda"))) != -1
    if kind == "png":
        return b"IEND" in data[-64:]
    return True


def _composite_on_white(image: np.ndarray) -> np.ndarray:
    """RGBA -> BGR as if printed on white paper (transparent = paper)."""
    bgr, alpha = image[:, :, :3].astype(np.float32), image[:, :, 3:4].astype(np.float32)
    full = 65535.0 if image.dtype == np.uint16 else 255.0
    out = bgr * (alpha / full) + full * (1 - alpha / full)
    return out.astype(image.dtype)


def read_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS, reduce: bool = True) -> np.ndarray:
    """Decode a file to a BGR or gray array (uint8 or uint16), or raise BadImage with a short reason."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise BadImage("not a regular file")
            data = f.read()
    except IsADirectoryError:
        raise BadImage("is a directory") from None
    except PermissionError:
        raise BadImage("permission denied") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BadImage("symlink loop") from None
        raise BadImage(f"cannot read ({e.strerror})") from None
    if not data:
        raise BadImage("empty file")
    kind = sniff(data)
    if kind is None:
        raise BadImage("not an image (unknown format)")
    size = header_size(data, kind)
    if size is not None:
        w, h = size
        if w == 0 or h == 0:
            raise BadImage(f"invalid {kind} header (size {w}x{h})")
        if w * h > max_pixels:
            raise BadImage(f"too large: {w}x{h} exceeds {max_pixels} pixels")
    if not _complete(data, kind):
        raise BadImage(f"truncated {kind}")
    buf = np.frombuffer(data, np.uint8)
    if kind == "jpeg":
        # IMREAD_COLOR applies the EXIF orientation; the reduced modes decode a fraction of the pixels.
        flag = cv2.IMREAD_COLOR
        if reduce and size:
            for factor, reduced in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                                    (2, cv2.IMREAD_REDUCED_COLOR_2)):
                if max(size) // factor >= REDUCE_TARGET:
                    flag = reduced
                    break
        image = cv2.imdecode(buf, flag)
    else:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)  # keeps alpha and 16-bit
    if image is None:
        raise BadImage(f"corrupt {kind} (cannot decode)")
    if image.size > max_pixels * 4:  # formats whose size we could not read from the header
        raise BadImage(f"too large: {image.shape[1]}x{image.shape[0]} exceeds {max_pixels} pixels")
    if image.ndim == 3 and image.shape[2] == 4:
        image = _composite_on_white(image)
    return image
