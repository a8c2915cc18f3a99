"""Frame sources: a Pi camera (picamera2), OpenCV cameras/files/streams, still images and folders.

Each source has `read() -> frame | None` (None: a failed read, worth retrying), raises
`EndOfStream` when a finite source is exhausted, and `close()`. `ResilientSource` adds the
retry / reopen-with-backoff policy a camera left running on a Pi needs.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Iterator, Protocol

import cv2
import numpy as np

from .images import IMAGE_SUFFIXES, BadImage, read_image

log = logging.getLogger(__name__)

PICAMERA_HELP = ("picamera2 is not importable: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
                 "and create the venv with `python3 -m venv --system-site-packages`")


STREAM_TIMEOUT = 2.0     # seconds a network stream may stall in one open or read (--stream-timeout)


class EndOfStream(Exception):
    """A finite source (video file, image, folder) has no more frames."""


class SourceError(Exception):
    """A source cannot be opened at all."""


class Source(Protocol):
    name: str
    live: bool

    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


class PiCameraSource:
    """Raspberry Pi camera through picamera2. `factory` is injectable so tests can stand in for it."""

    live = True

    def __init__(self, size: tuple[int, int] = (640, 480), factory: Callable | None = None):
        if factory is None:
            try:
                from picamera2 import Picamera2
            except ImportError:
                raise SourceError(PICAMERA_HELP) from None
            factory = Picamera2
        self.name = "picamera2"
        self.camera = factory()
        # "RGB888" arrives as B, G, R in memory: exactly what OpenCV expects.
        config = self.camera.create_preview_configuration(main={"format": "RGB888", "size": tuple(size)})
        self.camera.configure(config)
        self.camera.start()

    def read(self) -> np.ndarray | None:
        return self.camera.capture_array("main")

    def close(self) -> None:
        try:
            self.camera.stop()
        finally:
            self.camera.close()


class OpenCVSource:
    """cv2.VideoCapture on a camera index, a video file, or an rtsp/http URL."""

    def __init__(self, spec: str | int, size: tuple[int, int] | None = None, timeout: float = STREAM_TIMEOUT):
        self.name = str(spec)
        self.live = isinstance(spec, int) or "://" in str(spec)
        if not self.live and not Path(spec).exists():
            raise SourceError(f"{spec}: no such video file")
        if isinstance(spec, str) and "://" in spec:
            # A stalled stream would block open and read for OpenCV's default 30 s, and a signal is
            # only handled when the call returns: bound both, so a stop takes at most this long.
            ms = int(timeout * 1000)
            self.capture = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                                   cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            self.capture = cv2.VideoCapture(spec)
        if not self.capture.isOpened():
            raise SourceError(f"{spec}: OpenCV cannot open this source")
        if size and self.live:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])

    def read(self) -> np.ndarray | None:
        ok, frame = self.capture.read()
        if not ok:
            if not self.live:
                raise EndOfStream(self.name)
            return None
        return frame

    def close(self) -> None:
        self.capture.release()


class ImageSource:
    """A still image, or every image in a folder (sorted), each read once."""

    live = False

    def __init__(self, path: Path):
        self.name = str(path)
        if path.is_dir():
            self.paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            self.paths = [path]
        self._iter: Iterator[Path] = iter(self.paths)

    def read(self) -> np.ndarray | None:
        path = next(self._iter, None)
        if path is None:
            raise EndOfStream(self.name)
        try:
            return read_image(str(path))       # the folder classifier's decoder: EXIF, 16-bit, alpha
        except BadImage as e:
            log.warning("%s: %s, skipped", path, e)
            return None

    def close(self) -> None:
        pass


def picamera_available() -> bool:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        return False
    return True


def open_source(spec: str, size: tuple[int, int] | None = None, timeout: float = STREAM_TIMEOUT) -> Source:
    """`auto`, `picamera`, a camera index, an image, a folder, a video file, or a stream URL."""
    if spec == "auto":
        spec = "picamera" if picamera_available() else "0"
        log.info("source auto -> %s", spec)
    if spec == "picamera":
        return PiCameraSource(size or (640, 480))
    if spec.isdigit():
        return OpenCVSource(int(spec), size)
    path = Path(spec)
    if "://" not in spec and (path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES):
        if not path.exists():
            raise SourceError(f"{spec}: no such image or folder")
        return ImageSource(path)
    return OpenCVSource(spec, size, timeout)


class CameraLost(Exception):
    """Reads kept failing and reopening did not help."""


class ResilientSource:
    """Retry failed reads, treat a frozen picture as a failure, reopen live sources with backoff.

    A dead USB camera often keeps returning its last frame; `frozen_after` identical frames in a row
    count as one failed read. After `max_reopens` reopen attempts without a good frame, CameraLost.
    """

    def __init__(self, opener: Callable[[], Source], retries: int = 5, max_reopens: int = 5,
                 backoff: float = 0.5, max_backoff: float = 8.0, frozen_after: int = 50,
                 sleep: Callable[[float], bool | None] = time.sleep):
        self.opener, self.retries, self.max_reopens = opener, retries, max_reopens
        self.backoff, self.max_backoff, self.frozen_after, self.sleep = backoff, max_backoff, frozen_after, sleep
        self.source = opener()
        self.name, self.live = self.source.name, self.source.live
        self.failed_reads = self.reopens = 0
        self._last_sig: bytes | None = None
        self._same = 0

    def _frozen(self, frame: np.ndarray) -> bool:
        sig = frame[::16, ::16].tobytes()
        self._same = self._same + 1 if sig == self._last_sig else 0
        self._last_sig = sig
        return self._same >= self.frozen_after

    def read(self) -> np.ndarray | None:
        if not self.live:
            return self.source.read()   # a file either has a frame or not; retrying cannot help
        attempts = reopen_round = 0
        while True:
            try:
                frame = self.source.read()
            except EndOfStream:
                raise
            except Exception as e:  # a driver error is a failed read, not a crash
                log.warning("%s: read raised %s: %s", self.name, type(e).__name__, e)
                frame = None
            if frame is not None and not self._frozen(frame):
                return frame
            self.failed_reads += 1
            attempts += 1
            if frame is not None:
                log.warning("%s: the same frame %d times in a row; camera looks frozen", self.name, self._same)
                self._same = 0
            if attempts < self.retries:
                continue
            if reopen_round >= self.max_reopens:
                raise CameraLost(f"{self.name}: no good frame after {self.failed_reads} failed reads "
                                 f"and {reopen_round} reopen attempts")
            delay = min(self.max_backoff, self.backoff * 2 ** reopen_round)
            reopen_round += 1
            self.reopens += 1
            log.warning("%s: reopening in %.1f s (attempt %d of %d)", self.name, delay, reopen_round, self.max_reopens)
            if self.sleep(delay):   # a sleep that returns True was woken by a stop signal
                raise EndOfStream(f"{self.name}: stopped while waiting to reopen")
            try:
                self.source.close()
            except Exception:
                pass
            try:
                self.source = self.opener()
            except Exception as e:
                log.warning("%s: reopen failed: %s", self.name, e)
            attempts = 0

    def close(self) -> None:
        self.source.close()
