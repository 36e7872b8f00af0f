"""Meshroom / AliceVision ``cameras.sfm`` (JSON SfMData) with the photos it names.

``views`` name each photo (``path``, an absolute path on the machine that ran Meshroom), its
``intrinsicId`` and ``poseId``; ``intrinsics`` give width, height, the focal length (``focalLength``
in mm with ``sensorWidth``, or ``pxFocalLength`` in pixels in older files), the principal point
(an offset from the image centre, or absolute pixels in older files) and ``distortionParams``;
``poses`` give ``rotation`` (9 numbers: the world-to-camera rotation stored column-major, so read
row by row it is camera-to-world) and ``center`` (the camera's position). Camera axes are
OpenCV's. Numbers may be written as strings. The paths are never followed: each photo is looked
up by its file name under the folder holding the .sfm (next to it, or in a sub-folder such as
images/). Meshroom has no metric scale, so the capture is unscaled; views without a pose are left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from core.capture import Camera, Frame
from core.errors import IngestError
from core.source_paths import copy_into
from recon.ingest.common import IngestContext, SourceResult, frame_id, natural_key
from recon.ingest.fields import finite, load_json_object, numbers, pixels, positive
from recon.ingest.geometry import as_pose_tuple, check_pose
from recon.ingest.originals import copy_photo, source_file
from recon.ingest.photo_files import photo_files

SFM_NAME = "cameras.sfm"
PINHOLE_TYPES = ("pinhole", "radial1", "radial3", "brown")


def sfm_file(root: Path) -> Path | None:
    """The cameras.sfm in ``root`` (or its only .sfm file), if there is one."""
    if (root / SFM_NAME).is_file():
        return root / SFM_NAME
    found = [p for p in root.glob("*.sfm") if p.is_file()]
    return found[0] if len(found) == 1 else None


def _pair(value: Any, where: str) -> tuple[float, float]:
    if isinstance(value, dict):
        x = finite(value.get("x"), f"{where}.x", strings=True)
        return x, finite(value.get("y"), f"{where}.y", strings=True)
    if isinstance(value, list):
        a, b = numbers(value, 2, where, strings=True)
        return a, b
    v = finite(value, where, strings=True)
    return v, v


def _camera(intr: dict[str, Any], where: str, warn: list[str]) -> Camera:
    width, height = pixels(intr.get("width"), f"{where}.width", strings=True), pixels(
        intr.get("height"), f"{where}.height", strings=True)
    kind = str(intr.get("type", "pinhole"))
    if kind not in PINHOLE_TYPES:
        raise IngestError(f"camera type {kind[:40]!r} is not supported ({', '.join(PINHOLE_TYPES)} are)",
                          f"{where}.type")
    sensor = intr.get("sensorWidth")
    if intr.get("focalLength") is not None and sensor is not None and finite(sensor, f"{where}.sensorWidth",
                                                                             strings=True) > 0:
        fx = positive(intr["focalLength"], f"{where}.focalLength", strings=True) * width / finite(
            sensor, f"{where}.sensorWidth", strings=True)
        fy = fx / positive(intr.get("pixelRatio", 1.0), f"{where}.pixelRatio", strings=True)
    elif intr.get("pxFocalLength") is not None:
        fx, fy = _pair(intr["pxFocalLength"], f"{where}.pxFocalLength")
        if fx <= 0 or fy <= 0:
            raise IngestError("focal length must be positive", f"{where}.pxFocalLength")
    else:
        raise IngestError("no focal length (focalLength with sensorWidth, or pxFocalLength)", where)
    px, py = _pair(intr.get("principalPoint", [0, 0]), f"{where}.principalPoint")
    if abs(px - width / 2) + abs(py - height / 2) >= abs(px) + abs(py):
        px, py = px + width / 2, py + height / 2  # an offset from the centre (newer files)
    dist = intr.get("distortionParams", [])
    if not isinstance(dist, list) or len(dist) > 6:
        raise IngestError("expected a list of up to 6 numbers", f"{where}.distortionParams")
    d = [finite(v, f"{where}.distortionParams[{i}]", strings=True) for i, v in enumerate(dist)]
    if kind == "brown":  # k1, k2, k3, t1, t2
        k1, k2, k3, p1, p2 = (d + [0.0] * 5)[:5]
    else:
        k1, k2, k3, p1, p2 = (d + [0.0] * 3)[0], (d + [0.0] * 3)[1], (d + [0.0] * 3)[2], 0.0, 0.0
    if k3:
        warn.append(f"{where}: k3 = {k3:g} is left out (the capture format keeps k1, k2, p1, p2)")
    dist4 = (k1, k2, p1, p2)
    return Camera(width=width, height=height, fx=fx, fy=fy, cx=px, cy=py,
                  model="OPENCV" if any(dist4) else "PINHOLE", distortion=dist4 if any(dist4) else ())


def _pose(entry: dict[str, Any], where: str) -> np.ndarray:
    transform = entry.get("pose", {}).get("transform") if isinstance(entry.get("pose"), dict) else None
    if not isinstance(transform, dict):
        raise IngestError("expected pose.transform with rotation and center", where)
    rotation = numbers(transform.get("rotation"), 9, f"{where}.pose.transform.rotation", strings=True)
    center = numbers(transform.get("center"), 3, f"{where}.pose.transform.center", strings=True)
    if any(abs(c) > 1e9 for c in center):
        raise IngestError("camera centre is out of range", f"{where}.pose.transform.center")
    c2w = np.eye(4)
    c2w[:3, :3] = np.asarray(rotation).reshape(3, 3)
    c2w[:3, 3] = center
    return check_pose(c2w, f"{where}.pose.transform")


def _by_id(items: Any, key: str, where: str) -> dict[str, dict[str, Any]]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise IngestError("expected a list", where)
    out = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or key not in item:
            raise IngestError(f"expected an object with {key}", f"{where}[{i}]")
        out[str(item[key])] = item
    return out


def _photo_index(root: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for p in photo_files(root):
        index.setdefault(p.name.lower(), []).append(p)
    return index


def read_meshroom(sfm: Path, ctx: IngestContext) -> SourceResult:
    root = sfm.parent
    data = load_json_object(source_file(root, sfm))
    views = data.get("views")
    if not isinstance(views, list) or not views:
        raise IngestError("expected a non-empty list of views", f"{sfm}: views")
    intrinsics = _by_id(data.get("intrinsics"), "intrinsicId", f"{sfm}: intrinsics")
    poses = _by_id(data.get("poses"), "poseId", f"{sfm}: poses")
    photos = _photo_index(root)
    warnings: list[str] = []
    cameras: dict[str, Camera] = {}
    chosen: list[tuple[str, Path, Camera, np.ndarray]] = []
    missing: list[str] = []
    unposed = 0
    for i, view in enumerate(views):
        where = f"{sfm}: views[{i}]"
        if not isinstance(view, dict) or not isinstance(view.get("path"), str):
            raise IngestError("expected an object with a path", where)
        name = re.split(r"[\\/]", view["path"])[-1]
        pose_id, intr_id = str(view.get("poseId")), str(view.get("intrinsicId"))
        if pose_id not in poses:
            unposed += 1
            continue
        if intr_id not in intrinsics:
            raise IngestError(f"names intrinsicId {intr_id[:40]}, which is not in intrinsics", where)
        hits = photos.get(name.lower(), [])
        if len(hits) > 1:
            raise IngestError(f"{name!r} matches {len(hits)} files under {root}; keep one", where)
        if not hits:
            missing.append(name)
            continue
        if intr_id not in cameras:
            idx = list(intrinsics).index(intr_id)
            cameras[intr_id] = _camera(intrinsics[intr_id], f"{sfm}: intrinsics[{idx}]", warnings)
        pose = _pose(poses[pose_id], f"{sfm}: poses[{list(poses).index(pose_id)}]")
        chosen.append((name, hits[0], cameras[intr_id], pose))
    for w in warnings:
        ctx.progress.warning(w)
    if missing:
        ctx.progress.warning(f"{len(missing)} posed view(s) have no photo under {root}: "
                             f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if unposed:
        ctx.progress.log(f"{unposed} view(s) without a pose left out")
    if not chosen:
        raise IngestError("no posed view has its photo next to the .sfm (looked up by file name)", sfm)
    chosen.sort(key=lambda c: natural_key(c[0]))
    frames: list[Frame] = []
    for n, (_, src, camera, pose) in enumerate(chosen):
        source_file(root, src)
        copied, size = copy_photo(src, ctx.capture.images_dir / frame_id(n))
        name = copied.name
        if size != (camera.width, camera.height):
            camera = camera.scaled(*size)
        frames.append(Frame(id=frame_id(n), camera=camera, image=f"images/{name}", source_name=src.name,
                            pose=as_pose_tuple(pose)))
        ctx.progress.update((n + 1) / len(chosen), f"view {n + 1}/{len(chosen)}: {src.name}")
    if ctx.originals_to_raw:
        copy_into(sfm, ctx.capture.raw_dir / sfm.name)
    return SourceResult(
        kind="meshroom",
        frames=tuple(frames),
        scale="unscaled",
        info={"app": "Meshroom", "views": len(views), "posed": len(chosen) + len(missing),
              "missing_frames": missing},
    )
