"""Rendered views to disk as a nerfstudio dataset that recon.ingest reads like any other.

Layout (all paths relative to the folder):

    transforms.json     nerfstudio keys: shared intrinsics, per frame file_path,
                        transform_matrix (OpenGL camera-to-world), depth_file_path, mask_path
    images/frame_00000.jpg   (or .png)
    depth/frame_00000.png    16-bit millimetres, 0 = no hit   (only with depth)
    masks/frame_00000.png    8-bit, 255 = object

Poses and depth are metric (metres; depth in mm). The folder is written under a hidden
staging name and renamed into place when complete, so a failure leaves nothing behind.
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.errors import InputError
from core.fsio import publish_dir
from recon.sample.scene import OBJECT_BOUNDS, OBJECT_HEIGHT_M, RenderedView, render_view

TRANSFORMS_NAME = "transforms.json"
IMAGE_FORMATS = ("jpg", "png")
MAX_DEPTH_MM = 65535
# OpenCV (x right, y down, z forward) <-> OpenGL / nerfstudio (x right, y up, z backward).
_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world in OpenCV axes to nerfstudio's OpenGL axes (the inverse is the same map).

    c2w: (4, 4) -> (4, 4)
    """
    return c2w @ _FLIP_YZ


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """Metres to 16-bit millimetres, 0 where there is no depth or it does not fit.

    depth_m: (H, W) float -> (H, W) uint16
    """
    mm = np.rint(np.nan_to_num(depth_m.astype(np.float64), nan=0.0, posinf=0.0) * 1000.0)
    return np.where((mm > 0) & (mm <= MAX_DEPTH_MM), mm, 0).astype(np.uint16)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _image_bytes(rgb: np.ndarray, image_format: str, jpeg_quality: int) -> bytes:
    if image_format == "png":
        return _png(rgb)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=jpeg_quality, subsampling=0)
    return buf.getvalue()


def transforms_json(
    views: Sequence[RenderedView], names: Sequence[tuple[str, str]], *, with_depth: bool
) -> dict[str, Any]:
    """The transforms.json content for ``views`` whose files are ``names``: (image name, stem)."""
    cam = views[0].camera
    frames = []
    for view, (image_name, stem) in zip(views, names, strict=True):
        frame: dict[str, Any] = {
            "file_path": f"images/{image_name}",
            "transform_matrix": opencv_to_opengl(view.c2w).tolist(),
            "mask_path": f"masks/{stem}.png",
        }
        if with_depth:
            frame["depth_file_path"] = f"depth/{stem}.png"
        frames.append(frame)
    return {
        "camera_model": "OPENCV",
        "fl_x": cam.fx, "fl_y": cam.fy, "cx": cam.cx, "cy": cam.cy, "w": cam.width, "h": cam.height,
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        "depth_unit_scale_factor": 0.001,
        "frames": frames,
        # Not nerfstudio keys; readers that do not know them ignore them. "scale" uses the
        # capture manifest's word for it: poses and depth are in metres.
        "scale": "metric",
        "scanbridge_sample": {
            "generator": "recon.sample (procedural scene, ray cast with numpy)",
            "units": "metres", "world": "+Y up, ground plane y = 0, object at the origin",
            "object_height_m": OBJECT_HEIGHT_M,
            "object_bounds_m": [list(OBJECT_BOUNDS[0]), list(OBJECT_BOUNDS[1])],
        },
    }


def write_capture_folder(
    views: Sequence[RenderedView],
    out_dir: Path,
    *,
    with_depth: bool,
    image_format: str = "jpg",
    jpeg_quality: int = 90,
    depth_size: tuple[int, int] | None = None,
) -> Path:
    """Write ``views`` as a nerfstudio dataset in the new folder ``out_dir``; returns ``out_dir``.

    ``out_dir`` must not exist yet (or be an empty folder): nothing already stored is replaced.
    ``depth_size`` = (width, height) writes depth at another resolution than the photos, as a
    phone's LiDAR does (ARKit: 256 x 192); it is rendered at that size, so it is exact there.
    """
    out_dir = Path(out_dir)
    if not views:
        raise InputError("no views to write", out_dir)
    if image_format not in IMAGE_FORMATS:
        raise InputError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}",
                         out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError("already exists and is not an empty folder; not overwriting it", out_dir)
    if depth_size is not None and (len(depth_size) != 2 or min(depth_size) < 1):
        raise InputError(f"depth size must be (width, height) in pixels, got {depth_size!r}", out_dir)
    cams = {v.camera for v in views}
    if len(cams) != 1:
        raise InputError("all views must share one camera (transforms.json has one set of intrinsics)",
                         out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.staging-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        for sub in ("images", "masks", *(("depth",) if with_depth else ())):
            (staging / sub).mkdir()
        names = []
        for i, view in enumerate(views):
            stem = f"frame_{i:05d}"
            image_name = f"{stem}.{image_format}"
            names.append((image_name, stem))
            (staging / "images" / image_name).write_bytes(_image_bytes(view.rgb, image_format, jpeg_quality))
            mask = np.where(view.mask, 255, 0).astype(np.uint8)
            (staging / "masks" / f"{stem}.png").write_bytes(_png(mask))
            if with_depth:
                depth = view.depth_m
                if depth_size is not None and depth_size != (view.camera.width, view.camera.height):
                    depth = render_view(view.camera.scaled(*depth_size), view.c2w).depth_m
                (staging / "depth" / f"{stem}.png").write_bytes(_png(depth_to_mm(depth)))
        transforms = transforms_json(views, names, with_depth=with_depth)
        (staging / TRANSFORMS_NAME).write_text(json.dumps(transforms, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()  # checked empty above
        return publish_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
