"""Depth-only frames of a transforms.json: ``"depth_only": true`` (our writer, whose file_path
is a stand-in picture) or no ``file_path`` at all beside a ``depth_file_path``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.capture import Frame
from core.errors import IngestError
from core.source_paths import copy_into, inside_root
from recon.ingest.common import IngestContext, frame_id
from recon.ingest.depth import metres_to_mm_png, read_raw_map
from recon.ingest.geometry import as_pose_tuple, check_pose, opengl_to_opencv
from recon.ingest.maps import map_size

DEPTH_ONLY_DIR = "depth/depth_only"  # unique by construction: no image-named depth map lives here


def is_depth_only(entry: dict[str, Any]) -> bool:
    return entry.get("depth_only") is True or (entry.get("file_path") is None
                                               and entry.get("depth_file_path") is not None)


def read_depth_only_entry(entry: dict[str, Any], base: Path, index: int, intrinsics: dict[str, Any],
                          unit: float, where: str, ctx: IngestContext) -> Frame:
    """The frame ``index`` of a depth-only entry; its depth is copied (16-bit PNG millimetres) or
    converted into ``depth/depth_only/``."""
    from recon.ingest.nerfstudio import parse_camera

    name = entry.get("depth_file_path")
    src = inside_root(base, name, f"{where}.depth_file_path")
    if not src.is_file():
        raise IngestError(f"depth map {name!r} of a depth-only frame is missing", f"{where}.depth_file_path")
    size = map_size(src, src)
    pose = opengl_to_opencv(check_pose(entry.get("transform_matrix"), f"{where}.transform_matrix"))
    camera = parse_camera({**intrinsics, **entry}, where, size)
    rel = f"{DEPTH_ONLY_DIR}/{frame_id(index)}.png"
    data = read_raw_map(src)
    if src.suffix.lower() == ".png" and data.dtype == np.uint16:
        copy_into(src, ctx.capture.root / rel)
        scale = unit
    else:
        metres_to_mm_png(data.astype(np.float64) * unit, ctx.capture.root / rel)
        scale = 0.001
    return Frame(id=frame_id(index), camera=camera, image=None, source_name=src.name,
                 pose=as_pose_tuple(pose), depth=rel, depth_scale=scale)
