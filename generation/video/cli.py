"""``scanbridge video SOURCE``: a clip of a capture's textured model, run as a job of the queue."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

_SIZE = re.compile(r"(\d{2,4})x(\d{2,4})")


def add_video_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "video", parents=[common],
        help="render a video (H.264 MP4) of a capture's model",
        description="Render the capture's textured model along a camera path into an H.264 MP4, as a job "
        "of the workspace's queue (progress shown, Ctrl-C cancels). The clip is published to the "
        "capture's exports/clip.mp4, where the share page offers it, and copied to -o.",
    )
    p.add_argument("source", metavar="SOURCE", help="the capture's id (see the app or the server)")
    p.add_argument("--path", choices=("turntable", "capture", "fly"), default="turntable",
                   help="turntable orbit, the capture's own camera path smoothed, or a fly-through")
    p.add_argument("--seconds", type=float, default=6.0, help="length of the clip (default 6)")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument("--size", default="1280x720", metavar="WxH",
                   help="even sides in pixels (default 1280x720)")
    p.add_argument("--elevation", type=float, default=20.0, metavar="DEG",
                   help="turntable camera height in degrees above the model's middle (default 20)")
    p.add_argument("--mesh-run", default="", metavar="RUN", help="a mesh run folder (default: the newest)")
    p.add_argument("-o", "--out", type=Path, metavar="CLIP.mp4", help="also copy the clip here")
    p.set_defaults(func=run_video_command)


def parse_size(text: str) -> tuple[int, int]:
    from core.errors import ConfigError

    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}", "--size")
    return int(match.group(1)), int(match.group(2))


def run_video_command(args: argparse.Namespace) -> int:
    from core.console import progress_bar
    from core.errors import ConfigError
    from core.fsio import atomic_copy
    from core.jobs import Step
    from core.worker import run_job
    from core.workspace import Workspace
    from generation.video.stage import CLIP_FILE, VideoStageConfig

    width, height = parse_size(args.size)
    config = {"path": args.path, "seconds": args.seconds, "fps": args.fps, "width": width, "height": height,
              "elevation_deg": args.elevation, "mesh_run": args.mesh_run}
    VideoStageConfig(**config)  # bad options fail here, before a job is queued
    if args.out is not None and args.out.suffix.lower() != ".mp4":
        raise ConfigError("the clip is an MP4: name it something.mp4", args.out)
    workspace = Workspace(getattr(args, "workspace", None))
    capture = workspace.capture(args.source)
    with progress_bar(leave=False) as show:
        run_job(workspace, capture.id, [Step("video", config), Step("video-publish", {})], show)
    published = capture.exports_dir / CLIP_FILE
    print(f"video: {published}")
    if args.out is not None:
        print(f"copied to: {atomic_copy(published, args.out)}")
    return 0
