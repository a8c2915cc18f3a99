"""make test-aarch64: the published int8 model and the folder classifier, run as an aarch64
program (Debian bookworm's Python 3.11 under qemu user-mode, QEMU_CPU=cortex-a72 as on a Pi 4),
give exactly the answers they give on x86, on a few hundred real MNIST test digits and on
generated pages, level and tilted (the levelling turn included).

Not collected by `make test` (its name is not test_*.py); `make test-aarch64` runs it with
AARCH64_CACHE pointing at the userland tests/aarch64/setup.sh built. Emulated timings are not Pi
timings and none are measured here.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT

CACHE = Path(os.environ.get("AARCH64_CACHE", ""))
N = 300

PREDICT = """
import sys
import numpy as np
from edge.interpreter import DigitModel
digits = np.load(sys.argv[1])
model = DigitModel(sys.argv[2])
np.save(sys.argv[3], model.predict(digits))
print(model.backend)
"""


def run_aarch64(args: list[str]) -> subprocess.CompletedProcess:
    # qemu's default CPU ("max", with SVE/SME) gives wrong int8 results: always name a Pi's core.
    env = {**os.environ, "QEMU_CPU": "cortex-a72", "PYTHONPATH": f"{CACHE / 'site'}:{ROOT}", "PYTHONNOUSERSITE": "1"}
    cmd = ["qemu-aarch64-static", "-L", str(CACHE / "root"), str(CACHE / "root" / "usr/bin/python3.11"), *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1200)


def run_x86(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module", autouse=True)
def userland():
    if not (CACHE / ".ready-v1").is_file():
        pytest.fail("AARCH64_CACHE does not hold a userland built by tests/aarch64/setup.sh (run make test-aarch64)")


def test_the_program_really_runs_as_aarch64():
    r = run_aarch64(["-c", "import platform, numpy, cv2; print(platform.machine(), numpy.__version__, cv2.__version__)"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[0] == "aarch64"


def test_int8_model_outputs_are_identical(mnist, published_model, tmp_path):
    digits = mnist[1][0][:N]
    np.save(tmp_path / "digits.npy", digits)
    outs = {}
    for name, runner in (("x86", run_x86), ("aarch64", run_aarch64)):
        r = runner(["-c", PREDICT, str(tmp_path / "digits.npy"), str(published_model), str(tmp_path / f"{name}.npy")])
        assert r.returncode == 0, (name, r.stderr[-2000:])
        assert r.stdout.strip().splitlines()[-1] == "ai_edge_litert"
        outs[name] = np.load(tmp_path / f"{name}.npy")
    assert np.array_equal(outs["x86"], outs["aarch64"])
    assert (outs["aarch64"].argmax(1) == mnist[1][1][:N]).mean() > 0.98


def test_folder_classifier_rows_are_identical(mnist, published_model, tmp_path):
    (x, y) = mnist[1]
    sizes = (28, 100, 400)
    for i in range(N):
        img = x[i] if sizes[i % 3] == 28 else cv2.resize(x[i], (sizes[i % 3],) * 2, interpolation=cv2.INTER_AREA)
        (tmp_path / "digits" / str(y[i])).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "digits" / str(y[i]) / f"{i:04d}.png"), 255 - img if i % 2 else img)
    args = ["-m", "edge.classify", str(tmp_path / "digits"), "-r", "--workers", "1", "--format", "jsonl",
            "--labels-from-dirs", "--model", str(published_model)]
    x86, arm = run_x86(args), run_aarch64(args)
    assert x86.returncode == 0 and arm.returncode == 0, (x86.stderr[-1500:], arm.stderr[-1500:])
    assert len(arm.stdout.splitlines()) == N
    assert arm.stdout == x86.stdout        # every reading and every confidence, byte for byte


def test_pages_level_and_tilted_read_identically(mnist, published_model, tmp_path):
    from synthetic.pages import page
    (x, _) = mnist[1]
    rng = np.random.default_rng(7)
    for k, (paper, tilt) in enumerate((("ruled", 0.0), ("plain", 8.0), ("squared", -6.0), ("boxed", 10.0))):
        idx = rng.choice(len(x), 12, replace=False)
        cv2.imwrite(str(tmp_path / f"page{k}.png"), page([x[i] for i in idx], rng, paper=paper, rows=2, tilt=tilt))
    args = ["-m", "edge.classify", str(tmp_path), "--workers", "1", "--format", "jsonl", "--model", str(published_model)]
    x86, arm = run_x86(args), run_aarch64(args)
    assert x86.returncode == 0 and arm.returncode == 0, (x86.stderr[-1500:], arm.stderr[-1500:])
    assert len(arm.stdout.splitlines()) == 4 and '"digits": 0' not in arm.stdout
    assert arm.stdout == x86.stdout        # the levelling turn and every resize give the same bytes
