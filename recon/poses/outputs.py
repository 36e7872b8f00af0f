"""The stage's outputs: sparse/0 (COLMAP binary), sparse.ply, transforms.json, poses.json.

Poses here are OpenCV camera-to-world 4x4 (x right, y down, z forward), like capture.json;
transforms.json holds them in nerfstudio's OpenGL convention (x right, y up, z back).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pycolmap

from core.fsio import atomic_write_json, atomic_writer

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])  # flips the camera's y and z axes


@dataclass(frozen=True)
class PosedFrame:
    frame_id: str
    name: str | None  # image path inside the capture; None for a depth-only frame
    source_name: str | None
    c2w: np.ndarray  # (4, 4) OpenCV camera-to-world
    camera: dict[str, Any]  # nerfstudio intrinsics keys, see camera_json
    depth: str | None = None  # depth map path inside the capture
    depth_scale: float = 0.001  # metres per depth unit


def c2w_from_image(image: pycolmap.Image) -> np.ndarray:
    """(4, 4) OpenCV camera-to-world of a registered COLMAP image."""
    c2w = np.eye(4)
    c2w[:3, :] = image.cam_from_world().inverse().matrix()
    return c2w


def camera_json(cam: pycolmap.Camera) -> dict[str, Any]:
    """nerfstudio intrinsics (OPENCV model keys; OPENCV_FISHEYE's k1..k4 for a fisheye) of a COLMAP
    pinhole-family or OpenCV fisheye camera."""
    p = [float(x) for x in cam.params]
    model = cam.model_name
    k1 = k2 = p1 = p2 = 0.0
    if model == "SIMPLE_PINHOLE":
        fx = fy = p[0]
        cx, cy = p[1], p[2]
    elif model == "PINHOLE":
        fx, fy, cx, cy = p[:4]
    elif model == "SIMPLE_RADIAL":
        fx = fy = p[0]
        cx, cy, k1 = p[1], p[2], p[3]
    elif model == "RADIAL":
        fx = fy = p[0]
        cx, cy, k1, k2 = p[1], p[2], p[3], p[4]
    elif model == "OPENCV":
        fx, fy, cx, cy, k1, k2, p1, p2 = p[:8]
    elif model == "OPENCV_FISHEYE":
        fx, fy, cx, cy = p[:4]
        return {"camera_model": model, "w": int(cam.width), "h": int(cam.height), "fl_x": fx, "fl_y": fy,
                "cx": cx, "cy": cy, "k1": p[4], "k2": p[5], "k3": p[6], "k4": p[7]}
    else:
        raise ValueError(f"camera model {model} is not supported in transforms.json")
    return {
        "camera_model": "OPENCV", "w": int(cam.width), "h": int(cam.height),
        "fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "k1": k1, "k2": k2, "p1": p1, "p2": p2,
    }


def write_model(reconstruction: pycolmap.Reconstruction, out_dir: Path) -> Path:
    """sparse/0/ in COLMAP binary format, written beside and renamed into place."""
    final = out_dir / "sparse" / "0"
    staging = out_dir / "sparse" / ".0.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    reconstruction.write(staging)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    return final


def model_points(reconstruction: pycolmap.Reconstruction) -> tuple[np.ndarray, np.ndarray]:
    """-> xyz (N, 3) float64, rgb (N, 3) uint8"""
    points = reconstruction.points3D
    if not len(points):
        return np.zeros((0, 3)), np.zeros((0, 3), np.uint8)
    xyz = np.array([p.xyz for p in points.values()], dtype=np.float64)
    rgb = np.array([p.color for p in points.values()], dtype=np.uint8)
    return xyz, rgb


def write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> Path:
    """Binary little-endian PLY with float x, y, z and uchar red, green, blue.

    xyz: (N, 3), rgb: (N, 3) uint8
    """
    vertex = np.zeros(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                       ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(xyz)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        "end_header\n"
    )
    with atomic_writer(path) as f:
        f.write(header.encode("ascii"))
        f.write(vertex.tobytes())
    return path


def transforms_json(
    posed: Sequence[PosedFrame], capture_root: Path, relative_to: Path, ply_name: str | None,
    *, scale: str = "unscaled", depth_previews: dict[str, str] | None = None,
) -> dict[str, Any]:
    """nerfstudio transforms.json; file paths are relative to ``relative_to``.

    ``"scale": "metric"`` (read by our importer) says poses are in metres; depth maps come with
    ``depth_unit_scale_factor``. A depth-only frame names its picture in ``depth_previews``
    ({frame id: path relative to ``relative_to``}) as file_path and says ``"depth_only": true``.
    """
    depth_previews = depth_previews or {}
    cameras = {tuple(sorted(p.camera.items())) for p in posed}
    shared = dict(next(iter(cameras))) if len(cameras) == 1 else None
    frames = []
    for p in posed:
        entry: dict[str, Any] = {}
        if p.name is not None:
            entry["file_path"] = os.path.relpath(capture_root / p.name, relative_to)
        elif p.frame_id in depth_previews:
            entry["file_path"] = depth_previews[p.frame_id]
            entry["depth_only"] = True
        if p.depth is not None:
            entry["depth_file_path"] = os.path.relpath(capture_root / p.depth, relative_to)
        entry["transform_matrix"] = (p.c2w @ OPENCV_TO_OPENGL).tolist()
        entry["frame_id"] = p.frame_id
        if p.source_name:
            entry["source_name"] = p.source_name
        if shared is None:
            entry.update(p.camera)
        frames.append(entry)
    out: dict[str, Any] = dict(shared) if shared else {"camera_model": "OPENCV"}
    if ply_name:
        out["ply_file_path"] = ply_name
    if scale == "metric":
        out["scale"] = "metric"
    depth_scales = [p.depth_scale for p in posed if p.depth is not None]
    if depth_scales:
        out["depth_unit_scale_factor"] = max(set(depth_scales), key=depth_scales.count)
    out["frames"] = frames
    return out


def write_outputs(
    out_dir: Path,
    capture_root: Path,
    posed: Sequence[PosedFrame],
    xyz: np.ndarray,
    rgb: np.ndarray,
    summary: dict[str, Any],
) -> dict[str, Path]:
    """Write sparse.ply, transforms.json and poses.json into ``out_dir``; returns their paths.

    ``summary`` holds the registered/total/fraction/attempts/unregistered fields of poses.json.
    """
    from recon.poses.depth_previews import write_depth_previews

    ply = write_ply(out_dir / "sparse.ply", xyz, rgb)
    previews = write_depth_previews(out_dir, capture_root, posed)
    transforms = atomic_write_json(
        out_dir / "transforms.json",
        transforms_json(posed, capture_root, out_dir, ply.name, scale=summary.get("scale", "unscaled"),
                        depth_previews=previews),
    )
    poses = atomic_write_json(out_dir / "poses.json", {
        "convention": "OpenCV camera-to-world (x right, y down, z forward)",
        **summary,
        "frames": [
            {"id": p.frame_id, "image": p.name, "depth": p.depth, "source_name": p.source_name,
             "c2w": p.c2w.tolist(), "camera": p.camera}
            for p in posed
        ],
    })
    return {"sparse_ply": ply, "transforms": transforms, "poses": poses}
