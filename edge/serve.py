"""--serve: a live page of what the device sees, served by the runtime itself.

The standard library's ThreadingHTTPServer (what picamera2's own MJPEG example uses): no
dependency on a Pi, one thread per viewer, and the camera loop never waits for any of them. The
loop only hands over its latest frame and reading (`LiveView.publish`, a reference swap under a
lock). One encoder thread draws and JPEG-encodes the latest frame, at most STREAM_FPS times a
second and only while someone watches; every viewer gets the newest JPEG when it is ready for
one, so a slow viewer skips frames instead of queueing them, and memory is one frame however many
watch.

Routes: `/` the page, `/stream.mjpg` the annotated frames, `/reading` the latest JSON record (what
--json prints), `/events` those records as Server-Sent Events, `/healthz` 200 while frames arrive
and 503 when they stop. With a token, every route but /healthz needs it (Authorization: Bearer,
or ?token= for the <img> and EventSource, which cannot send headers).
"""
from __future__ import annotations

import collections
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from . import health
from .draw import annotate

log = logging.getLogger(__name__)

STREAM_FPS = 15          # frames a second the page shows (the loop may read far more)
EVENTS_PER_SECOND = 10   # without --on-change, records a second per /events client
HISTORY = 20             # readings listed on the page
STALE_SECONDS = 5.0      # /healthz says 503 when no frame came for this long
CLIENT_TIMEOUT = 30.0    # a viewer that reads nothing for this long is dropped
JPEG_QUALITY = 80
HEALTH_EVERY = 10.0      # seconds between readings of the CPU temperature and throttling
PAGE = Path(__file__).with_name("live.html")


class ServeError(Exception):
    """The address cannot be served (in use, not an address of this host)."""


def parse_address(text: str) -> tuple[str, int]:
    """'8080' -> ('127.0.0.1', 8080); 'HOST:PORT' as given; ValueError on anything else."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected [HOST:]PORT, got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class LiveView:
    """What the camera loop publishes and the viewers read: the latest frame, record and history."""

    def __init__(self, min_confidence: float, on_change: bool):
        self.min_confidence, self.on_change = min_confidence, on_change
        self.lock = threading.Condition()
        self.frame: np.ndarray | None = None
        self.reading = None
        self.frame_seq = 0
        self.jpeg: bytes | None = None
        self.jpeg_seq = 0
        self.record: dict | None = None
        self.record_seq = 0
        self.history: collections.deque = collections.deque(maxlen=HISTORY)
        self.last_frame_at: float | None = None
        self.fps = 0.0
        self.viewers = 0               # MJPEG streams open
        self.listeners = 0             # /events clients waiting for a record
        self.closing = threading.Event()
        self._times: collections.deque = collections.deque(maxlen=60)
        self._device, self._device_at = "", -HEALTH_EVERY

    # --- the camera loop's side: O(1), never blocks on a viewer ---
    def publish(self, result, frame: np.ndarray, printed: bool) -> None:
        now = time.monotonic()
        with self.lock:
            # The frame is copied into one buffer, and only while someone watches: holding on to the
            # loop's own frame array cost it 10 % (every new frame then needed fresh memory).
            if self.viewers:
                if self.frame is None or self.frame.shape != frame.shape or self.frame.dtype != frame.dtype:
                    self.frame = np.empty_like(frame)
                np.copyto(self.frame, frame)
            self.reading, self.frame_seq = result.reading, self.frame_seq + 1
            self.last_frame_at = now
            self._times.append(now)
            if len(self._times) > 1:
                self.fps = (len(self._times) - 1) / max(1e-9, self._times[-1] - self._times[0])
            if printed or not self.on_change:
                record = result.record
                if printed and (not self.history or self.history[0]["reading"] != record["reading"]):
                    self.history.appendleft({"time": record["time"], "reading": record["reading"]})
                self.record, self.record_seq = record, self.record_seq + 1
                if self.listeners:     # waking threads for nothing costs the loop its GIL on every frame
                    self.lock.notify_all()

    def healthy(self) -> bool:
        return self.last_frame_at is not None and time.monotonic() - self.last_frame_at < STALE_SECONDS

    def status(self) -> dict:
        """The figures the page shows besides the reading."""
        with self.lock:
            record = self.record
        now = time.monotonic()
        if now - self._device_at > HEALTH_EVERY:      # vcgencmd is a process: not once per poll per viewer
            self._device, self._device_at = health.status(), now
        return {"fps": round(self.fps, 1), "ms": record["ms"] if record else {}, "history": list(self.history),
                "healthy": self.healthy(), "device": self._device, "viewers": self.viewers}

    # --- the encoder thread ---
    def encode_forever(self) -> None:
        """STREAM_FPS times a second, if someone watches and the frame is new: draw and encode it.
        It looks by the clock instead of being woken per frame: the loop never pays for it."""
        interval, done = 1.0 / STREAM_FPS, 0
        while not self.closing.wait(interval):
            with self.lock:
                if not self.viewers or self.frame is None or self.frame_seq == done:
                    continue
                frame, reading, seq = self.frame.copy(), self.reading, self.frame_seq
            ok, data = cv2.imencode(".jpg", annotate(frame, reading, self.min_confidence),
                                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            with self.lock:
                if ok:
                    self.jpeg, self.jpeg_seq = data.tobytes(), self.jpeg_seq + 1
                done = seq
                self.lock.notify_all()

    def next_jpeg(self, after: int) -> tuple[bytes | None, int]:
        with self.lock:
            self.lock.wait_for(lambda: self.closing.is_set() or self.jpeg_seq != after, timeout=STALE_SECONDS)
            return (self.jpeg, self.jpeg_seq) if self.jpeg_seq != after else (None, after)

    def next_record(self, after: int) -> tuple[dict | None, int]:
        with self.lock:
            self.listeners += 1
            try:
                self.lock.wait_for(lambda: self.closing.is_set() or self.record_seq != after, timeout=STALE_SECONDS)
            finally:
                self.listeners -= 1
            return (self.record, self.record_seq) if self.record_seq != after else (None, after)


class Handler(BaseHTTPRequestHandler):
    server_version = "digit-edge"
    protocol_version = "HTTP/1.1"
    view: LiveView
    token: str | None

    def log_message(self, fmt, *args) -> None:          # to logging, not to stderr in its own format
        log.debug("%s %s", self.address_string(), fmt % args)

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(CLIENT_TIMEOUT)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        route = {"/": self.page, "/stream.mjpg": self.stream, "/reading": self.latest, "/events": self.events,
                 "/healthz": self.healthz, "/status": self.status}.get(url.path)
        try:
            if route is None:
                return self.plain(HTTPStatus.NOT_FOUND, "not found\n")
            if url.path != "/healthz" and not self.authorized(url.query):
                return self.plain(HTTPStatus.UNAUTHORIZED, "a token is needed: ?token= or Authorization: Bearer\n",
                                  {"WWW-Authenticate": "Bearer"})
            route()
        except (BrokenPipeError, ConnectionResetError, socket.timeout, TimeoutError):
            self.close_connection = True                 # a viewer left: not an error
        except Exception as e:                           # logged here, never sent to the client
            log.warning("serving %s failed: %s: %s", url.path, type(e).__name__, e)
            self.close_connection = True

    def authorized(self, query: str) -> bool:
        if not self.token:
            return True
        given = self.headers.get("Authorization", "")
        given = given[7:] if given.startswith("Bearer ") else (parse_qs(query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def plain(self, status: HTTPStatus, body: str, headers: dict | None = None,
              content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def page(self) -> None:
        self.plain(HTTPStatus.OK, PAGE.read_text(encoding="utf-8"), content_type="text/html; charset=utf-8")

    def latest(self) -> None:
        record = self.view.record
        self.plain(HTTPStatus.OK if record else HTTPStatus.SERVICE_UNAVAILABLE,
                   json.dumps(record) + "\n" if record else '{"error": "no frame yet"}\n',
                   content_type="application/json")

    def status(self) -> None:
        self.plain(HTTPStatus.OK, json.dumps(self.view.status()) + "\n", content_type="application/json")

    def healthz(self) -> None:
        ok = self.view.healthy()
        self.plain(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE,
                   "ok\n" if ok else "no frames\n")

    def open_stream(self, content_type: str) -> None:
        """Headers of a response that lasts as long as the viewer watches."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def stream(self) -> None:
        self.open_stream("multipart/x-mixed-replace; boundary=frame")
        with self.view.lock:
            self.view.viewers += 1
        try:
            seq = 0
            while not self.view.closing.is_set():
                jpeg, seq = self.view.next_jpeg(seq)
                if jpeg is None:
                    continue
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
        finally:
            with self.view.lock:
                self.view.viewers -= 1

    def events(self) -> None:
        self.open_stream("text/event-stream")
        seq, gap = 0, 0.0 if self.view.on_change else 1.0 / EVENTS_PER_SECOND
        while not self.view.closing.is_set():
            record, new_seq = self.view.next_record(seq)
            if record is None:
                self.wfile.write(b": keep-alive\n\n")      # finds a viewer that left
                continue
            seq = new_seq
            self.wfile.write(b"data: " + json.dumps(record).encode() + b"\n\n")
            self.wfile.flush()
            if gap:
                self.view.closing.wait(gap)


class LiveServer:
    """The HTTP server and the encoder, on daemon threads; bound in the constructor so that a port in
    use is an error before the camera opens."""

    def __init__(self, address: tuple[str, int], view: LiveView, token: str | None = None):
        handler = type("BoundHandler", (Handler,), {"view": view, "token": token})
        try:
            self.httpd = ThreadingHTTPServer(address, handler)
        except OSError as e:
            raise ServeError(f"--serve {address[0]}:{address[1]}: {e.strerror or e}") from None
        self.httpd.daemon_threads = True
        self.view = view
        if not is_loopback(address[0]) and not token:
            log.warning("serving on %s:%d without --serve-token: anyone on the network can watch",
                        *address)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="serve",
                         daemon=True).start()
        threading.Thread(target=self.view.encode_forever, name="encode", daemon=True).start()
        log.info("live view at %s", self.url)

    def close(self) -> None:
        self.view.closing.set()
        with self.view.lock:
            self.view.lock.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
