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

from core.console import add_output_options
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
    p.add_argument("--colmap", type=Path, default=None, metavar="DIR",
                   help="also write DIR: the COLMAP model undistorted (images/ resampled as pinhole views, "
                        "sparse/0/ with PINHOLE cameras), as 3D Gaussian Splatting-style tools want it")
    add_output_options(p)
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
    from core.console import command_progress, report_result
    from core.fsio import atomic_write_json
    from core.jobs import Step
    from core.progress import Progress
    from core.worker import run_job
    from core.workspace import Workspace

    workspace = Workspace(getattr(args, "workspace", None))
    overrides: dict[str, Any] = {"matcher": args.matcher, "mapper": args.mapper,
                                 "use_device_poses": not args.ignore_device_poses}
    if args.max_image_size is not None:
        overrides["max_image_size"] = args.max_image_size
    with command_progress(args, leave=False) as show:
        if workspace.has_capture(args.source):
            capture = workspace.capture(args.source)
        else:
            from recon.ingest import ingest

            capture = ingest(Path(args.source), workspace, name=args.name, progress=Progress("ingest", show))
        outcomes = run_job(workspace, capture.id, [Step("poses", overrides)], sink=show)
    outcome = outcomes[-1]
    transforms = json.loads((outcome.run_dir / "transforms.json").read_text(encoding="utf-8"))
    atomic_write_json(args.output, rewrite_file_paths(transforms, outcome.run_dir, args.output))
    r = outcome.result
    lines = [f"capture {capture.id}: {r['registered']}/{r['total']} frames registered "
             f"({100.0 * r['fraction']:.1f}%), {r.get('points', 0)} points, source {r.get('source')}, "
             f"attempts: {', '.join(r.get('attempts', []))}"]
    names = {fr.id: fr.source_name or fr.image or fr.id for fr in capture.load().frames}
    unregistered = {frame_id: {"file": names.get(frame_id), "reason": reason}
                    for frame_id, reason in sorted(r.get("unregistered", {}).items())}
    for frame_id, why in unregistered.items():
        lines.append(f"  unregistered frame {frame_id} ({why['file'] or '?'}): {why['reason']}")
    lines += [f"run folder: {outcome.run_dir}", f"wrote {args.output}"]
    result: dict[str, Any] = {
        "capture": capture.id, "registered": r["registered"], "total": r["total"],
        "points": r.get("points", 0), "source": r.get("source"), "attempts": list(r.get("attempts", [])),
        "unregistered": unregistered, "run_folder": outcome.run_dir, "transforms": args.output,
    }
    if args.dataset is not None:
        from recon.poses.dataset_export import export_nerfstudio_dataset

        result["dataset"] = export_nerfstudio_dataset(outcome.run_dir, capture.root, args.dataset)
        lines.append(f"wrote {result['dataset']}")
    if args.colmap is not None:
        from recon.poses.colmap_export import export_undistorted_colmap

        result["colmap"] = export_undistorted_colmap(outcome.run_dir, capture.root, args.colmap)
        lines.append(f"wrote {result['colmap']} (undistorted, PINHOLE)")
    return report_result(args, result, lines)
