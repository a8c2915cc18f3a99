"""python -m edge: read handwritten digits from a camera, video, stream, image or folder.

Exit codes: 0 done (end of video/images, --max-frames, SIGINT/SIGTERM); 1 model or source error;
2 usage error; 4 the camera was lost (reads kept failing after every reopen), so systemd can restart.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import health
from .interpreter import BACKENDS, DEFAULT_MODEL, DigitModel, ModelError
from .run import EXIT_CAMERA_LOST, EXIT_ERROR, EXIT_OK, RunOptions, StopFlag, Summary, run
from .sources import CameraLost, ResilientSource, SourceError, open_source

log = logging.getLogger("edge")


def _roi(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected x,y,w,h as four integers") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError("x,y must be >= 0 and w,h > 0")
    return x, y, w, h


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="auto",
                   help="auto (picamera2 if present, else camera 0), picamera, a camera index, a video file, "
                        "an rtsp/http URL, an image file or a folder of images (default: auto)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the .tflite model (manifest .json beside it)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="run a model whose sha256 does not match its manifest (warns)")
    p.add_argument("--backend", choices=BACKENDS, help="force an interpreter backend (default: first available)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default: 1)")
    p.add_argument("--single", action="store_true", help="the whole image (or ROI) is one digit")
    p.add_argument("--min-confidence", type=float, default=0.5, help="below this a digit reads as '?' (default: 0.5)")
    p.add_argument("--json", action="store_true", help="one JSON object per frame instead of a text line")
    p.add_argument("--on-change", type=int, nargs="?", const=5, default=0, metavar="N",
                   help="print only when a reading has been stable for N frames (default N: 5) and changed")
    p.add_argument("--width", type=int, default=640, help="camera frame width (default: 640)")
    p.add_argument("--height", type=int, default=480, help="camera frame height (default: 480)")
    p.add_argument("--fps", type=float, default=0.0, help="cap on processed frames per second (default: none)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="process every Nth frame (default: 1)")
    p.add_argument("--roi", type=_roi, help="x,y,w,h: only look at this part of the frame")
    p.add_argument("--max-frames", type=int, default=0, metavar="N", help="stop after N processed frames")
    p.add_argument("--debug-dir", type=Path, help="write each frame's 28x28 digit crops here")
    p.add_argument("--save-annotated", type=Path, metavar="DIR", help="write frames with boxes and digits here")
    p.add_argument("--show", action="store_true", help="draw boxes and digits in a window (needs a display)")
    p.add_argument("--retries", type=int, default=5, help="failed reads before reopening the camera (default: 5)")
    p.add_argument("--reopens", type=int, default=5, help="reopen attempts before giving up with exit 4 (default: 5)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.every < 1 or args.threads < 1 or args.max_frames < 0 or args.on_change < 0:
        p.error("--every and --threads must be >= 1; --max-frames and --on-change >= 0")
    if not 0 <= args.min_confidence <= 1:
        p.error("--min-confidence must be between 0 and 1")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    opts = RunOptions(single=args.single, min_confidence=args.min_confidence, json=args.json,
                      on_change=args.on_change, every=args.every, fps=args.fps, roi=args.roi,
                      max_frames=args.max_frames, debug_dir=args.debug_dir,
                      save_annotated=args.save_annotated, show=args.show)
    stop = StopFlag()
    stop.install()
    try:
        model = DigitModel(args.model, threads=args.threads, backend=args.backend,
                           allow_mismatch=args.allow_mismatch)
        size = (args.width, args.height)
        source = ResilientSource(lambda: open_source(args.source, size), retries=args.retries,
                                 max_reopens=args.reopens)
    except (ModelError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    log.info("device: %s", health.describe())
    code = EXIT_OK
    summary = Summary()
    try:
        run(source, model, opts, stop=stop, summary=summary)
    except CameraLost as e:
        print(f"error: camera lost: {e}", file=sys.stderr)
        code = EXIT_CAMERA_LOST
    finally:
        source.close()
    print(f"{summary.text()}; {health.describe()}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
