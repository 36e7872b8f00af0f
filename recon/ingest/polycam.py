"""Polycam raw exports ("raw data" of a LiDAR or photo capture): posed keyframes with LiDAR depth.

Layout::

    keyframes/images/<stem>.jpg          colour
    keyframes/cameras/<stem>.json        fx, fy, cx, cy, width, height (pixels of the colour image),
                                         t_00 .. t_23: the 3x4 camera-to-world pose, rows t_0*, t_1*,
                                         t_2*, ARKit world (metres, y up) and camera axes (x right,
                                         y up, z back); optional blur_score, timestamp
    keyframes/depth/<stem>.png           16-bit millimetres, smaller than the colour (256x192)
    keyframes/confidence/<stem>.png      8-bit: ARKit levels 0..2 (or 0/128/255)
    keyframes/corrected_images/, corrected_cameras/   Polycam's refined copies, preferred when present

Poses are metric, so the capture is; with depth it is an RGB-D capture for fusion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.capture import Camera, Frame
from core.errors import IngestError
from core.source_paths import copy_into
from recon.ingest.common import (
    IMAGE_SUFFIXES,
    IngestContext,
    SourceResult,
    even_subsample,
    files_with_suffix,
    frame_id,
)
from recon.ingest.depth import read_raw_map
from recon.ingest.fields import finite, load_json_object, pixels, positive
from recon.ingest.geometry import as_pose_tuple, check_pose, opengl_to_opencv
from recon.ingest.maps import map_size, read_mm_depth_png, write_confidence
from recon.ingest.originals import copy_photo, copy_tree_into, source_file

KEYFRAMES = "keyframes"
FOLDER_PAIRS = (("corrected_images", "corrected_cameras"), ("images", "cameras"))
POSE_KEYS = tuple(f"t_{r}{c}" for r in range(3) for c in range(4))


def keyframes_dir(root: Path) -> Path | None:
    """The keyframes folder of a Polycam raw export at ``root`` (or ``root`` itself), if it is one."""
    for kf in (root / KEYFRAMES, root):
        if not kf.is_dir():
            continue
        for images, cameras in FOLDER_PAIRS:
            if (kf / images).is_dir() and (kf / cameras).is_dir() and any((kf / cameras).glob("*.json")):
                return kf
    return None


def is_polycam_export(root: Path) -> bool:
    return keyframes_dir(root) is not None


def parse_camera_json(data: dict[str, Any], where: str) -> tuple[Camera, np.ndarray]:
    """Intrinsics and the OpenCV camera-to-world pose [4, 4] from one cameras/<stem>.json."""

    def field(key: str) -> Any:
        if key not in data:
            raise IngestError("missing", f"{where}: {key}")
        return data[key]

    width, height = pixels(field("width"), f"{where}: width"), pixels(field("height"), f"{where}: height")
    fx, fy = positive(field("fx"), f"{where}: fx"), positive(field("fy"), f"{where}: fy")
    cx = finite(field("cx"), f"{where}: cx", lo=-width, hi=2 * width)
    cy = finite(field("cy"), f"{where}: cy", lo=-height, hi=2 * height)
    rows = [[finite(field(f"t_{r}{c}"), f"{where}: t_{r}{c}", lo=-1e6, hi=1e6) for c in range(4)]
            for r in range(3)]
    pose = check_pose(rows, f"{where}: t_00..t_23")
    return Camera(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy), opengl_to_opencv(pose)


def _folders(kf: Path) -> tuple[Path, Path]:
    for images, cameras in FOLDER_PAIRS:
        if (kf / images).is_dir() and (kf / cameras).is_dir():
            return kf / images, kf / cameras
    raise IngestError("not a Polycam raw export (no keyframes/images and keyframes/cameras)", kf)


def read_polycam(root: Path, ctx: IngestContext) -> SourceResult:
    kf = keyframes_dir(root)
    if kf is None:
        raise IngestError("not a Polycam raw export (no keyframes/images and keyframes/cameras)", root)
    images_dir, cameras_dir = _folders(kf)
    images = files_with_suffix(images_dir, IMAGE_SUFFIXES, recursive=False)
    if not images:
        raise IngestError("holds no images", images_dir)
    paired = []
    for image in images:
        cam_json = cameras_dir / f"{image.stem}.json"
        if cam_json.is_file():
            paired.append((image, cam_json))
        else:
            ctx.progress.warning(f"skipping {image.name}: {cameras_dir.name}/{cam_json.name} is missing")
    if not paired:
        raise IngestError("no image has its camera file", cameras_dir)
    chosen = [paired[i] for i in even_subsample(len(paired), ctx.target_frames)]
    frames: list[Frame] = []
    with_depth = 0
    for n, (image, cam_json) in enumerate(chosen):
        source_file(root, image)
        cam_data = load_json_object(source_file(root, cam_json))
        camera, pose = parse_camera_json(cam_data, str(cam_json))
        index = len(frames)
        copied, size = copy_photo(image, ctx.capture.images_dir / frame_id(index))
        name = copied.name
        if size != (camera.width, camera.height):
            camera = camera.scaled(*size)
        depth_rel = conf_rel = None
        depth_src = kf / "depth" / f"{image.stem}.png"
        if depth_src.is_file():
            depth = read_mm_depth_png(source_file(root, depth_src))
            depth_rel = f"depth/{frame_id(index)}.png"
            copy_into(depth_src, ctx.capture.root / depth_rel)
            with_depth += 1
            conf_src = kf / "confidence" / f"{image.stem}.png"
            if conf_src.is_file():
                map_size(source_file(root, conf_src))
                conf = read_raw_map(conf_src)
                if conf.shape != depth.shape:
                    raise IngestError(f"confidence is {conf.shape[1]}x{conf.shape[0]}, depth is "
                                      f"{depth.shape[1]}x{depth.shape[0]}", conf_src)
                conf_rel = f"confidence/{frame_id(index)}.png"
                write_confidence(conf, ctx.capture.root / conf_rel)
        stamp = cam_data.get("timestamp")
        frames.append(Frame(id=frame_id(index), camera=camera, image=f"images/{name}", source_name=image.name,
                            pose=as_pose_tuple(pose), depth=depth_rel, depth_scale=0.001,
                            confidence=conf_rel,
                            timestamp=None if stamp is None else finite(stamp, f"{cam_json}: timestamp")))
        ctx.progress.update((n + 1) / len(chosen), f"keyframe {n + 1}/{len(chosen)}: {image.name}")
    if ctx.originals_to_raw:
        copy_tree_into(root, ctx.capture.raw_dir)
    return SourceResult(
        kind="polycam",
        frames=tuple(frames),
        default_mode="rgbd" if with_depth else "import",
        scale="metric",
        info={"app": "Polycam", "keyframes": len(paired), "with_depth": with_depth,
              "corrected": images_dir.name.startswith("corrected")},
    )
