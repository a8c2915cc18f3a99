"""python -m edge: read handwritten digits from a camera, video, stream, image or folder.

Exit codes: 0 done (end of video/images, --max-frames, SIGINT/SIGTERM); 1 the model, the source or
every frame in a row failed; 2 usage error; 4 the camera was lost (reads kept failing after every
reopen), so systemd can restart it.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import health
from .cli import EXIT_CAMERA_LOST, EXIT_ERROR, EXIT_OK, EXIT_USAGE, add_common_flags, count, number, setup_logging
from .interpreter import DigitModel, ModelError
from .serve import LiveServer, LiveView, ServeError, parse_address
from .run import FrameErrors, RunOptions, StopFlag, Summary, run
from .sources import STREAM_TIMEOUT, CameraLost, ResilientSource, SourceError, open_source

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
    add_common_flags(p)
    p.add_argument("--single", action="store_true", help="the whole image (or ROI) is one digit")
    p.add_argument("--json", action="store_true", help="one JSON object per frame instead of a text line")
    p.add_argument("--on-change", type=count(0), nargs="?", const=5, default=0, metavar="N",
                   help="print only when a reading has been stable for N frames (default N: 5) and changed")
    p.add_argument("--width", type=count(1), default=640, help="camera frame width (default: 640)")
    p.add_argument("--height", type=count(1), default=480, help="camera frame height (default: 480)")
    p.add_argument("--fps", type=number(0.0), default=0.0, help="cap on processed frames per second (default: none)")
    p.add_argument("--every", type=count(1), default=1, metavar="N", help="process every Nth frame (default: 1)")
    p.add_argument("--roi", type=_roi, help="x,y,w,h: only look at this part of the frame")
    p.add_argument("--max-frames", type=count(0), default=0, metavar="N", help="stop after N frames read")
    p.add_argument("--debug-dir", type=Path, help="write each frame's 28x28 digit crops here")
    p.add_argument("--save-annotated", type=Path, metavar="DIR", help="write frames with boxes and digits here")
    p.add_argument("--show", action="store_true", help="draw boxes and digits in a window (needs a display)")
    p.add_argument("--serve", metavar="[HOST:]PORT",
                   help="serve a live page of the annotated frames and readings (HOST default 127.0.0.1)")
    p.add_argument("--serve-token", metavar="TOKEN", default=os.environ.get("DIGIT_READER_TOKEN"),
                   help="require this token for every route but /healthz (default: $DIGIT_READER_TOKEN)")
    p.add_argument("--stream-timeout", type=number(0.1), default=STREAM_TIMEOUT, metavar="SECONDS",
                   help=f"longest a network stream may stall in one open or read (default: {STREAM_TIMEOUT:g})")
    p.add_argument("--retries", type=count(1), default=5, help="failed reads before reopening the camera (default: 5)")
    p.add_argument("--reopens", type=count(0), default=5,
                   help="reopen attempts before giving up with exit 4 (default: 5)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    for flag in ("debug_dir", "save_annotated"):
        folder = getattr(args, flag)
        if folder is not None and folder.exists() and not folder.is_dir():
            p.error(f"--{flag.replace('_', '-')} {folder}: exists and is not a folder")
    try:
        address = parse_address(args.serve) if args.serve else None
    except ValueError as e:
        p.error(f"--serve: {e}")
    setup_logging(args.verbose)
    opts = RunOptions(single=args.single, min_confidence=args.min_confidence, json=args.json,
                      on_change=args.on_change, every=args.every, fps=args.fps, roi=args.roi,
                      max_frames=args.max_frames, debug_dir=args.debug_dir,
                      save_annotated=args.save_annotated, show=args.show)
    stop = StopFlag()
    stop.install()
    server = None
    if address:
        view = LiveView(args.min_confidence, on_change=bool(args.on_change))
        try:
            server = LiveServer(address, view, args.serve_token)     # before the camera: a busy port costs nothing
        except ServeError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
    try:
        model = DigitModel(args.model, threads=args.threads, backend=args.backend,
                           allow_mismatch=args.allow_mismatch)
        size = (args.width, args.height)
        source = ResilientSource(lambda: open_source(args.source, size, args.stream_timeout), retries=args.retries,
                                 max_reopens=args.reopens, sleep=stop.wait)
    except (ModelError, SourceError) as e:
        server and server.close()
        if stop.stop:                 # told to stop while a stream was being opened: not an error
            return EXIT_OK
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    log.info("device: %s", health.status())
    code = EXIT_OK
    summary = Summary()
    if server:
        server.start()
    try:
        run(source, model, opts, stop=stop, summary=summary, on_result=server.view.publish if server else None)
    except CameraLost as e:
        print(f"error: camera lost: {e}", file=sys.stderr)
        code = EXIT_CAMERA_LOST
    except FrameErrors as e:
        print(f"error: {e}", file=sys.stderr)
        code = EXIT_ERROR
    except BrokenPipeError:      # `| head`: the reader of stdout has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        source.close()
        server and server.close()
    if code == EXIT_OK and not source.live and not summary.frames_processed and not stop.stop:
        print(f"error: {args.source}: no frame or image could be read", file=sys.stderr)
        code = EXIT_ERROR
    print(f"{summary.text()}; {health.status()}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
