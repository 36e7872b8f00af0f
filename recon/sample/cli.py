"""``scanbridge demo``: the bundled sample capture, through the pipeline, end to end."""

from __future__ import annotations

import argparse
from typing import Any

from core.console import add_output_options


def add_demo_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    # Not parents=[common]: its default (None) would overwrite a --workspace given before "demo".
    p = subparsers.add_parser(
        "demo",
        help="run the pipeline on the bundled sample capture",
        description="Import the bundled synthetic sample (a textured object, 24 photos with depth around "
        "it) as a new capture, estimate its camera poses with structure from motion and compare them "
        "with the truth, then fuse, mesh, texture and export it as an AR Quick Look USDZ (plus GLB, "
        "OBJ, PLY), and print where everything is.",
    )
    p.add_argument(
        "--workspace",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)",
    )
    p.add_argument("--name", default="sample", help="name of the new capture (default: sample)")
    p.add_argument("--detail", choices=("preview", "reduced", "medium", "full"), default="medium",
                   help="triangle budget of the AR model (default: medium, 100k)")
    p.add_argument("--texture-size", type=int, default=2048, metavar="PX", help="texture atlas side")
    p.add_argument("--no-model", action="store_true", help="stop after the poses check (no AR model)")
    add_output_options(p)
    p.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from core.console import command_progress, report_result
    from core.workspace import Workspace
    from recon.sample.demo import describe, run_demo

    workspace = Workspace(getattr(args, "workspace", None))
    with command_progress(args, leave=False) as show:
        result = run_demo(workspace, name=args.name, sink=show, model=not args.no_model,
                          detail=args.detail, texture_size=args.texture_size)
    summary = {"capture": result.capture.id, "folder": result.capture.root,
               "runs": [{"stage": o.stage, "run_folder": o.run_dir} for o in result.outcomes],
               "exports": dict(result.published)}
    return report_result(args, summary, describe(result))
