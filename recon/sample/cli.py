"""``scanbridge demo``: the bundled sample capture, through the pipeline, end to end."""

from __future__ import annotations

import argparse
from typing import Any


def add_demo_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    # Not parents=[common]: its default (None) would overwrite a --workspace given before "demo".
    p = subparsers.add_parser(
        "demo",
        help="run the pipeline on the bundled sample capture",
        description="Import the bundled synthetic sample (a textured object, 24 photos around it) as a "
        "new capture, estimate its camera poses with structure from motion, and print where the "
        "results are and how close they are to the truth.",
    )
    p.add_argument(
        "--workspace",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)",
    )
    p.add_argument("--name", default="sample", help="name of the new capture (default: sample)")
    p.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.progress import ProgressEvent
    from core.workspace import Workspace
    from recon.sample.demo import describe, run_demo

    workspace = Workspace(getattr(args, "workspace", None))
    with tqdm(total=100, unit="%", leave=False) as bar:

        def show(event: ProgressEvent) -> None:
            if event.kind == "progress" and event.fraction is not None:
                bar.set_description(event.stage, refresh=False)
                bar.n = round(event.fraction * 100)
                bar.set_postfix_str(event.message[:40], refresh=False)
                bar.refresh()
            elif event.level in ("warning", "error"):
                bar.write(f"{event.stage}: {event.level}: {event.message}")

        result = run_demo(workspace, name=args.name, sink=show)
    for line in describe(result):
        print(line)
    return 0
