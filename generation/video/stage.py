"""The ``video`` stage (a clip of the capture's textured model along a camera path) and
``video-publish`` (copies it to the capture's exports/clip.mp4, where the share page finds it).

The video reads the newest finished mesh run of the capture (or the one named in ``mesh_run``),
so it depends on more than its config and is never reused: ``reuse=False``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.capture import CaptureFolder
from core.errors import ConfigError, InputError, NotFoundError, StageError
from core.fsio import atomic_copy
from core.stages import StageContext, StageSpec, is_done, read_status
from generation.video.encode import check_video_size, write_mp4
from generation.video.paths import (
    CameraPath,
    Intrinsics,
    capture_path,
    default_fly_keyframes,
    fly_through,
    turntable,
)

CLIP_FILE = "clip.mp4"
PATH_KINDS = ("turntable", "capture", "fly")
MAX_SECONDS = 600.0
MAX_FPS = 120.0
DEFAULT_VERTICAL_FOV_DEG = 40.0
_MESH_RUN_NAME = re.compile(r"(mesh|create)-[0-9a-f]{12}")
MODEL_RUN_GLOBS = ("mesh-*", "create-*")  # runs holding a textured model: the mesh stage, generation.create


@dataclass(frozen=True)
class VideoStageConfig:
    path: str = "turntable"  # one of PATH_KINDS
    seconds: float = 6.0
    fps: float = 30.0
    width: int = 1280
    height: int = 720
    elevation_deg: float = 20.0  # turntable only
    keyframes: tuple[tuple[float, ...], ...] = ()  # fly only: (eye x, y, z, target x, y, z) each
    mesh_run: str = ""  # a mesh run folder's name under runs/; empty: the newest finished one
    supersample: int = 1  # render at this many times the size and average down (anti-aliasing)

    def __post_init__(self) -> None:
        if self.path not in PATH_KINDS:
            raise ConfigError(f"must be one of {', '.join(PATH_KINDS)}, got {self.path!r}", "video.path")
        _finite_in(self.seconds, 0.0, MAX_SECONDS, "video.seconds")
        _finite_in(self.fps, 0.0, MAX_FPS, "video.fps")
        _finite_in(self.elevation_deg, -89.0, 89.0, "video.elevation_deg", inclusive=True)
        check_video_size(self.width, self.height)
        if self.frames < 1:
            raise ConfigError("the clip is shorter than one frame", "video.seconds")
        if isinstance(self.supersample, bool) or self.supersample not in (1, 2, 3, 4):
            raise ConfigError(f"must be 1, 2, 3 or 4, got {self.supersample!r}", "video.supersample")
        if self.mesh_run and not _MESH_RUN_NAME.fullmatch(str(self.mesh_run)):
            raise ConfigError("expected a mesh or create run's folder name (mesh-<12 hex digits>)",
                              "video.mesh_run")
        object.__setattr__(self, "keyframes", tuple(tuple(k) for k in self.keyframes))
        if any(len(k) != 6 for k in self.keyframes):
            raise ConfigError("each keyframe is six numbers: eye x y z, target x y z", "video.keyframes")

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))


def _finite_in(value: Any, lo: float, hi: float, where: str, inclusive: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (isinstance(value, int) or math.isfinite(value))  # 10**400 is an int no float can hold
    ok = ok and (lo <= value <= hi if inclusive else lo < value <= hi)
    if not ok:
        raise ConfigError(f"must be a number above {lo:g} and at most {hi:g}, got {value!r}", where)


def newest_mesh_run(capture: CaptureFolder, name: str = "") -> Path:
    """The capture's finished mesh (or create) run named ``name``, or its newest finished one."""
    if name:
        run = capture.runs_dir / name
        if not is_done(run):
            raise NotFoundError("no finished mesh run of that name", name)
        return run
    done = [r for pattern in MODEL_RUN_GLOBS for r in capture.runs_dir.glob(pattern) if is_done(r)]
    if not done:
        raise NotFoundError("the capture has no textured model yet (run `scanbridge process` first)",
                            capture.id)
    return max(done, key=lambda r: float((read_status(r) or {}).get("ended") or 0.0))


def camera_path_for(config: VideoStageConfig, capture: CaptureFolder, vertices: np.ndarray,
                    placement: dict[str, Any]) -> CameraPath:
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    centre = 0.5 * (lo + hi)
    radius = max(float(np.linalg.norm(vertices - centre, axis=1).max()), 1e-6)
    if config.path == "capture":
        posed = [f for f in capture.load().frames if f.pose is not None]
        if len(posed) < 2:
            raise InputError("the capture has fewer than two posed frames, so it has no path to follow",
                             capture.id)
        cam = posed[0].camera
        fov = math.degrees(2 * math.atan(0.5 * cam.height / cam.fy))
        intrinsics = Intrinsics.from_fov(config.width, config.height, min(max(fov, 20.0), 100.0))
        return capture_path([np.array(f.pose) for f in posed], np.array(placement["matrix"], float),
                            intrinsics, config.frames)
    intrinsics = Intrinsics.from_fov(config.width, config.height, DEFAULT_VERTICAL_FOV_DEG)
    if config.path == "turntable":
        return turntable(centre, radius, intrinsics, config.frames, elevation_deg=config.elevation_deg)
    if config.keyframes:
        keys = np.array(config.keyframes, float)
        return fly_through(keys[:, :3], keys[:, 3:], intrinsics, config.frames)
    eyes, targets = default_fly_keyframes(centre, radius, intrinsics)
    return fly_through(eyes, targets, intrinsics, config.frames)


def run(ctx: StageContext, config: VideoStageConfig) -> dict[str, Any]:
    from generation.video.render import FrameRenderer
    from recon.mesh.stage import load_result

    mesh_run = newest_mesh_run(ctx.capture, config.mesh_run)
    mesh, placement = load_result(mesh_run)
    if "matrix" not in placement and config.path == "capture":
        raise InputError("has no placement matrix", Path(mesh_run) / "placement.json")
    path = camera_path_for(config, ctx.capture, mesh.vertices.astype(np.float64), placement)
    renderer = FrameRenderer(mesh)
    ctx.progress.log(f"rendering {len(path)} frames of {mesh.face_count} triangles at "
                     f"{config.width}x{config.height} ({config.path}) from {mesh_run.name}")

    def frames() -> Iterator[np.ndarray]:
        for i, pose in enumerate(path.poses):
            ctx.cancel.check()
            yield renderer.render(pose, path.intrinsics, config.supersample)
            ctx.progress.update(0.98 * (i + 1) / len(path), f"frame {i + 1}/{len(path)}")

    written = write_mp4(frames(), ctx.out_dir / CLIP_FILE, config.width, config.height, config.fps)
    np.save(ctx.out_dir / "poses.npy", path.poses)
    return {"files": {"mp4": CLIP_FILE}, "frames": written, "fps": config.fps,
            "size": [config.width, config.height], "path": config.path, "mesh_run": mesh_run.name,
            "triangles": mesh.face_count}


@dataclass(frozen=True)
class VideoPublishConfig:
    """Publishing has no options: it copies what the video run wrote."""


def run_publish(ctx: StageContext, config: VideoPublishConfig) -> dict[str, Any]:
    video_run = ctx.inputs.get("video")
    if video_run is None:
        raise ConfigError("needs the output of video first", "video-publish")
    src = Path(video_run) / CLIP_FILE
    if not src.is_file():
        raise StageError("the video run wrote no clip", video_run)
    published = atomic_copy(src, ctx.capture.exports_dir / CLIP_FILE)
    ctx.progress.log(f"published {published.name} to exports/")
    return {"files": {"mp4": published.name}}


STAGE = StageSpec(
    name="video", config_cls=VideoStageConfig, run=run, reuse=False,
    description="an H.264 MP4 of the textured model along a camera path (turntable, capture, fly)",
)

PUBLISH_STAGE = StageSpec(
    name="video-publish", config_cls=VideoPublishConfig, run=run_publish, requires=("video",), reuse=False,
    description="copy the video run's clip.mp4 into the capture's exports/ (temporary name, fsync, rename)",
)
