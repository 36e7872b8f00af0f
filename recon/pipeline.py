"""``scanbridge process``: which stages turn a capture into an AR asset, run as one job.

fusion: the capture's depth maps and device poses, TSDF-fused (LiDAR captures).
mvs: poses (device or SfM), then CPU plane-sweep stereo fused by the same TSDF (photos only).
Both go on through mesh (crop, clean, decimate, place, texture) and export (USDZ, GLB, OBJ, PLY).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.capture import CaptureFolder, Manifest
from core.errors import ConfigError
from core.jobs import Step
from core.progress import Sink
from core.stages import StageOutcome
from core.workspace import Workspace

METHODS = ("auto", "fusion", "mvs")
OBJECT_DEPTH_M = 1.5  # median depth below this: an object on a table, fused at 4 mm


@dataclass(frozen=True)
class ProcessResult:
    capture: CaptureFolder
    method: str
    outcomes: tuple[StageOutcome, ...]
    published: dict[str, Path]


def has_depth_and_poses(manifest: Manifest) -> bool:
    return bool(manifest.frames) and all(f.depth and f.pose is not None for f in manifest.frames)


def _median_depth_m(capture: CaptureFolder, manifest: Manifest) -> float | None:
    depths = [f for f in manifest.frames if f.depth][:: max(1, len(manifest.frames) // 5)][:5]
    values = []
    for f in depths:
        d = cv2.imread(str(capture.path(f.depth)), cv2.IMREAD_UNCHANGED)
        if d is not None and (d > 0).any():
            values.append(float(np.median(d[d > 0])) * f.depth_scale)
    return float(np.median(values)) if values else None


def plan(capture: CaptureFolder, method: str = "auto", detail: str = "medium",
         formats: tuple[str, ...] = ("usdz", "glb", "obj", "ply"),
         mesh_options: dict[str, Any] | None = None) -> tuple[str, list[Step]]:
    """(the method chosen, the job's steps) for ``capture``."""
    if method not in METHODS:
        raise ConfigError(f"must be one of {', '.join(METHODS)}, got {method!r}", "method")
    manifest = capture.load()
    depth_ok = has_depth_and_poses(manifest) and manifest.scale == "metric"
    if method == "auto":
        method = "fusion" if depth_ok else "mvs"
    finish = [Step("mesh", {"detail": detail, **(mesh_options or {})}),
              Step("export", {"detail": detail, "formats": list(formats), "name": manifest.name})]
    if method == "fusion":
        if not depth_ok:
            raise ConfigError("fusion needs metric depth maps and device poses on every frame; "
                              "this capture has photos only (use --method mvs)", "method")
        median = _median_depth_m(capture, manifest)
        preset = "object" if median is not None and median < OBJECT_DEPTH_M else "room"
        # The mesh stage bakes the texture from the photos at their device poses (capture.json).
        return method, [Step("fusion", {"preset": preset})] + finish
    if not any(f.image for f in manifest.frames):
        raise ConfigError("dense stereo needs photos; this capture has depth maps only", "method")
    return method, [Step("poses", {}), Step("mvs", {})] + finish


def process(workspace: Workspace, capture: CaptureFolder, *, method: str = "auto", detail: str = "medium",
            out: Path | None = None, sink: Sink | None = None,
            mesh_options: dict[str, Any] | None = None) -> ProcessResult:
    """Run the plan as one job (stages in child processes) and publish its files to exports/."""
    from core.worker import run_job
    from recon.export.stage import publish

    formats = ("usdz", "glb", "obj", "ply")
    if out is not None and out.suffix.lower().lstrip(".") not in formats:
        raise ConfigError(f"unknown output format {out.suffix!r}; use .usdz, .glb, .obj or .ply", out)
    chosen, steps = plan(capture, method, detail, formats, mesh_options)
    outcomes = run_job(workspace, capture.id, steps, sink)
    export_run = next(o.run_dir for o in outcomes if o.stage == "export")
    published = publish(capture, export_run, out)
    return ProcessResult(capture, chosen, tuple(outcomes), published)
