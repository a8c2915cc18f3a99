"""Bad models, hostile files, dead streams and interrupted runs: each fails cleanly, in one line,
with the documented exit code, and never loses or corrupts what was there."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.machine import PEAK_RSS, peak_kb
from edge.interpreter import DigitModel, ModelError, sha256_file
from edge.run import FrameErrors, RunOptions, StopFlag, run
from edge.sources import EndOfStream, ResilientSource

from conftest import ROOT

EDGE = [sys.executable, "-m", "edge"]
CLASSIFY = [sys.executable, "-m", "edge.classify"]


def one_line_error(stderr: str) -> bool:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    return len(lines) == 1 and "Traceback" not in stderr


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory, mnist) -> Path:
    folder = tmp_path_factory.mktemp("digits")
    x, _ = mnist[1]
    for i in range(12):
        cv2.imwrite(str(folder / f"{i:03d}.png"), 255 - x[i])
    return folder


def copy_model(tmp_path: Path, manifest_edit=None) -> Path:
    for name in ("digit_int8.tflite", "digit_int8.json"):
        shutil.copy(ROOT / "models" / name, tmp_path / name)
    if manifest_edit:
        m = json.loads((tmp_path / "digit_int8.json").read_text())
        manifest_edit(m)
        (tmp_path / "digit_int8.json").write_text(json.dumps(m))
    return tmp_path / "digit_int8.tflite"


# --- models -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wrong_shape_model(tmp_path_factory) -> Path:
    """A real, loadable TFLite model of 32x32x3 input with a valid manifest."""
    keras = pytest.importorskip("keras", reason="building a model needs Keras (not on the Pi-like stack)")
    from convert.quantize import convert
    out = tmp_path_factory.mktemp("wrong_shape")
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    path = out / "wrong.tflite"
    path.write_bytes(convert(model, "float32"))
    path.with_suffix(".json").write_text(json.dumps({"sha256": sha256_file(path),
                                                     "normalization": {"scale": 1 / 255, "offset": 0}}))
    return path


def test_a_model_of_the_wrong_shape_is_refused_at_load(wrong_shape_model, digits_folder, mnist):
    with pytest.raises(ModelError, match="input is 32x32x3"):
        DigitModel(wrong_shape_model)
    for cmd in (EDGE + ["--source", str(digits_folder)], CLASSIFY + [str(digits_folder)]):
        r = subprocess.run(cmd + ["--model", str(wrong_shape_model)], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 1 and one_line_error(r.stderr) and "32x32x3" in r.stderr, r.stderr[-2000:]
        assert len(r.stderr) < 2000


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(labels=["/../../tmp/X"] + m["labels"][1:]), "labels"),
    (lambda m: m.update(labels=m["labels"][:10]), "11 scores"),
    (lambda m: m.update(normalization=None), "normalization"),
])
def test_manifests_that_would_misread_or_write_outside_are_refused(tmp_path, edit, message):
    model = copy_model(tmp_path, edit)
    with pytest.raises(ModelError, match=message):
        DigitModel(model)
    r = subprocess.run(EDGE + ["--source", str(tmp_path), "--model", str(model), "--debug-dir", str(tmp_path / "d")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and one_line_error(r.stderr), r.stderr[-2000:]
    assert not (tmp_path / "d").exists()


class FailingModel:
    """The published model whose interpreter fails on every invoke (what a broken delegate does)."""

    def __init__(self, model: DigitModel):
        self.labels, self.not_a_digit = model.labels, model.not_a_digit

    def predict(self, pixels):
        raise ModelError("the interpreter failed: Node number 3 (CONV_2D) failed to invoke")


class Frames:
    live = False

    def __init__(self, frames):
        self.frames = list(frames)

    def read(self):
        if not self.frames:
            raise EndOfStream("done")
        return self.frames.pop(0)


def test_a_run_in_which_every_frame_fails_ends_with_the_error(published_model, mnist):
    frame = cv2.cvtColor(cv2.resize(255 - mnist[1][0][0], (200, 200)), cv2.COLOR_GRAY2BGR)
    model = FailingModel(DigitModel(published_model))
    with pytest.raises(FrameErrors, match="10 frames in a row.*CONV_2D"):
        run(Frames([frame] * 100), model, RunOptions(max_frame_errors=10), out=open(os.devnull, "w"))


def test_backend_tensorflow_works(published_model, digits_folder):
    pytest.importorskip("tensorflow", reason="the tensorflow backend needs TensorFlow (not on the Pi-like stack)")
    r = subprocess.run(CLASSIFY + [str(digits_folder / "000.png"), "--backend", "tensorflow", "--single"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "on tensorflow" in r.stderr and "I0000" not in r.stderr     # no TensorFlow C++ info lines


def test_the_model_line_is_logged_once_with_many_workers(digits_folder):
    r = subprocess.run(CLASSIFY + [str(digits_folder), "--workers", "2"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stderr.count("model digit_int8.tflite on") == 1, r.stderr


# --- hostile files ----------------------------------------------------------------------------

def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(path: Path, side: int = 9999) -> None:
    """A real 16-bit RGBA PNG of side x side, all zeros: under a MB on disk, 800 MB decoded."""
    comp, row = zlib.compressobj(9), b"\x00" * (1 + side * 8)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
                     + png_chunk(b"IEND", b""))


def tiff_header(path: Path, side: int = 20000) -> None:
    """The header of a 20000x20000 grey TIFF: its size is in the first IFD."""
    entries = [(256, 4, 1, side), (257, 4, 1, side), (258, 3, 1, 8), (259, 3, 1, 8), (277, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0" * 1000)


def test_hostile_files_get_rows_without_hanging_or_exhausting_memory(tmp_path, digits_folder):
    folder = tmp_path / "hostile"
    folder.mkdir()
    shutil.copy(digits_folder / "000.png", folder / "good.png")
    os.mkfifo(folder / "x.png")                          # opening it for reading would block forever
    huge_png(folder / "rgba16.png")
    tiff_header(folder / "big.tif")
    with open(folder / "huge.png", "wb") as f:          # 2 GB sparse, zeros: not an image
        f.truncate(2 * 2**30)
    r = subprocess.run([sys.executable, "-c", PEAK_RSS, "edge.classify", str(folder), "--workers", "1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr[-2000:]
    rows = {Path(rec.split(",")[0]).name: rec for rec in r.stdout.splitlines()[1:]}
    assert "not a regular file" in rows["x.png"]
    assert "too large" in rows["rgba16.png"] and "MB decoded" in rows["rgba16.png"]
    assert "too large" in rows["big.tif"]
    assert "not an image" in rows["huge.png"] or "too large a file" in rows["huge.png"]
    assert ",ok," in rows["good.png"]
    assert peak_kb(r.stderr) < 400 * 1024, r.stderr     # 5 GB and 2 GB before


@pytest.mark.parametrize("noticed", [False, True], ids=["seen-by-a-result", "seen-by-a-submit"])
def test_a_killed_worker_costs_no_rows(tmp_path, mnist, published_model, noticed):
    import multiprocessing as mp
    from edge.folder import Settings, classify_iter
    from edge.images import find_images
    from edge.interpreter import read_manifest
    x, _ = mnist[1]
    for i in range(400):
        cv2.imwrite(str(tmp_path / f"{i:04d}.png"), 255 - x[i])
    entries = find_images([str(tmp_path)])
    rows, killed = [], []
    for row in classify_iter(entries, Settings(str(published_model), read_manifest(published_model)), workers=2):
        rows.append(row)
        if len(rows) == 1:                  # the OOM killer's signal, mid-run
            victim = mp.active_children()[0].pid
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
            if noticed:                     # let the pool see the death before the next submit
                threading.Event().wait(1.0)
    assert killed and [r.path for r in rows] == [e.path for e in entries]
    assert sum(r.status == "ok" for r in rows) >= len(entries) - 64    # at most the chunk it held


def test_interrupted_run_resumes_and_keeps_mode_and_symlink(tmp_path, mnist):
    x, _ = mnist[1]
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3000):
        cv2.imwrite(str(folder / f"{i:05d}.png"), 255 - x[i])
    real = tmp_path / "real.csv"
    real.write_text("old results\n")
    os.chmod(real, 0o600)
    link = tmp_path / "out.csv"
    link.symlink_to(real)
    p = subprocess.Popen(CLASSIFY + [str(folder), "--out", str(link), "--workers", "1", "--single"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "real.csv.partial"
    while not (partial.exists() and partial.read_text().count("\n") > 64) and p.poll() is None:
        threading.Event().wait(0.01)
    p.send_signal(signal.SIGINT)                         # Ctrl-C
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and one_line_error(err) and "--resume" in err, err[-2000:]
    assert real.read_text() == "old results\n"           # the previous output is intact
    done = partial.read_text().count("\n") - 1
    r = subprocess.run(CLASSIFY + [str(folder), "--out", str(link), "--workers", "2", "--resume", "--single"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming: {done} rows kept" in r.stderr and f"{3000 - done} files seen" in r.stderr
    lines = real.read_text().splitlines()
    paths = [line.split(",")[0] for line in lines[1:]]
    assert lines[0].startswith("path,reading") and sorted(paths) == sorted(str(p) for p in folder.iterdir())
    assert link.is_symlink() and stat.S_IMODE(real.stat().st_mode) == 0o600 and not partial.exists()


def test_names_that_are_not_utf8_or_hold_line_breaks_are_written_faithfully(tmp_path, mnist):
    x, _ = mnist[1]
    names = [b"caf\xe9.png", b"two\rlines.png"]
    for i, name in enumerate(names):
        cv2.imwrite(str(tmp_path / f"{i}.png"), 255 - x[i])
        os.rename(tmp_path / f"{i}.png", os.path.join(bytes(tmp_path), name))
    out = tmp_path / "rows.csv"
    r = subprocess.run(CLASSIFY + [str(tmp_path), "--out", str(out), "--single"], cwd=ROOT, capture_output=True,
                       timeout=120, env=dict(os.environ, LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8:strict"))
    assert r.returncode == 0, r.stderr[-2000:]
    data = out.read_bytes()
    assert b"caf\xe9.png" in data and b'two\rlines.png"' in data
    import csv
    import io
    rows = list(csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")))
    assert len(rows) == 3 and all(len(row) == 6 for row in rows)
    r = subprocess.run(CLASSIFY + [str(tmp_path), "--single", "--format", "jsonl"], cwd=ROOT, capture_output=True,
                       timeout=120, env=dict(os.environ, LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8:strict"))
    assert r.returncode == 0 and b"caf\xe9.png" in r.stdout, r.stderr[-2000:]


# --- streams and signals -----------------------------------------------------------------------

class DeadCamera:
    live, name = True, "dead"

    def read(self):
        return None

    def close(self):
        pass


def test_a_stop_signal_wakes_the_reconnect_backoff():
    stop = StopFlag()
    source = ResilientSource(DeadCamera, retries=1, max_reopens=5, backoff=3600, sleep=stop.wait)
    threading.Timer(0.2, stop.set).start()
    result = []
    reader = threading.Thread(target=lambda: result.append(pytest.raises(EndOfStream, source.read)))
    reader.start()
    reader.join(timeout=60)                              # a guard against a hang, not a speed test
    assert not reader.is_alive() and result


def test_unwritable_debug_output_warns_once_and_reading_goes_on(tmp_path, digits_folder):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = subprocess.run(EDGE + ["--source", str(digits_folder), "--debug-dir", str(blocker / "sub"), "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 12, r.stderr[-2000:]
    assert r.stderr.count("stopped writing debug pictures") == 1 and "Traceback" not in r.stderr


def test_broken_pipe_and_bad_paths_are_one_line(tmp_path, digits_folder, published_model):
    for cmd in (EDGE + ["--source", str(digits_folder)], CLASSIFY + [str(digits_folder), "--workers", "1"]):
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        p.stdout.readline()
        p.stdout.close()                                 # `| head -1`
        err = p.stderr.read()
        p.wait(timeout=60)
        assert "Traceback" not in err and "BrokenPipe" not in err, err[-2000:]
    (tmp_path / "report").write_text("")
    (tmp_path / "nolabel.csv").write_text("path,digit\nx.png,3\n")
    cases = [
        (CLASSIFY + [str(digits_folder), "--out", str(tmp_path)], 2),
        (CLASSIFY + [str(digits_folder), "--report", str(tmp_path / "report")], 2),
        (CLASSIFY + [str(digits_folder), "--labels", str(tmp_path / "nolabel.csv")], 2),
        (CLASSIFY + [str(digits_folder), "--model", str(published_model.with_suffix(""))], 2),
        (CLASSIFY + [str(digits_folder), "--min-confidence", "5"], 2),
        (EDGE + ["--source", str(digits_folder), "--debug-dir", str(tmp_path / "report")], 2),
        (EDGE + ["--source", str(digits_folder), "--fps", "-1"], 2),
        (EDGE + ["--source", str(digits_folder), "--retries", "-1"], 2),
        (EDGE + ["--source", str(tmp_path / "report")], 1),
    ]
    for cmd, code in cases:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == code and "Traceback" not in r.stderr, (cmd, r.stderr[-2000:])


def test_nothing_readable_is_exit_1_in_both_programs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "zero").mkdir()
    (tmp_path / "zero" / "a.png").write_bytes(b"")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.png").write_text("not an image")
    for folder in (empty, tmp_path / "zero", tmp_path / "text"):
        for cmd in (EDGE + ["--source", str(folder)], CLASSIFY + [str(folder)]):
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert r.returncode == 1 and "Traceback" not in r.stderr, (cmd, r.stderr[-1000:])


# --- fuzzing ----------------------------------------------------------------------------------

FUZZ = r"""
import sys, traceback
from pathlib import Path
import numpy as np
from edge.images import BadImage, read_image
from edge.interpreter import DigitModel, ModelError
from edge.preprocess import find_digits
kind, paths = sys.argv[1], sys.argv[2:]
for p in paths:
    try:
        if kind == "model":
            m = DigitModel(p, allow_mismatch=True, quiet=True)
            m.predict(np.zeros((3, 28, 28), np.uint8))
        else:
            find_digits(read_image(p))
        print("ok", flush=True)
    except (ModelError, BadImage) as e:
        assert "\n" not in str(e), str(e)
        print("refused", flush=True)
    except Exception:
        print("CRASH " + p + " " + traceback.format_exc().replace("\n", " | "), flush=True)
"""


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 2, 8, 32])):
        b[rng.randrange(len(b))] = rng.randrange(256)
    if rng.random() < 0.2:
        b = b[:rng.randrange(1, len(b))]
    return bytes(b)


def test_fuzz_300_mutated_models_and_300_mutated_images(tmp_path, digits_folder):
    rng = random.Random(11)
    model = (ROOT / "models" / "digit_int8.tflite").read_bytes()
    manifest = (ROOT / "models" / "digit_int8.json").read_text()
    models = []
    for i in range(300):
        path = tmp_path / f"m{i:03d}.tflite"
        path.write_bytes(mutate(model, rng))
        path.with_suffix(".json").write_text(manifest)
        models.append(str(path))
    page = cv2.imread(str(digits_folder / "000.png"))
    sources = {".png": cv2.imencode(".png", cv2.resize(page, (300, 200)))[1].tobytes(),
               ".jpg": cv2.imencode(".jpg", cv2.resize(page, (300, 200)))[1].tobytes()}
    images = []
    for i in range(300):
        suffix = ".png" if i % 2 else ".jpg"
        path = tmp_path / f"i{i:03d}{suffix}"
        path.write_bytes(mutate(sources[suffix], rng))
        images.append(str(path))
    for kind, paths in (("model", models), ("image", images)):
        r = subprocess.run([sys.executable, "-c", FUZZ, kind, *paths], cwd=ROOT, capture_output=True, text=True,
                           timeout=5 * len(paths))
        lines = r.stdout.splitlines()
        assert r.returncode == 0 and len(lines) == len(paths), (kind, r.returncode, lines[-3:], r.stderr[-1000:])
        crashes = [line for line in lines if line.startswith("CRASH")]
        assert not crashes, crashes[:3]
        print(kind, {k: lines.count(k) for k in set(lines)})


class StallingStream:
    """An MJPEG-over-HTTP camera that sends `frames` frames and then stalls with the socket open
    (0: it accepts and never answers)."""

    def __init__(self, frames: int):
        image = np.full((240, 320, 3), 200, np.uint8)
        cv2.putText(image, "7", (120, 180), cv2.FONT_HERSHEY_SIMPLEX, 5, (0, 0, 0), 12)
        self.jpeg, self.frames, self.held = cv2.imencode(".jpg", image)[1].tobytes(), frames, []
        self.server = socket_server()
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            conn, _ = self.server.accept()
            self.held.append(conn)
            if not self.frames:
                continue
            conn.recv(4096)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=f\r\n\r\n")
            for _ in range(self.frames):
                conn.sendall(b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(self.jpeg)
                             + self.jpeg + b"\r\n")


def socket_server():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.parametrize("frames", [0, 5])
def test_sigterm_stops_a_stalled_stream_promptly_with_exit_0(frames):
    """OpenCV's open and read block for 30 s on a stalled stream and Python handles the signal only
    after: systemd would SIGKILL. With --stream-timeout both return in time."""
    stream = StallingStream(frames)
    timeout = "1" if frames else "4"                      # an open that is still stalled when the signal comes
    p = subprocess.Popen(EDGE + ["--source", f"http://127.0.0.1:{stream.port}/video.mjpg", "--stream-timeout", timeout,
                                 "--retries", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    threading.Event().wait(3.0 if frames else 1.5)       # stalled in an open, or in a read after frames
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=10)                  # a guard: 30 s and more before
    assert p.returncode == 0 and "Traceback" not in err, err[-2000:]
    assert len(out.splitlines()) >= (1 if frames else 0)


def test_the_parent_keeps_nothing_per_file(tmp_path):
    """Rows stream out and folders are walked lazily: 20,000 files cost the parent what 10 do
    (it used to keep every row and every entry: ~0.5 KB a file, 500 MB for a million)."""
    peaks = {}
    for n_dirs in (1, 40):
        top = tmp_path / f"top{n_dirs}"
        for d in range(n_dirs):
            (top / f"d{d:02d}").mkdir(parents=True)
            for i in range(500 if n_dirs > 1 else 10):
                (top / f"d{d:02d}" / f"{i:04d}.png").write_bytes(b"not an image")
        r = subprocess.run([sys.executable, "-c", PEAK_RSS, "edge.classify", str(top), "-r", "--workers", "2", "--out",
                            str(tmp_path / f"rows{n_dirs}.csv")], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        assert (tmp_path / f"rows{n_dirs}.csv").read_text().count("\n") == 1 + (20_000 if n_dirs > 1 else 10)
        peaks[n_dirs] = peak_kb(r.stderr)
    assert peaks[40] - peaks[1] < 4_000, peaks        # under 200 bytes a file, all of it transient


def test_sigterm_on_a_folder_run_is_one_line_and_resumable(tmp_path, mnist):
    x, _ = mnist[1]
    for i in range(3000):
        cv2.imwrite(str(tmp_path / f"{i:05d}.png"), 255 - x[i])
    out = tmp_path / "rows.csv"
    p = subprocess.Popen(CLASSIFY + [str(tmp_path), "--out", str(out), "--workers", "2", "--single"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "rows.csv.partial"
    while not (partial.exists() and partial.read_text().count("\n") > 64) and p.poll() is None:
        threading.Event().wait(0.01)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and one_line_error(err) and "--resume" in err, err[-2000:]


def test_check_deploy_says_what_to_install_instead_of_installing(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "sh"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    r = subprocess.run(["make", "check-deploy"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert r.returncode != 0 and "install it" in r.stderr and "apt-get install" in r.stderr, r.stderr
    assert "Reading package lists" not in r.stdout + r.stderr
