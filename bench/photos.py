"""Real photos of paper: this reader beside Tesseract 5, scored the same way, on one core.

python -m bench.photos [--photos DIR] [--psm 3 4 6 11 12] [--sides 640 1280 1920] [--turns 3 6 10]
                       [--keystones 5 10] [--tables 25 50] [--table-noise SIGMA] [--out results.json]
                       [--examples DIR]
DIR holds images and a labels.json (default: $PHOTOS_DIR or ../shared/datasets/real-photos).
Both readers get the same decoded image (EXIF orientation applied); Tesseract runs with a digits
whitelist and one thread, once per page-segmentation mode, and the mode that reads the most
digits right is its row. Seconds per photo include decoding (ours) or Tesseract's own start-up.
Without the folder or without `tesseract` on PATH, says so and leaves that part out.
The reader also reads each photo scaled down to a camera frame's long side (--sides, default 640,
1280 and 1920 px: what `python -m edge --width 640` and up would get of the same page, less the
noise and blur a real low-resolution camera adds, so an upper bound; and once more through one
plausible camera: blurred, noisy and JPEG-compressed, see CAMERA_LOOK), and turned by plus and
minus 3, 6 and 10 degrees (--turns: a page photographed askew), and in perspective, its far edge
5 and 10 % shorter at each end (--keystones: a page photographed from below, and from its left),
and with more of the table around it in the same frame (--tables: 25 and 50 % of its width and
height added on every side, then scaled back to its size: the page photographed from further away;
--table-noise gives that table a camera's noise, default none: one flat colour).
--examples DIR writes the README's annotated pictures, made only from the MIT-licensed photos.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from edge.evaluation import photo_results
from edge.folder import Settings, classify
from edge.images import find_images, read_image
from edge.interpreter import DEFAULT_MODEL, read_manifest
from edge.preprocess import turned
from edge.score import PhotoResult, photo_table, read_photo_labels, totals

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PHOTOS = Path(os.environ.get("PHOTOS_DIR", ROOT.parent / "shared" / "datasets" / "real-photos"))
PSM_MODES = (3, 4, 6, 11, 12)
CAMERA_SIDES = (640, 1280, 1920)
TURNS = (3, 6, 10)          # each photo is also read turned by plus and minus these many degrees
KEYSTONES = (5, 10)         # and in perspective, its far edge this many % shorter at each end
TABLES = (25, 50)           # and from further away: this many % of its width and height more table on every side
CAMERA_LOOK = (0.7, 3.0, 70)  # a frame from a camera: blur sigma (px), noise sigma, JPEG quality (MJPEG)
# The only shared photos whose licence (MIT / MIT-0) lets a picture derived from them into the repository.
MIT_LICENSED = ("aws-samples_patient_intake_form_sample.jpg", "OliverLengwinat_kniffel_1_orig.jpg",
                "MarkUsProject_student_info_num.jpg", "RajdeepMondal_digits.jpg")


def ours(folder: Path, model: Path) -> list[PhotoResult]:
    """This toolkit's folder classifier, one worker (one core), as a user runs it."""
    labels, printed = read_photo_labels(folder / "labels.json")
    entries = [e for e in find_images([str(folder)]) if Path(e.path).name in labels]
    rows = classify(entries, Settings(str(model), read_manifest(model)), workers=1)
    return photo_results(rows, labels, printed)


def frame(image: np.ndarray, side: int) -> np.ndarray:
    """The photo as a frame `side` pixels on its long side shows it (INTER_AREA)."""
    scale = side / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image


def through_camera(image: np.ndarray, side: int, seed: int | None = None) -> np.ndarray:
    """The photo as a `side` px frame from a camera, not a perfect scaler: blurred by lens and
    demosaicing, with sensor noise (seeded: `side` unless `seed`) and JPEG-compressed as a USB
    camera's MJPEG is (CAMERA_LOOK). One plausible camera, not a measured one."""
    blur, noise, quality = CAMERA_LOOK
    seen = cv2.GaussianBlur(frame(image, side).astype(np.float32), (0, 0), blur)
    seen += np.random.default_rng(side if seed is None else seed).normal(0, noise, seen.shape).astype(np.float32)
    jpeg = cv2.imencode(".jpg", np.clip(np.rint(seen), 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED)


def edge_colour(image: np.ndarray) -> tuple[int, ...]:
    """The median colour of the photo's own edge (paper, or the table it lies on)."""
    edge = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return tuple(int(v) for v in np.median(edge.reshape(len(edge), -1), axis=0))


def turn(image: np.ndarray, degrees: float) -> np.ndarray:
    """The photo turned by `degrees` on a canvas that keeps all of it, the new corners filled with
    the colour of its edge."""
    return turned(image, degrees, edge_colour(image))[0]


def keystone(image: np.ndarray, percent: float, far: str = "top") -> np.ndarray:
    """The photo seen in perspective: its `far` edge ("top" or "left") shorter by `percent` % at each
    end when the photo spans its long side in that direction, by a proportionally smaller share when it
    spans less (the depth a camera sees across a short strip is small); the same canvas, what falls
    outside filled with the colour of its edge."""
    h, w = image.shape[:2]
    span = (h if far == "top" else w) / max(h, w)
    k = percent / 100 * span
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    if far == "top":
        seen = np.float32([[k * w, 0], [w - k * w, 0], [w, h], [0, h]])
    else:
        seen = np.float32([[0, k * h], [w, 0], [w, h], [0, h - k * h]])
    return cv2.warpPerspective(image, cv2.getPerspectiveTransform(corners, seen), (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=edge_colour(image))


def on_table(image: np.ndarray, percent: float, same_frame: bool = True, noise: float = 0.0) -> np.ndarray:
    """The photo with `percent` % of its width and of its height more table on every side, in the
    colour of its edge; scaled back to the photo's own size (`same_frame`): the same camera, further
    away, the page 1 / (1 + 2 percent / 100) as large each way. With `noise`, the added table has
    Gaussian noise of that many grey levels (seeded), as a camera sees a smooth desk; the photo's
    own part keeps the noise it has."""
    h, w = image.shape[:2]
    dy, dx = round(percent / 100 * h), round(percent / 100 * w)
    wider = cv2.copyMakeBorder(image, dy, dy, dx, dx, cv2.BORDER_CONSTANT, value=edge_colour(image))
    if same_frame:
        wider = cv2.resize(wider, (w, h), interpolation=cv2.INTER_AREA)
    if not noise:
        return wider
    H, W = wider.shape[:2]
    f = W / (w + 2 * dx)
    grain = np.random.default_rng(0).normal(0, noise, (H, W)).astype(np.float32)
    grain[round(dy * f):round((dy + h) * f), round(dx * f):round((dx + w) * f)] = 0
    if wider.ndim == 3:
        grain = grain[..., None]
    return np.clip(np.rint(wider + grain), 0, 255).astype(np.uint8)


def views(folder: Path, out: Path, makers: dict[str, Callable[[np.ndarray], np.ndarray]]) -> dict[str, Path]:
    """The labelled photos as each of `makers` shows them (PNG), with their labels, one folder per
    maker in `out`; each photo is decoded once."""
    labels, printed = read_photo_labels(folder / "labels.json")
    png = {name: f"{Path(name).stem}.png" for name in labels}
    folders = {key: out / key for key in makers}
    for path in folders.values():
        path.mkdir()
        (path / "labels.json").write_text(json.dumps({png[n]: text for n, text in labels.items()}))
        (path / "printed.json").write_text(json.dumps([png[n] for n in sorted(printed)]))
    for name, new in png.items():
        image = read_image(str(folder / name))
        for key, make in makers.items():
            cv2.imwrite(str(folders[key] / new), make(image))
    return folders


def framed(folder: Path, sides: tuple[int, ...], out: Path) -> dict[int, Path]:
    """The photos scaled to camera frames, one folder per long side."""
    made = views(folder, out, {f"side{side}": partial(frame, side=side) for side in sides})
    return {side: made[f"side{side}"] for side in sides}


def tesseract(folder: Path, psm: int) -> list[PhotoResult]:
    labels, printed = read_photo_labels(folder / "labels.json")
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(labels):
            png = Path(tmp) / "page.png"
            cv2.imwrite(str(png), read_image(str(folder / name), reduce=False))
            start = time.perf_counter()
            r = subprocess.run(["tesseract", str(png), "stdout", "--psm", str(psm),
                                "-c", "tessedit_char_whitelist=0123456789"],
                               capture_output=True, text=True, env=env, check=False)
            seconds = time.perf_counter() - start
            text = r.stdout if r.returncode == 0 else ""
            reading = "\n".join(line.strip() for line in text.splitlines() if line.strip())
            out.append(PhotoResult(name, labels[name], reading, seconds, name in printed))
    return out


def examples(folder: Path, model: Path, out: Path, long_side: int = 900) -> list[Path]:
    """Annotated pictures of the MIT-licensed photos (JPEG, ~100-200 KB each) for the README."""
    from edge.draw import annotate
    from edge.reading import Reading
    settings = Settings(str(model), read_manifest(model), keep_crops=True)
    entries = [e for e in find_images([str(folder)]) if Path(e.path).name in MIT_LICENSED]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for row in classify(entries, settings, workers=1):
        picture = annotate(read_image(row.path), row.read or Reading("", ()), settings.min_confidence,
                           long_side, confidences=False)
        path = out / f"{Path(row.path).stem}.read.jpg"
        path.write_bytes(cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes())
        written.append(path)
    return written


def run(folder: Path, model: Path, modes: tuple[int, ...], sides: tuple[int, ...] = CAMERA_SIDES,
        turns: tuple[int, ...] = TURNS, keystones: tuple[int, ...] = KEYSTONES,
        tables: tuple[int, ...] = TABLES, table_noise: float = 0.0) -> dict | None:
    if not (folder / "labels.json").is_file():
        print(f"bench.photos: no labelled photos at {folder} (set PHOTOS_DIR); skipped", file=sys.stderr)
        return None
    mine = ours(folder, model)
    result = {"folder": str(folder), "reader": {"totals": totals(mine), "table": photo_table(mine)},
              "frames": {}, "camera": {}, "turned": {}, "keystone": {}, "table": {}, "table_noise": table_noise}
    with tempfile.TemporaryDirectory() as tmp:
        for side, path in framed(folder, sides, Path(tmp)).items():
            at_side = ours(path, model)
            result["frames"][str(side)] = {"totals": totals(at_side), "table": photo_table(at_side)}
        makers = {f"camera{side}": partial(through_camera, side=side) for side in sides}
        makers |= {f"turn{sign}{a}": partial(turn, degrees=int(f"{sign}{a}")) for a in turns for sign in "+-"}
        makers |= {f"keystone-{far}{k}": partial(keystone, percent=k, far=far) for k in keystones for far in ("top", "left")}
        makers |= {f"table{t}": partial(on_table, percent=t, noise=table_noise) for t in tables}
        made = views(folder, Path(tmp), makers)
        for side in sides:
            seen = ours(made[f"camera{side}"], model)
            result["camera"][str(side)] = {"totals": totals(seen), "table": photo_table(seen)}
        for a in turns:
            both = ours(made[f"turn+{a}"], model) + ours(made[f"turn-{a}"], model)
            result["turned"][str(a)] = {"totals": totals(both), "table": photo_table(both)}
        for k in keystones:
            both = ours(made[f"keystone-top{k}"], model) + ours(made[f"keystone-left{k}"], model)
            result["keystone"][str(k)] = {"totals": totals(both), "table": photo_table(both)}
        for t in tables:
            further = ours(made[f"table{t}"], model)
            result["table"][str(t)] = {"totals": totals(further), "table": photo_table(further)}
    if shutil.which("tesseract") is None:
        print("bench.photos: tesseract not installed (apt-get install tesseract-ocr); comparison skipped",
              file=sys.stderr)
        return result
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    by_mode = {psm: tesseract(folder, psm) for psm in modes}
    summary = {psm: totals(r) for psm, r in by_mode.items()}
    best = max(summary, key=lambda psm: (summary[psm]["right"], -summary[psm]["clean_extra"]))
    result["tesseract"] = {"version": version.strip(), "best_psm": best,
                           "by_psm": {str(psm): t for psm, t in summary.items()},
                           "totals": summary[best], "table": photo_table(by_mode[best])}
    return result


def markdown(r: dict) -> str:
    lines = ["| real photos, 1 core | digits right | extras (no print) | CER (no print) | s/photo mean | max |",
             "| --- | --- | --- | --- | --- | --- |"]
    rows = [("this reader", r["reader"]["totals"])]
    rows += [(f"this reader, photo scaled to a {side} px frame", frame["totals"])
             for side, frame in r.get("frames", {}).items()]
    blur, noise, quality = CAMERA_LOOK
    rows += [(f"this reader, photo as a {side} px camera frame (blur {blur} px, noise {noise:g}, JPEG {quality})", t["totals"])
             for side, t in r.get("camera", {}).items()]
    rows += [(f"this reader, photo turned by +{a} and -{a} degrees", t["totals"])
             for a, t in r.get("turned", {}).items()]
    rows += [(f"this reader, photo in perspective, far edge {k} % shorter at each end (from below; from the left)", t["totals"])
             for k, t in r.get("keystone", {}).items()]
    grain = f" (noise {r['table_noise']:g})" if r.get("table_noise") else ""
    rows += [(f"this reader, photo with {p} % of its width and height more table{grain} around it, same frame", t["totals"])
             for p, t in r.get("table", {}).items()]
    if "tesseract" in r:
        t = r["tesseract"]
        rows.append((f"{t['version']}, --psm {t['best_psm']}, digits whitelist", t["totals"]))
    for name, t in rows:
        lines.append(f"| {name} | {t['right']}/{t['digits']} ({t['right_rate']:.1%}) | {t['clean_extra']}/"
                     f"{t['clean_digits']} ({t['clean_extra_rate']:.1%}; {t['clean_misread']} misread) | "
                     f"{t['clean_cer']:.1%} | {t['mean_seconds']:.2f} | {t['max_seconds']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.photos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder with images and labels.json")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--psm", type=int, nargs="+", default=list(PSM_MODES), help="Tesseract modes to try")
    p.add_argument("--sides", type=int, nargs="*", default=list(CAMERA_SIDES),
                   help="also read the photos scaled to these long sides (camera frames)")
    p.add_argument("--turns", type=int, nargs="*", default=list(TURNS),
                   help="also read the photos turned by plus and minus these many degrees")
    p.add_argument("--keystones", type=int, nargs="*", default=list(KEYSTONES),
                   help="also read the photos in perspective, the far edge this many %% shorter at each end")
    p.add_argument("--tables", type=int, nargs="*", default=list(TABLES),
                   help="also read the photos with this many %% of their width and height more table on every side")
    p.add_argument("--table-noise", type=float, default=0.0, metavar="SIGMA",
                   help="give that table Gaussian noise of SIGMA grey levels (default 0: one flat colour)")
    p.add_argument("--out", type=Path, help="write the figures here as JSON")
    p.add_argument("--examples", type=Path, metavar="DIR",
                   help="write annotated pictures of the MIT-licensed photos here (the README's)")
    args = p.parse_args(argv)
    if args.examples:
        if not (args.photos / "labels.json").is_file():
            print(f"bench.photos: no labelled photos at {args.photos}", file=sys.stderr)
            return 1
        for path in examples(args.photos, args.model, args.examples):
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")
        return 0
    if not all(0 <= k < 50 for k in args.keystones):
        p.error("--keystones must lie in 0..49 (per cent at each end)")
    if not all(0 <= t <= 200 for t in args.tables):
        p.error("--tables must lie in 0..200 (per cent of the width and height)")
    if not 0 <= args.table_noise <= 50:
        p.error("--table-noise must lie in 0..50 (grey levels)")
    r = run(args.photos, args.model, tuple(args.psm), tuple(args.sides), tuple(args.turns), tuple(args.keystones),
            tuple(args.tables), args.table_noise)
    if r is None:
        return 0
    print(markdown(r))
    print("\nthis reader, per photo:\n" + r["reader"]["table"])
    for side, f in r["frames"].items():
        print(f"\nthis reader, photos scaled to a {side} px frame:\n" + f["table"])
    for side, t in r["camera"].items():
        print(f"\nthis reader, photos as a {side} px camera frame (blurred, noisy, JPEG):\n" + t["table"])
    for a, t in r["turned"].items():
        print(f"\nthis reader, photos turned by +{a} then -{a} degrees:\n" + t["table"])
    for k, t in r["keystone"].items():
        print(f"\nthis reader, photos in perspective, far edge {k} % shorter, from below then from the left:\n" + t["table"])
    for p, t in r["table"].items():
        print(f"\nthis reader, photos with {p} % of their width and height more table around them:\n" + t["table"])
    if "tesseract" in r:
        print(f"\nTesseract (--psm {r['tesseract']['best_psm']}), per photo:\n" + r["tesseract"]["table"])
    if args.out:
        args.out.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
