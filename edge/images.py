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
from typing import Iterator

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".gif"}
DEFAULT_MAX_PIXELS = 100_000_000     # 100 MP; refused from the header above this
# What one decoded image may take, from its header (pixels x channels x bytes per sample, at the
# reduced size a large JPEG is decoded at). 128 MB is a 40 MP colour photo; four workers of that
# still fit a 1 GB Raspberry Pi. Files are refused above MAX_FILE_BYTES before they are read.
DEFAULT_MAX_DECODED_BYTES = 128 * 2**20
MAX_FILE_BYTES = 256 * 2**20
SNIFF_BYTES = 64 * 1024                # the type and the header are read from this much first
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


def iter_images(paths: list[str], recursive: bool = False, follow_links: bool = False) -> Iterator[Entry]:
    """Expand files, folders and globs into entries, lazily: each argument in turn, a folder's
    contents in path order (as `sorted()` would put the full paths), one folder listing in memory
    at a time, so a million files cost the caller nothing per file. Duplicates are dropped.

    Folder links are only entered with follow_links, and no folder is entered twice (a link back
    to an ancestor would otherwise loop forever).
    """
    seen_dirs: set[tuple[int, int]] = set()
    expanded = [(arg, sorted(glob(arg)) if has_magic(arg) else [arg]) for arg in paths]
    given = {os.path.normpath(p) for _, matches in expanded for p in matches if not os.path.isdir(p)}
    done: set[str] = set()

    def walk(d: str, top: bool) -> Iterator[Entry]:
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
            with os.scandir(d) as it:   # names only: a DirEntry per file would be three times the memory
                children = sorted(e.name + ("/" if _is_dir(e) else "") for e in it)
        except OSError as e:
            yield Entry(d, f"cannot list folder ({e.strerror})")
            return
        for name in children:
            name = name.rstrip("/")
            p = os.path.join(d, name)
            if os.path.normpath(p) in given:
                continue                      # also given by itself: listed once, where it was given
            is_image_name = Path(name).suffix.lower() in IMAGE_SUFFIXES
            problem = _stat_problem(p)
            if problem:
                if is_image_name or os.path.islink(p):
                    yield Entry(p, problem)
                continue
            if os.path.isdir(p):
                if recursive:
                    yield from walk(p, top=False)
                elif is_image_name:
                    yield Entry(p, "is a directory")
            elif is_image_name:
                yield Entry(p)

    for arg, matches in expanded:
        if not matches:
            yield Entry(arg, "no such file (glob matched nothing)")
        for p in matches:
            if os.path.isdir(p):
                yield from walk(p, top=True)
                continue
            if os.path.normpath(p) in done:
                continue
            done.add(os.path.normpath(p))
            if os.path.lexists(p):
                yield Entry(p, _stat_problem(p))
            else:
                yield Entry(p, "no such file")


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def find_images(paths: list[str], recursive: bool = False, follow_links: bool = False) -> list[Entry]:
    """`iter_images` as a list."""
    return list(iter_images(paths, recursive, follow_links))


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


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    channels: int = 3          # what the decoder will hand back
    sample_bytes: int = 1      # 2 for 16-bit images

    def decoded_bytes(self, reduce: int = 1) -> int:
        return -(-self.width // reduce) * -(-self.height // reduce) * self.channels * self.sample_bytes


def _tiff_header(data: bytes) -> Header | None:
    """The first image's size from a TIFF's first IFD (tags 256/257 size, 258 bits, 277 samples)."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset:offset + 2])
    tags = {}
    for k in range(count):
        entry = data[offset + 2 + 12 * k: offset + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        value = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
        tags[tag] = value
    if 256 not in tags or 257 not in tags:
        return None
    bits = tags.get(258, 8) if tags.get(277, 1) == 1 else 16   # several samples: an offset; assume the worst
    return Header(tags[256], tags[257], min(4, tags.get(277, 1)), 2 if bits > 8 else 1)


def _pnm_header(data: bytes) -> Header | None:
    tokens = []
    for line in data[2:512].split(b"\n"):
        tokens += line.split(b"#", 1)[0].split()
    need = 2 if data[1:2] in b"14" else 3
    if len(tokens) < need:
        return None
    w, h = int(tokens[0]), int(tokens[1])
    maxval = int(tokens[2]) if need == 3 else 1
    return Header(w, h, 3 if data[1:2] in b"36" else 1, 2 if maxval > 255 else 1)


def _webp_header(data: bytes) -> Header | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return Header(w, h, 4)
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return Header(1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF), 4)
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return Header(w & 0x3FFF, h & 0x3FFF, 3)
    return None


def read_header(data: bytes, kind: str) -> Header | None:
    """Size, channels and sample size from the first bytes, without decoding (None: unreadable)."""
    try:
        if kind == "png" and data[12:16] == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", data[16:26])
            channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(color, 4)
            return Header(w, h, 4 if channels == 2 else channels, 2 if depth == 16 else 1)
        if kind == "gif":
            return Header(*struct.unpack("<HH", data[6:10]), 3)
        if kind == "bmp":
            w, h = struct.unpack("<ii", data[18:26])
            (bits,) = struct.unpack("<H", data[28:30])
            return Header(abs(w), abs(h), 4 if bits == 32 else 3)
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
                    return Header(w, h, 3)
                i += 2 + length
        if kind == "tiff":
            return _tiff_header(data)
        if kind == "pnm":
            return _pnm_header(data)
        if kind == "webp":
            return _webp_header(data)
    except (struct.error, ValueError, IndexError):
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


def _read_bytes(path: str) -> tuple[bytes, str]:
    """The file's bytes and its type, or BadImage: only regular files (a FIFO or a device would block
    or never end), opened without blocking, and the type known from the first bytes before the rest
    is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise BadImage("is a directory") from None
    except PermissionError:
        raise BadImage("permission denied") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BadImage("symlink loop") from None
        raise BadImage(f"cannot read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise BadImage("is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise BadImage("not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            head = f.read(16)
            raise BadImage(f"too large a file ({st.st_size / 2**20:.0f} MB > {MAX_FILE_BYTES // 2**20} MB)"
                           if sniff(head) else "not an image (unknown format)")
        try:
            head = f.read(SNIFF_BYTES)
            if not head:
                raise BadImage("empty file")
            kind = sniff(head)
            if kind is None:
                raise BadImage("not an image (unknown format)")
            return head + f.read(), kind
        except OSError as e:
            raise BadImage(f"cannot read ({e.strerror})") from None


def read_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS, reduce: bool = True,
               max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> np.ndarray:
    """Decode a file to a BGR or gray array (uint8 or uint16), or raise BadImage with a short reason.
    Memory is bounded before decoding: pixels and decoded bytes come from the header, and a format
    whose header gives no size is refused."""
    data, kind = _read_bytes(path)
    header = read_header(data, kind)
    if header is None:
        raise BadImage(f"{kind} header without a readable size")
    w, h = header.width, header.height
    if w == 0 or h == 0:
        raise BadImage(f"invalid {kind} header (size {w}x{h})")
    if w * h > max_pixels:
        raise BadImage(f"too large: {w}x{h} exceeds {max_pixels} pixels")
    factor = 1
    if kind == "jpeg" and reduce:
        factor = next((f for f in (8, 4, 2) if max(w, h) // f >= REDUCE_TARGET), 1)
    if header.decoded_bytes(factor) > max_decoded_bytes:
        raise BadImage(f"too large: {w}x{h}x{header.channels} at {8 * header.sample_bytes} bits would take "
                       f"{header.decoded_bytes(factor) / 2**20:.0f} MB decoded (> {max_decoded_bytes / 2**20:.0f} MB)")
    if not _complete(data, kind):
        raise BadImage(f"truncated {kind}")
    buf = np.frombuffer(data, np.uint8)
    if kind == "jpeg":
        # IMREAD_COLOR applies the EXIF orientation; the reduced modes decode a fraction of the pixels.
        flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                8: cv2.IMREAD_REDUCED_COLOR_8}[factor]
        image = cv2.imdecode(buf, flag)
    else:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)  # keeps alpha and 16-bit
    if image is None:
        raise BadImage(f"corrupt {kind} (cannot decode)")
    if image.ndim == 3 and image.shape[2] == 4:
        image = _composite_on_white(image)
    return image
