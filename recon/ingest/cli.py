"""``scanbridge import SOURCE [--name NAME] [--mode MODE] [--frames N]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.capture import MODES


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
    p.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.progress import Progress, ProgressEvent
    from core.workspace import Workspace
    from recon.ingest.api import ingest

    workspace = Workspace(getattr(args, "workspace", None))
    with tqdm(total=100, unit="%", desc="import", leave=False) as bar:

        def show(event: ProgressEvent) -> None:
            if event.kind == "progress" and event.fraction is not None:
                bar.n = round(event.fraction * 100)
                bar.set_postfix_str(event.message[:40], refresh=False)
                bar.refresh()
            elif event.level in ("warning", "error"):
                bar.write(f"{event.level}: {event.message}")

        capture = ingest(
            args.source,
            workspace,
            name=args.name,
            mode=args.mode,
            progress=Progress("ingest", show),
            target_frames=args.frames,
        )
    manifest = capture.load()
    print(f"{capture.id}\t{capture.root}")
    print(f"{len(manifest.frames)} frames, source {manifest.source.get('kind')}, scale {manifest.scale}")
    return 0
