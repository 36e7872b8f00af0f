"""The ``fusion`` stage: TSDF-fuse a capture's posed depth frames into mesh.ply and points.ply.

Frames without a depth map or a pose are skipped with a reason; a file that is there but
unreadable, or a frame that fails validation, stops the stage with one InputError naming it.
The capture must be metric (depth and poses in metres). Poses come from capture.json, or, when
the run is given a ``poses`` stage run as input, from that run's poses.json (which must be
metric too); frames it did not register are skipped.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, InputError, ReconstructionError
from core.ports import POSED_IMAGES, RAW_MESH, Port
from core.stages import StageContext, StageSpec
from recon.fusion.frames import read_frame
from recon.fusion.ply import write_mesh_ply, write_points_ply
from recon.fusion.tsdf import FusionConfig, TSDFFusion, preset

MESH_FILE = "mesh.ply"
POINTS_FILE = "points.ply"
POSES_FILE = "poses.json"  # written by the poses stage
SKIP_EXAMPLES = 20  # skipped frames listed by id in the result; the rest are counted by reason


@dataclass(frozen=True)
class FusionStageConfig:
    """A preset ("object" or "room") and optional overrides of its fields (None keeps the preset's)."""

    preset: str = "room"
    voxel_size_m: float | None = None
    trunc_voxels: float | None = None
    min_depth_m: float | None = None
    max_depth_m: float | None = None
    min_confidence: int | None = None
    min_weight: float | None = None
    color: bool = True
    frame_step: int = 1  # fuse every n-th frame
    write_points: bool = True

    def __post_init__(self) -> None:
        step = self.frame_step
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ConfigError(f"expected a positive whole number, got {step!r}", "fusion.frame_step")
        self.fusion_config()  # a bad preset or field fails here, before any work

    def fusion_config(self) -> FusionConfig:
        overrides = {
            name: getattr(self, name)
            for name in ("voxel_size_m", "trunc_voxels", "min_depth_m", "max_depth_m", "min_confidence",
                         "min_weight")
            if getattr(self, name) is not None
        }
        return preset(self.preset, color=self.color, **overrides)


def read_stage_poses(run_dir: Path) -> dict[str, np.ndarray]:
    """Frame id -> (4, 4) OpenCV camera-to-world from a poses stage run's poses.json (metric only)."""
    path = Path(run_dir) / POSES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("missing: the poses run has not finished", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read ({e})", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise InputError("expected an object with a list of frames", path)
    if data.get("scale") != "metric":
        raise InputError(f"fusion needs metric poses, but scale is {data.get('scale')!r}", f"{path}: scale")
    poses = {}
    for i, frame in enumerate(data["frames"]):
        try:
            c2w = np.array(frame["c2w"], dtype=np.float64)
            poses[str(frame["id"])] = c2w
        except (KeyError, TypeError, ValueError):
            raise InputError("expected an id and a 4x4 c2w", f"{path}: frames[{i}]") from None
    return poses


def run(ctx: StageContext, config: FusionStageConfig) -> dict[str, Any]:
    fusion_config = config.fusion_config()
    manifest = ctx.capture.load()
    stage_poses = read_stage_poses(ctx.inputs["poses"]) if "poses" in ctx.inputs else None
    if stage_poses is None and manifest.scale != "metric":
        raise InputError(
            f"fusion needs metric depth and poses, but scale is {manifest.scale!r}",
            f"{ctx.capture.manifest_path}: scale",
        )
    frames = manifest.frames[:: config.frame_step]
    if not frames:
        raise ReconstructionError("the capture has no frames", ctx.capture.manifest_path)

    fusion = TSDFFusion(fusion_config)
    skipped: list[dict[str, str]] = []
    reasons: Counter[str] = Counter()

    def skip(frame_id: str, reason: str) -> None:
        reasons[reason] += 1
        if len(skipped) < SKIP_EXAMPLES:
            skipped.append({"frame": frame_id, "reason": reason})

    fuse_progress = ctx.progress.sub(0.0, 0.9)
    for i, frame in enumerate(frames):
        ctx.cancel.check()
        if frame.depth is None:
            skip(frame.id, "no depth map")
        elif stage_poses is not None and frame.id not in stage_poses:
            skip(frame.id, "not registered by the poses stage")
        elif stage_poses is None and frame.pose is None:
            skip(frame.id, "no pose")
        else:
            arrays = read_frame(
                ctx.capture, frame, confidence=fusion_config.min_confidence > 0, color=fusion_config.color
            )
            c2w = stage_poses[frame.id] if stage_poses is not None else arrays.c2w
            used = fusion.add_frame(
                arrays.depth, frame.camera, c2w, color=arrays.color, confidence=arrays.confidence,
                depth_scale=frame.depth_scale, frame=f"frame {frame.id}",
            )
            if used == 0:
                skip(frame.id, "no depth within the depth range and confidence limit")
        fuse_progress.update((i + 1) / len(frames), f"frame {i + 1}/{len(frames)}")
    ctx.cancel.check()

    ctx.progress.update(0.9, "extracting the surface and refining it against the depth frames")
    mesh = fusion.extract_mesh(refine=True)
    bounds = mesh.bounds()
    if mesh.triangle_count == 0 or bounds is None:
        raise ReconstructionError(
            f"no surface: {fusion.frame_count} of {len(frames)} frames were fused and no voxel was seen by "
            f"at least {fusion_config.min_weight:g} of them; check the depth range and confidence limit",
            ctx.capture.root,
        )
    ctx.cancel.check()
    write_mesh_ply(ctx.out_dir / MESH_FILE, mesh.vertices, mesh.faces, mesh.normals, mesh.colors)
    files = [MESH_FILE]
    point_count = None
    if config.write_points:
        points = fusion.extract_points()
        write_points_ply(ctx.out_dir / POINTS_FILE, points.points, points.normals, points.colors)
        files.append(POINTS_FILE)
        point_count = points.count
    ctx.progress.log(
        f"fused {fusion.frame_count} of {len(frames)} frames: {mesh.vertex_count} vertices, "
        f"{mesh.triangle_count} triangles"
    )
    return {
        "frames_total": len(frames),
        "frames_used": fusion.frame_count,
        "frames_skipped": sum(reasons.values()),
        "skipped_by_reason": dict(reasons),
        "skipped_examples": skipped,
        "vertices": mesh.vertex_count,
        "triangles": mesh.triangle_count,
        "points": point_count,
        "colored": mesh.colors is not None,
        "bounds_m": [[round(float(v), 4) for v in row] for row in bounds],
        "extent_m": [round(float(v), 4) for v in bounds[1] - bounds[0]],
        "voxel_size_m": fusion_config.voxel_size_m,
        "files": files,
    }


STAGE = StageSpec(
    name="fusion",
    config_cls=FusionStageConfig,
    run=run,
    version=2,  # 2: the mesh is refined against the depth frames
    reads=(Port("poses", POSED_IMAGES, optional=True, description="camera poses (else the device's)"),),
    writes=(RAW_MESH,),
    description="TSDF fusion of posed depth frames (LiDAR captures) into mesh.ply and points.ply",
)
