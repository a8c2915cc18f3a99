"""`make bench QUICK=1` runs end to end and writes every figure it promises (structure, never timing)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT


def test_quick_benchmark_writes_results(tmp_path, mnist_dir):
    out = tmp_path / "results.json"
    r = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out), "--data-dir", str(mnist_dir)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["quick"] is True and res["machine"]["cores"] >= 1 and "ai_edge_litert" in res["machine"]["versions"]
    inference = res["inference"]
    assert "keras_predict_batch1" in inference
    for mode in ("float32", "float16", "dynamic", "int8"):
        for key in (f"{mode}_batch1_threads1", f"{mode}_batch256_threads1"):
            assert inference[key]["runs"] == 2 and "speedup_vs_keras_predict" in inference[key]   # quick: 2 runs
    for arch in ("seed", "edge"):
        t = res["training"][arch]
        assert t["macs"] > 0 and t["int8_mac_per_second"] > 0 and t["seconds_per_epoch"]["median"] > 0
    assert res["training"]["seed"]["params"] == 59933
    for case in ("1_digit", "4_digit"):
        c = res["camera"][case]
        assert set(c) >= {"preprocess", "inference", "total", "fps", "digit_accuracy"}
        assert c["digit_accuracy"] >= 0.9, c       # the frames the speed is measured on are read, too
    assert {k.rsplit("_workers", 1)[0] for k in res["folder"]} == {"small_png_28px", "jpeg_12mp"}
    assert [v["viewers"] for v in res["live"]["viewers"]] == [0, 1, 5]
    soak = res["live"]["soak"]
    assert soak["frames"] == 6_000 and soak["growth_mb"] <= 0.25, soak     # the old list per frame: +0.55 MB
    assert res["sizes"]["digit_int8.tflite"] < res["sizes"]["digit_float32.tflite"]
    assert 10 < res["memory"]["edge_runtime_peak_rss_mb"] < 1000
    photos = res["photos"]
    if photos is not None:          # the labelled real photos are beside the repository (CI: ../shared)
        reader = photos["reader"]["totals"]
        assert reader["images"] > 0 and 0 < reader["right"] <= reader["digits"]
        frames = photos["frames"]           # the same photos scaled to camera frames, scored alike
        assert set(frames) == {"640", "1280", "1920"}
        assert all(0 < f["totals"]["right"] <= f["totals"]["digits"] == reader["digits"] for f in frames.values())
        if shutil.which("tesseract"):
            assert photos["tesseract"]["best_psm"] == 11 and photos["tesseract"]["totals"]["digits"] == reader["digits"]
    table = out.with_suffix(".md").read_text()
    assert "| keras_predict_batch1 |" in table and "Peak RSS" in table and table in r.stdout


def test_nearest_mnist_digits_carry_their_label(mnist):
    """The probe bench.neighbours puts misreads to: on MNIST's own test digits it reads most right."""
    from bench.neighbours import nearest_labels
    (x_train, y_train), (x_test, y_test) = mnist
    near = nearest_labels(x_test[:300], x_train[:20_000], y_train[:20_000], k=1)
    assert near.shape == (300, 1) and (near[:, 0] == y_test[:300]).mean() >= 0.93


def test_neighbours_of_misreads_on_real_photos(mnist_dir):
    from bench.photos import DEFAULT_PHOTOS
    if not (DEFAULT_PHOTOS / "labels.json").is_file():
        pytest.skip(f"no labelled real photos at {DEFAULT_PHOTOS}")
    r = subprocess.run([sys.executable, "-m", "bench.neighbours", "--photos", str(DEFAULT_PHOTOS), "-k", "3"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    head, *lines = r.stdout.splitlines()
    paired, right = map(int, re.match(r"(\d+) paired digits: the model reads (\d+) right", head).groups())
    misreads = [m for m in lines if "nearest MNIST digits" in m]
    on_page = [m for m in lines if "nearest on its page" in m]
    assert paired >= 200 and len(misreads) == len(on_page) == paired - right
    assert len(misreads) + len(on_page) == len(lines)
    assert all(re.search(r": true \d, read [0-9?] \(p [01]\.\d{3}\); nearest MNIST digits \d \d \d ", m) for m in misreads)
    assert all(re.search(r"model's features: true \d \d \d, read \d \d \d$", m) for m in on_page)


def test_digits_8_px_tall_are_read_and_smaller_ones_are_specks(mnist, published_model):
    """A form in a 640 px camera frame has digits 6-8 px tall: from 8 px (MIN_DIGIT_PX) they are
    read, below it they are dropped as specks and make no extras."""
    from bench.heights import run
    from edge.interpreter import DigitModel
    _, (x, y) = mnist
    r = run(DigitModel(published_model, quiet=True), x, y, heights=(7, 8), n=200)
    assert r["7"]["digits"] == r["8"]["digits"] == 200
    assert r["7"]["right"] == 0 and r["7"]["extra"] == 0, r
    assert r["8"]["right_rate"] >= 0.95 and r["8"]["extra"] <= 6, r


def test_heights_cli_reads_below_the_floor_when_asked(mnist_dir):
    r = subprocess.run([sys.executable, "-m", "bench.heights", "--floor", "5", "--heights", "7", "--digits", "100"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    right, digits = map(int, re.search(r"\| 7 px \| (\d+)/(\d+) ", r.stdout).groups())
    assert digits == 100 and right >= 85, r.stdout


def test_polarity_windows_decide_one_digit_images_and_frames(mnist_dir, tmp_path):
    """The reader's windows get no one-digit image or camera frame of either polarity wrong; a
    narrow window alone (no wider than a big digit's strokes) gets one-digit images wrong."""
    r = subprocess.run([sys.executable, "-m", "bench.polarity", "--photos", str(tmp_path), "--windows", "2", "16", "64"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in r.stdout.splitlines()[1:]}
    assert rows["2 16 64"] == ["0", "0  <- edge.paper.SKEW_WINDOWS"], r.stdout
    assert int(rows["16"][0]) > 0 and int(rows["64"][0]) > 0, r.stdout
    assert rows["the reader (edge.paper.dark_ink)"] == ["0", "0"], r.stdout


def test_more_table_keeps_the_photo_and_gives_only_the_table_noise():
    """bench.photos' further-away view: the page shrinks to 1 / (1 + 2 p) each way in the middle of
    the frame, the added table is the photo's edge colour, and --table-noise changes the table only."""
    from bench.photos import on_table
    rng = np.random.default_rng(0)
    photo = rng.integers(100, 200, (90, 120, 3)).astype(np.uint8)
    photo[0], photo[-1], photo[:, 0], photo[:, -1] = 230, 230, 230, 230
    flat, noisy = on_table(photo, 50), on_table(photo, 50, noise=2.0)
    assert flat.shape == noisy.shape == photo.shape
    assert (flat[:20] == 230).all() and (flat[:, :30] == 230).all()       # a quarter each way is table
    page = (slice(23, 67), slice(31, 89))                                  # inside the photo's part
    assert np.array_equal(flat[page], noisy[page])
    table = noisy[:20].astype(float)
    assert 1.5 < table.std() < 2.5 and abs(table.mean() - 230) < 0.5
