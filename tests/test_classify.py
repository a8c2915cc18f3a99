"""Folder classification: every hazard a real folder holds, labelled accuracy, workers, output files."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from edge.folder import Settings, classify
from edge.images import find_images, read_image
from edge.interpreter import read_manifest
from synthetic.frames import one_digit_image

from conftest import ROOT

CLASSIFY = [sys.executable, "-m", "edge.classify"]


def _digit_on_paper(digit: np.ndarray, size: int) -> np.ndarray:
    """An MNIST digit as dark ink on white paper, `size` pixels square."""
    return 255 - cv2.resize(digit, (size, size), interpolation=cv2.INTER_AREA)


def build_hazards(root: Path, mnist_test) -> dict[str, tuple[str, str]]:
    """Write every hazard and every valid-but-unusual image; return {name: (status, reason or label)}."""
    (x, y) = mnist_test
    seven = int(np.flatnonzero(y == 7)[0])
    three = int(np.flatnonzero(y == 3)[0])
    four = int(np.flatnonzero(y == 4)[0])
    paper7 = _digit_on_paper(x[seven], 112)
    expected: dict[str, tuple[str, str]] = {}
    ok_png = cv2.imencode(".png", paper7)[1].tobytes()
    ok_jpg = cv2.imencode(".jpg", paper7)[1].tobytes()

    (root / "zero.png").write_bytes(b"")
    expected["zero.png"] = ("error", "empty file")
    (root / "truncated.jpg").write_bytes(ok_jpg[: len(ok_jpg) // 2])
    expected["truncated.jpg"] = ("error", "truncated jpeg")
    (root / "truncated.png").write_bytes(ok_png[: len(ok_png) // 2])
    expected["truncated.png"] = ("error", "truncated png")
    (root / "random.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    expected["random.jpg"] = ("error", "not an image (unknown format)")
    (root / "notes.png").write_text("this is a text file, not a picture\n")
    expected["notes.png"] = ("error", "not an image (unknown format)")
    bomb = bytearray(ok_png)
    bomb[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")   # IHDR claims 100000x100000
    (root / "bomb.png").write_bytes(bytes(bomb))
    expected["bomb.png"] = ("error", "too large: 100000x100000 exceeds 100000000 pixels")
    (root / "locked.png").write_bytes(ok_png)
    os.chmod(root / "locked.png", 0)
    expected["locked.png"] = ("error", "permission denied")
    os.symlink(root / "gone.png", root / "broken.png")
    expected["broken.png"] = ("error", "broken symlink")
    os.symlink(root / "loop.png", root / "loop.png")
    expected["loop.png"] = ("error", "symlink loop")
    (root / "folder.png").mkdir()
    expected["folder.png"] = ("error", "is a directory")
    (root / "blank.png").write_bytes(cv2.imencode(".png", np.full((64, 64), 255, np.uint8))[1].tobytes())
    expected["blank.png"] = ("error", "no digit found")

    # Valid but unusual: each must read as its digit.
    cv2.imwrite(str(root / "sixteen_bit.png"), paper7.astype(np.uint16) * 257)
    expected["sixteen_bit.png"] = ("ok", "7")
    rgba = np.zeros((112, 112, 4), np.uint8)
    rgba[..., 3] = 255 - paper7                   # ink opaque black, paper fully transparent
    cv2.imwrite(str(root / "rgba.png"), rgba)
    expected["rgba.png"] = ("ok", "7")
    Image.fromarray(paper7).convert("P").save(root / "palette.png")
    expected["palette.png"] = ("ok", "7")
    cv2.imwrite(str(root / "gray.jpg"), paper7)
    expected["gray.jpg"] = ("ok", "7")
    Image.fromarray(paper7).convert("CMYK").save(root / "cmyk.jpg")
    expected["cmyk.jpg"] = ("ok", "7")
    # Stored rotated 90° clockwise, with EXIF orientation 6 ("rotate 90° CW to display"): upright is a 7.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(paper7, k=1).copy()).save(root / "exif_rotated.jpg", exif=exif.tobytes())
    expected["exif_rotated.jpg"] = ("ok", "7")
    cv2.imencode(".png", _digit_on_paper(x[three], 60))[1].tofile(str(root / "ünïcödé digit 3.png"))
    expected["ünïcödé digit 3.png"] = ("ok", "3")
    cv2.imwrite(str(root / "tiny.png"), x[four][2:26:3, 2:26:3])   # 8x8, white on black
    expected["tiny.png"] = ("ok", "4")
    big = np.full((3000, 4000), 235, np.uint8)
    big[1000:2200, 1400:2600] = _digit_on_paper(x[three], 1200)
    cv2.imwrite(str(root / "large.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    expected["large.jpg"] = ("ok", "3")
    return expected


def _snapshot(root: Path) -> dict[str, tuple]:
    state = {}
    for p in sorted(root.rglob("*")):
        st = os.lstat(p)
        data = b""
        if p.is_file() and not p.is_symlink() and st.st_mode & 0o444:
            data = hashlib.sha256(p.read_bytes()).digest()
        state[str(p)] = (st.st_mode, st.st_size, st.st_mtime_ns, data)
    return state


@pytest.fixture
def hazards(mnist, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    expected = build_hazards(root, mnist[1])
    yield root, expected
    os.chmod(root / "locked.png", 0o644)


def _run_without_root_privileges(cmd):
    """root reads a 0000 file anyway; drop the capabilities that let it, so 'permission denied' is real."""
    if os.geteuid() == 0:
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *cmd]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_every_hazard_gets_a_row_and_nothing_is_modified(hazards, published_model):
    root, expected = hazards
    before = _snapshot(root)
    r = _run_without_root_privileges(CLASSIFY + [str(root), "--format", "jsonl", "--model", str(published_model),
                                                  "--workers", "2"])
    assert r.returncode == 3, r.stderr[-3000:]
    rows = {Path(rec["path"]).name: rec for rec in map(json.loads, r.stdout.splitlines())}
    assert set(rows) == set(expected), set(rows) ^ set(expected)
    for name, (status, what) in expected.items():
        row = rows[name]
        assert row["status"] == status, (name, row)
        if status == "error":
            assert row["error"] == what, (name, row)
        else:
            assert row["reading"] == what, (name, row)
    assert _snapshot(root) == before
    assert "summary: 20 files seen, 9 classified, 11 failed" in r.stderr


def test_decoders_keep_what_matters(hazards):
    root, _ = hazards
    assert read_image(str(root / "sixteen_bit.png")).dtype == np.uint16
    rgba = read_image(str(root / "rgba.png"))
    assert rgba.shape[2] == 3 and rgba[0, 0].tolist() == [255, 255, 255]   # transparent became white paper
    assert read_image(str(root / "large.jpg")).shape[:2] == (1500, 2000)    # decoded at 1/2 (long side >= 1400), not 12 MP
    assert read_image(str(root / "exif_rotated.jpg")).shape[:2] == (112, 112)


def test_symlinked_folders_are_not_followed_unless_asked_and_never_twice(tmp_path):
    (tmp_path / "a").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "x.png"), np.zeros((8, 8), np.uint8))
    os.symlink(tmp_path, tmp_path / "a" / "back")      # a loop back to the top
    os.symlink(tmp_path / "a", tmp_path / "alias")
    plain = [e.path for e in find_images([str(tmp_path)], recursive=True)]
    assert plain == [str(tmp_path / "a" / "x.png")]
    followed = [e.path for e in find_images([str(tmp_path)], recursive=True, follow_links=True)]
    assert followed == [str(tmp_path / "a" / "x.png")]   # the same folder is never entered twice


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory, mnist):
    """1,000 real MNIST test digits in digits/<label>/, both polarities, 28 to 400 px."""
    root = tmp_path_factory.mktemp("labelled") / "digits"
    (x, y) = mnist[1]
    for i in range(1000):
        img, _ = one_digit_image(x[i], i)
        (root / str(y[i])).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / str(y[i]) / f"{i:05d}.png"), img)
    return root


def test_labelled_folder_accuracy_and_report(labelled_folder, published_model, tmp_path):
    out = tmp_path / "results.csv"
    out.write_text("previous results\n")
    r = subprocess.run(CLASSIFY + [str(labelled_folder), "--recursive", "--labels-from-dirs", "--model",
                                   str(published_model), "--out", str(out), "--report", str(tmp_path / "report")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    # The reader drops what its model reads as "not a digit": a digit broken into pieces that each
    # read so (one MNIST 5 here) is "no digit found", a failed row (exit 3), never a wrong digit.
    failed = [row for row in rows if row["status"] != "ok"]
    assert r.returncode == (3 if failed else 0), r.stderr[-3000:]
    assert len(rows) == 1000 and len(failed) <= 2 and all(row["error"] == "no digit found" for row in failed)
    assert list(rows[0]) == ["path", "reading", "confidence", "digits", "status", "error", "label", "correct"]
    accuracy = sum(row["correct"] == "True" for row in rows) / len(rows)
    print(f"labelled folder accuracy: {accuracy:.2%}")   # shown with pytest -s; quoted in the README
    assert accuracy >= 0.985, accuracy
    assert f"accuracy: {accuracy:.2%}" in r.stderr and "per class:" in r.stderr and "confusion" in r.stderr
    for name in ("confusion_matrix.png", "contact_sheet.png"):
        assert cv2.imread(str(tmp_path / "report" / name)) is not None
    assert [row["path"] for row in rows] == sorted(row["path"] for row in rows)


def test_workers_give_the_same_rows(labelled_folder, published_model):
    entries = find_images([str(labelled_folder)], recursive=True)[:300]
    settings = Settings(str(published_model), read_manifest(published_model))
    one = classify(entries, settings, workers=1)
    two = classify(entries, settings, workers=2)
    assert [(r.path, r.reading, r.confidence, r.status) for r in one] == \
           [(r.path, r.reading, r.confidence, r.status) for r in two]


def test_labels_csv_and_exit_codes(tmp_path, mnist, published_model):
    (x, y) = mnist[1]
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"d{i}.png"), x[i])
    (tmp_path / "labels.csv").write_text("path,label\n" + "".join(f"d{i}.png,{y[i]}\n" for i in range(3)))
    r = subprocess.run(CLASSIFY + [str(tmp_path / "*.png"), "--labels", str(tmp_path / "labels.csv"), "--model",
                                   str(published_model), "--workers", "1"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "accuracy: 100.00% (3/3 labelled images)" in r.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"")
    r = subprocess.run(CLASSIFY + [str(tmp_path / "bad"), "--model", str(published_model)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "x.png,,,0,error,empty file" in r.stdout
    r = subprocess.run(CLASSIFY + ["--workers", "0", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2


def test_workers_stop_even_when_the_parent_handles_sigterm(labelled_folder, published_model):
    # The camera loop installs a SIGTERM handler; workers forked from such a process must still die
    # when the pool terminates them (they used to inherit the handler and hang the run).
    import signal
    from edge.run import StopFlag
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    StopFlag().install()
    try:
        settings = Settings(str(published_model), read_manifest(published_model))
        entries = find_images([str(labelled_folder)], recursive=True)[:200]
        rows = classify(entries, settings, workers=2)      # hung under tflite-runtime before the fix
        assert len(rows) == 200 and all(r.status == "ok" for r in rows)
        from edge.folder import _init_pool_worker
        _init_pool_worker(settings)                          # what each forked worker runs first
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
