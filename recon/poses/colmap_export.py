"""A poses run's COLMAP model, undistorted: PINHOLE cameras and resampled images, for tools that
take only pinhole cameras (3D Gaussian Splatting and its descendants read ``images/`` and
``sparse/0/``).

Each image is resampled as the pinhole camera with its lens's focal lengths and principal point
(recon.lens; fisheye views keep their centre), each observation moves to where that pinhole sees
it, and poses and 3D points stay as they are. The folder is built beside the target and renamed
into place, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from core.errors import InputError, StageError
from core.source_paths import inside_root
from recon.lens import undistort_image
from recon.posed import camera_from_nerfstudio
from recon.poses.outputs import camera_json

JPEG_QUALITY = 95


def export_undistorted_colmap(run_dir: Path, capture_root: Path, out_dir: Path) -> Path:
    """Write ``out_dir`` (new, or an empty folder) with ``images/`` and ``sparse/0/`` (COLMAP text
    files, every camera PINHOLE) from the poses run ``run_dir``; returns ``out_dir/sparse/0``."""
    import pycolmap

    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError("already exists and is not an empty folder", out_dir)
    model_dir = Path(run_dir) / "sparse" / "0"
    if not model_dir.is_dir():
        raise StageError("the poses run has no COLMAP model", model_dir)
    model = pycolmap.Reconstruction(str(model_dir))
    staging = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "images").mkdir(parents=True)
    try:
        _undistort_model(model, Path(capture_root), staging / "images")
        (staging / "sparse" / "0").mkdir(parents=True)
        model.write_text(str(staging / "sparse" / "0"))
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / "sparse" / "0"


def _undistort_model(model: object, capture_root: Path, images_out: Path) -> None:
    """Resample every registered image into ``images_out`` and turn ``model`` (a
    pycolmap.Reconstruction, changed in place) into its undistorted PINHOLE form."""
    import pycolmap

    pinholes = {}
    names: set[str] = set()
    for image_id in sorted(model.reg_image_ids()):  # type: ignore[attr-defined]
        image = model.image(image_id)  # type: ignore[attr-defined]
        lens = model.camera(image.camera_id)  # type: ignore[attr-defined]
        src = inside_root(capture_root, image.name, f"image {image.name}")
        pixels = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if pixels is None:
            raise InputError("cannot read this image", src)
        try:
            camera = camera_from_nerfstudio(camera_json(lens), f"camera {image.camera_id}")
        except ValueError as e:  # a lens model we cannot resample
            raise InputError(str(e), f"camera {image.camera_id}") from None
        h, w = pixels.shape[:2]
        if (w, h) != (camera.width, camera.height):
            camera = camera.scaled(w, h)
        undistorted, pin = undistort_image(pixels, camera)
        name = Path(image.name).name
        if name in names:
            raise InputError(f"two registered images are named {name}", f"image {image.name}")
        names.add(name)
        params = ([cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if src.suffix.lower() in (".jpg", ".jpeg") else [])
        if not cv2.imwrite(str(images_out / name), undistorted, params):
            raise InputError("cannot write the undistorted image", images_out / name)
        # Observations: through the lens to a viewing ray, then onto the pinhole image.
        points = image.points2D
        if len(points):
            xy = np.array([p.xy for p in points], np.float64)
            rays = np.asarray(lens.cam_from_img(xy), np.float64)  # (P, 2) normalised, at the lens's size
            moved = np.column_stack([pin.fx * rays[:, 0] + pin.cx, pin.fy * rays[:, 1] + pin.cy])
            for point, new_xy in zip(points, moved, strict=True):
                point.xy = new_xy
        image.name = name
        key = image.camera_id
        pinhole = (pin.width, pin.height, pin.fx, pin.fy, pin.cx, pin.cy)
        if pinholes.setdefault(key, pinhole) != pinhole:
            raise InputError("one camera is used by images of different sizes", f"camera {key}")
    for key, (w, h, fx, fy, cx, cy) in pinholes.items():
        camera = model.camera(key)  # type: ignore[attr-defined]
        camera.model = pycolmap.CameraModelId.PINHOLE
        camera.width, camera.height = w, h
        camera.params = [fx, fy, cx, cy]
