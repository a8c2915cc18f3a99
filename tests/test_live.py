"""The live view (--serve): the page in a real Chromium, and the HTTP routes against stdout."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from synthetic.frames import frame

from conftest import ROOT

ARTIFACTS = ROOT / "build" / "test-artifacts"
DIGITS = [3, 2, 1, 18]            # test-set indices of a 0, a 1, a 2 and a 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def steady_video(tmp_path_factory, mnist) -> tuple[Path, str]:
    """A camera held still over four digits: 640x480, the same page in every frame."""
    x, y = mnist[1]
    image = frame([x[i] for i in DIGITS], np.random.default_rng(5))
    path = tmp_path_factory.mktemp("live") / "steady.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _ in range(300):
        writer.write(image)
    writer.release()
    return path, "".join(str(y[i]) for i in DIGITS)


class Edge:
    """`python -m edge --serve` on a video, paced so the page has time to look at it."""

    def __init__(self, video: Path, *args: str, fps: float = 20):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", "--source", str(video), "--json", "--fps", str(fps),
                                      "--serve", f"127.0.0.1:{self.port}", *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(300):
            try:
                if self.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            self.proc.kill()
            raise AssertionError(self.proc.stderr.read())

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def events(self, n: int, path: str = "/events") -> list[dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path)
        r = conn.getresponse()
        out = []
        while len(out) < n:
            line = r.fp.readline().decode()
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
        conn.close()
        return out

    def stop(self) -> tuple[str, str]:
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=30)
        return out, err


def test_the_page_in_chromium_shows_the_reading_and_the_frames(steady_video):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Debian's chromium and chromium-driver (CI installs them)")
    pytest.importorskip("selenium", reason="needs selenium (the dev extras; not on the Pi-like stack)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    video, truth = steady_video
    edge = Edge(video, "--serve-token", "s3cret")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,700"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(f"http://127.0.0.1:{edge.port}/?token=s3cret")
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: d.find_element("id", "reading").text == truth)
        # the <img> is receiving the MJPEG stream: its natural size is the frame's
        wait.until(lambda d: d.execute_script("return document.getElementById('frame').naturalWidth") == 640)
        assert driver.execute_script("return document.getElementById('frame').naturalHeight") == 480
        wait.until(lambda d: d.find_element("id", "history").text != "")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "live-view.png"))
    finally:
        driver.quit()
        edge.stop()


def test_reading_and_events_are_the_stdout_records_and_the_token_is_enforced(steady_video):
    video, truth = steady_video
    edge = Edge(video, "--serve-token", "s3cret")
    try:
        assert edge.get("/reading")[0] == 401 and edge.get("/events")[0] == 401 and edge.get("/")[0] == 401
        assert edge.get("/reading?token=wrong")[0] == 401
        assert edge.get("/healthz")[0] == 200                        # open, for systemd and monitors
        status, body = edge.get("/reading", {"Authorization": "Bearer s3cret"})
        latest = json.loads(body)
        assert status == 200 and latest["reading"] == truth
        events = edge.events(3, "/events?token=s3cret")
        assert edge.get("/nope?token=s3cret")[0] == 404 and edge.get("/../../etc/passwd?token=s3cret")[0] == 404
        status, page = edge.get("/?token=s3cret")
        assert status == 200 and b"<img" in page and b"http" not in page.split(b"<script>")[1]   # nothing external
    finally:
        out, err = edge.stop()
    printed = {r["frame"]: r for r in map(json.loads, out.splitlines())}
    for record in [latest, *events]:
        assert printed[record["frame"]] == record


def rss_kb(pid: int) -> int:
    return int([line for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:")][0].split()[1])


def test_stuck_and_churning_clients_cost_neither_the_loop_nor_threads_nor_memory(steady_video):
    video, _ = steady_video
    edge = Edge(video, fps=60)                  # 300 frames: 5 s
    pid = edge.proc.pid
    time.sleep(0.5)
    threads, fds, rss = len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd")), rss_kb(pid)
    stuck = socket.create_connection(("127.0.0.1", edge.port))          # asks for the stream, never reads
    stuck.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(20):                                                   # viewers that come and go
        with socket.create_connection(("127.0.0.1", edge.port)) as s:
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(1000)
        with socket.create_connection(("127.0.0.1", edge.port)) as s:
            s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(100)
    time.sleep(1.5)                                                       # the stuck viewer's buffers fill
    assert rss_kb(pid) < rss + 30_000                                     # one frame, not a queue of them
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (len(os.listdir(f"/proc/{pid}/task")) > threads + 1
                                           or len(os.listdir(f"/proc/{pid}/fd")) > fds + 1):
        time.sleep(0.2)
    # what is left is the stuck viewer's own thread and socket, nothing of the 40 that left
    assert len(os.listdir(f"/proc/{pid}/task")) <= threads + 1 and len(os.listdir(f"/proc/{pid}/fd")) <= fds + 1
    out, err = edge.proc.communicate(timeout=60)      # the video runs to its end: the loop never waited
    stuck.close()
    assert edge.proc.returncode == 0 and "300 frames read, 300 processed" in err, err[-2000:]
    assert len(out.splitlines()) == 300


def test_a_port_in_use_is_a_one_line_error_before_the_camera_opens(steady_video, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "edge", "--source", str(tmp_path / "missing.avi"),
                            "--serve", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "address already in use" in r.stderr.lower() and "no such video" not in r.stderr   # before the source


def test_binding_beyond_loopback_without_a_token_warns(steady_video):
    video, _ = steady_video
    edge = Edge.__new__(Edge)
    edge.port = free_port()
    edge.proc = subprocess.Popen([sys.executable, "-m", "edge", "--source", str(video), "--max-frames", "5",
                                  "--serve", f"0.0.0.0:{edge.port}"], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    _, err = edge.proc.communicate(timeout=60)
    assert "without --serve-token" in err and edge.proc.returncode == 0, err


def test_healthz_follows_the_frames():
    """503 before the first frame and once frames stop (a lost camera), 200 while they arrive."""
    from edge.reading import Reading
    from edge.run import FrameResult
    from edge.serve import STALE_SECONDS, LiveServer, LiveView

    view = LiveView(0.5, on_change=False)
    server = LiveServer(("127.0.0.1", 0), view)
    server.start()
    port = server.httpd.server_address[1]

    def status() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        code = conn.getresponse().status
        conn.close()
        return code

    try:
        assert status() == 503
        result = FrameResult(0, "2026-01-01T00:00:00.000", Reading("7", (), {"preprocess": 1.0, "inference": 0.1,
                                                                               "total": 1.1}))
        view.publish(result, np.zeros((480, 640, 3), np.uint8), printed=True)
        assert status() == 200
        view.last_frame_at -= STALE_SECONDS + 1          # as if the camera stopped that long ago
        assert status() == 503
    finally:
        server.close()
