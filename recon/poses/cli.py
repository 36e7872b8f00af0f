"""``scanbridge poses SOURCE -o transforms.json [--matcher ...]``.

SOURCE is a capture id in the workspace or anything ``scanbridge import`` reads. The stage runs
as a job (core.worker.run_job); the transforms.json it wrote is copied to -o with file paths
that are valid from there.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from recon.poses.config import MAPPERS, MATCHERS


def add_poses_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    # Not parents=[common]: its default (None) would overwrite a --workspace given before "poses".
    p = subparsers.add_parser(
        "poses",
        help="estimate camera poses (device poses or COLMAP SfM) and write a nerfstudio transforms.json",
        description="Estimate camera poses for SOURCE (a capture id, or a folder, zip, video or export that "
                    "'scanbridge import' reads) and write transforms.json to -o.",
    )
    p.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                   help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)")
    p.add_argument("source", metavar="SOURCE", help="capture id, or a path to import first")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                   help="where to write transforms.json (nerfstudio format)")
    p.add_argument("--matcher", choices=MATCHERS, default="auto",
                   help="pairs to match: auto (by capture kind and size), exhaustive, sequential, retrieval")
    p.add_argument("--mapper", choices=MAPPERS, default="incremental",
                   help="COLMAP mapper (default: incremental)")
    p.add_argument("--ignore-device-poses", action="store_true",
                   help="run SfM even when every frame has a device pose")
    p.add_argument("--max-image-size", type=int, default=None, metavar="PX",
                   help="longest image side for the first attempt (default: 1024)")
    p.add_argument("--name", default=None, help="capture name when SOURCE is imported")
    p.add_argument("--dataset", type=Path, default=None, metavar="DIR",
                   help="also write DIR: a self-contained nerfstudio dataset (transforms.json beside "
                        "copies of the frames) that nerfstudio and 'scanbridge import' read at the same "
                        "scale")
    p.set_defaults(func=run_poses)


def rewrite_file_paths(transforms: dict[str, Any], run_dir: Path, output: Path) -> dict[str, Any]:
    """The same transforms with file paths relative to ``output``'s folder (absolute when there is
    no relative path, as between Windows drives)."""
    out_dir = output.resolve().parent

    def moved(rel: str) -> str:
        target = (run_dir / rel).resolve()
        try:
            return os.path.relpath(target, out_dir)
        except ValueError:
            return str(target)

    frames = []
    for fr in transforms.get("frames", []):
        fr = dict(fr)
        for key in ("file_path", "depth_file_path", "mask_path"):
            if key in fr:
                fr[key] = moved(fr[key])
        frames.append(fr)
    out = {**transforms, "frames": frames}
    if "ply_file_path" in out:
        out["ply_file_path"] = moved(out["ply_file_path"])
    return out


def run_poses(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.fsio import atomic_write_json
    from core.jobs import Step
    from core.progress import Progress, ProgressEvent
    from core.worker import run_job
    from core.workspace import Workspace

    workspace = Workspace(getattr(args, "workspace", None))
    overrides: dict[str, Any] = {"matcher": args.matcher, "mapper": args.mapper,
                                 "use_device_poses": not args.ignore_device_poses}
    if args.max_image_size is not None:
        overrides["max_image_size"] = args.max_image_size
    with tqdm(total=100, unit="%", desc="poses", leave=False) as bar:

        def show(event: ProgressEvent) -> None:
            if event.kind == "progress" and event.fraction is not None:
                bar.n = round(event.fraction * 100)
                bar.set_postfix_str(event.message[:48], refresh=False)
                bar.refresh()
            elif event.level in ("warning", "error"):
                bar.write(f"{event.level}: {event.message}")

        if workspace.has_capture(args.source):
            capture = workspace.capture(args.source)
        else:
            from recon.ingest import ingest

            bar.set_description("import")
            capture = ingest(Path(args.source), workspace, name=args.name, progress=Progress("ingest", show))
            bar.set_description("poses")
            bar.n = 0
        outcomes = run_job(workspace, capture.id, [Step("poses", overrides)], sink=show)
    outcome = outcomes[-1]
    transforms = json.loads((outcome.run_dir / "transforms.json").read_text(encoding="utf-8"))
    atomic_write_json(args.output, rewrite_file_paths(transforms, outcome.run_dir, args.output))
    r = outcome.result
    print(f"capture {capture.id}: {r['registered']}/{r['total']} frames registered "
          f"({100.0 * r['fraction']:.1f}%), {r.get('points', 0)} points, source {r.get('source')}, "
          f"attempts: {', '.join(r.get('attempts', []))}")
    names = {fr.id: fr.source_name or fr.image or fr.id for fr in capture.load().frames}
    for frame_id, reason in sorted(r.get("unregistered", {}).items()):
        print(f"  unregistered frame {frame_id} ({names.get(frame_id, '?')}): {reason}")
    print(f"run folder: {outcome.run_dir}")
    print(f"wrote {args.output}")
    if args.dataset is not None:
        from recon.poses.dataset_export import export_nerfstudio_dataset

        print(f"wrote {export_nerfstudio_dataset(outcome.run_dir, capture.root, args.dataset)}")
    return 0
