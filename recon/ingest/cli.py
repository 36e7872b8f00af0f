"""``scanbridge import SOURCE [--name NAME] [--mode MODE] [--frames N]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.capture import MODES
from core.console import add_output_options


def add_import_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    # Not parents=[common]: its default (None) would overwrite a --workspace given before "import".
    p = subparsers.add_parser(
        "import",
        help="make a capture from photos, a zip, a video, transforms.json, a COLMAP or Meshroom model, "
             "or a Stray Scanner, Record3D (.r3d) or Polycam export",
        description="Read SOURCE into a new capture in the workspace and print its id and folder.",
    )
    p.add_argument(
        "--workspace",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)",
    )
    p.add_argument("source", metavar="SOURCE", type=Path, help="folder, .zip, video, or transforms.json")
    p.add_argument("--name", default=None, help="capture name shown to the user (default: from SOURCE)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="capture mode (default: rgbd for RGB-D exports, else import)",
    )
    p.add_argument(
        "--frames",
        type=int,
        default=150,
        metavar="N",
        help="frames to keep from a video or RGB-D export (default: 150)",
    )
    add_output_options(p)
    p.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    from core.console import command_progress, report_result
    from core.progress import Progress
    from core.workspace import Workspace
    from recon.ingest.api import ingest

    workspace = Workspace(getattr(args, "workspace", None))
    with command_progress(args, leave=False) as show:
        capture = ingest(
            args.source,
            workspace,
            name=args.name,
            mode=args.mode,
            progress=Progress("ingest", show),
            target_frames=args.frames,
        )
    manifest = capture.load()
    result = {"capture": capture.id, "folder": capture.root, "frames": len(manifest.frames),
              "source": manifest.source.get("kind"), "scale": manifest.scale}
    return report_result(args, result, [
        f"{capture.id}\t{capture.root}",
        f"{len(manifest.frames)} frames, source {manifest.source.get('kind')}, scale {manifest.scale}",
    ])
