"""COLMAP models (``sparse/0`` in .bin or .txt, with or without rigs/frames) with their images.

The registered images become frames with COLMAP's poses and calibrated intrinsics, so the poses
stage keeps them (it runs SfM only when asked to ignore them). A COLMAP model has no metric
scale, so the capture is unscaled. Layouts found: ``<root>/sparse/<n>/`` (the largest model
when there are several) or ``<root>/sparse/`` beside ``<root>/images/``, or the model files in
``<root>`` itself; image names resolve under ``images/`` first, then ``<root>``.
"""

from __future__ import annotations

from pathlib import Path

from core.capture import Camera, Frame
from core.errors import IngestError
from core.source_paths import copy_into, inside_root
from recon.ingest.colmap_model import ColmapCamera, model_files, read_model
from recon.ingest.common import IngestContext, SourceResult, frame_id, natural_key
from recon.ingest.geometry import as_pose_tuple
from recon.ingest.originals import copy_photo, source_file

IMAGE_FOLDERS = ("images", ".")
MODEL_FILE_STEMS = ("cameras", "images", "points3D", "rigs", "frames", "project")


def _model_dirs(root: Path) -> list[Path]:
    sparse = root / "sparse"
    dirs: list[Path] = []
    if sparse.is_dir():
        numbered = [p for p in sparse.iterdir() if p.is_dir() and p.name.isdigit()]
        dirs += sorted(numbered, key=lambda p: int(p.name))
        dirs.append(sparse)
    dirs.append(root)
    return [d for d in dirs if model_files(d) is not None]


# COLMAP's fisheye models as (fx, fy, cx, cy, (k1, ...)) of OpenCV's fisheye model.
FISHEYE_PARAMS = {
    "OPENCV_FISHEYE": lambda p: (p[0], p[1], p[2], p[3], tuple(p[4:8])),
    "SIMPLE_RADIAL_FISHEYE": lambda p: (p[0], p[0], p[1], p[2], (p[3],)),
    "RADIAL_FISHEYE": lambda p: (p[0], p[0], p[1], p[2], (p[3], p[4])),
}


def is_colmap_model(root: Path) -> bool:
    return root.is_dir() and bool(_model_dirs(root))


def to_camera(cam: ColmapCamera, where: str) -> Camera:
    """Our camera (PINHOLE, OPENCV k1, k2, p1, p2 or OPENCV_FISHEYE k1..k4) of a COLMAP one;
    other models are refused."""
    camera = _pinhole_family(cam, where)
    if camera.fx <= 0 or camera.fy <= 0:
        raise IngestError(f"focal length must be positive, got {camera.fx:g}, {camera.fy:g}", where)
    if not (-cam.width <= camera.cx <= 2 * cam.width and -cam.height <= camera.cy <= 2 * cam.height):
        raise IngestError(f"principal point ({camera.cx:g}, {camera.cy:g}) is far outside the image", where)
    return camera


def _pinhole_family(cam: ColmapCamera, where: str) -> Camera:
    p = cam.params
    size = {"width": cam.width, "height": cam.height}
    if cam.model == "SIMPLE_PINHOLE":
        return Camera(**size, fx=p[0], fy=p[0], cx=p[1], cy=p[2])
    if cam.model == "PINHOLE":
        return Camera(**size, fx=p[0], fy=p[1], cx=p[2], cy=p[3])
    if cam.model in ("SIMPLE_RADIAL", "RADIAL", "OPENCV") or (cam.model == "FULL_OPENCV" and not any(p[8:])):
        if cam.model == "SIMPLE_RADIAL":
            f, cx, cy, k1, k2, p1, p2 = p[0], p[1], p[2], p[3], 0.0, 0.0, 0.0
            fx = fy = f
        elif cam.model == "RADIAL":
            fx = fy = p[0]
            cx, cy, k1, k2, p1, p2 = p[1], p[2], p[3], p[4], 0.0, 0.0
        else:
            fx, fy, cx, cy, k1, k2, p1, p2 = p[:8]
        dist = (k1, k2, p1, p2)
        return Camera(**size, fx=fx, fy=fy, cx=cx, cy=cy,
                      model="OPENCV" if any(dist) else "PINHOLE", distortion=dist if any(dist) else ())
    if cam.model in FISHEYE_PARAMS:  # theta_d = theta (1 + k1 theta^2 + ...): one model, fewer terms
        fx, fy, cx, cy, fisheye = FISHEYE_PARAMS[cam.model](p)
        fisheye = (*fisheye, 0.0, 0.0, 0.0, 0.0)[:4]
        return Camera(**size, fx=fx, fy=fy, cx=cx, cy=cy, model="OPENCV_FISHEYE", distortion=fisheye)
    raise IngestError(f"camera model {cam.model} is not supported (pinhole, radial, OPENCV and the "
                      "OPENCV, simple and radial fisheye models are)", where)



def read_colmap(root: Path, ctx: IngestContext) -> SourceResult:
    dirs = _model_dirs(root)
    if not dirs:
        raise IngestError("not a COLMAP model (no cameras and images .bin or .txt files)", root)
    models = []
    for d in dirs:
        cameras_path, images_path = model_files(d)  # type: ignore[misc]
        source_file(root, cameras_path)
        source_file(root, images_path)
        models.append((d, cameras_path, *read_model(cameras_path, images_path)))
    model_dir, cameras_path, cameras, images = max(models, key=lambda m: len(m[3]))
    if len(models) > 1:
        shown = model_dir.relative_to(root).as_posix() or "."
        ctx.progress.log(f"{len(models)} COLMAP models; reading {shown}, which registered the most images "
                         f"({len(images)})")
    if not images:
        raise IngestError("the model has no registered images", cameras_path.parent)
    images = sorted(images, key=lambda im: natural_key(im.name))
    frames: list[Frame] = []
    missing: list[str] = []
    for n, im in enumerate(images):
        where = f"{cameras_path.parent / ('images' + cameras_path.suffix)}: {im.name}"
        src = None
        for folder in IMAGE_FOLDERS:
            candidate = inside_root(root, f"{folder}/{im.name}" if folder != "." else im.name, where)
            if candidate.is_file():
                src = candidate
                break
        if src is None:
            missing.append(im.name)
            ctx.progress.warning(f"skipping {im.name}: registered in the model but not found in images/")
            continue
        camera = to_camera(cameras[im.camera_id], f"{cameras_path}: camera {im.camera_id}")
        index = len(frames)
        copied, size = copy_photo(src, ctx.capture.images_dir / frame_id(index))
        name = copied.name
        if size != (camera.width, camera.height):
            camera = camera.scaled(*size)
        frames.append(Frame(id=frame_id(index), camera=camera, image=f"images/{name}", source_name=src.name,
                            pose=as_pose_tuple(im.c2w)))
        ctx.progress.update((n + 1) / len(images), f"image {n + 1}/{len(images)}: {im.name}")
    if not frames:
        raise IngestError(f"none of the {len(images)} registered images was found", root / "images")
    if ctx.originals_to_raw:
        for f in sorted(model_dir.iterdir()):
            if f.is_file() and f.stem in MODEL_FILE_STEMS:
                copy_into(source_file(root, f), ctx.capture.raw_dir / "sparse" / f.name)
    return SourceResult(
        kind="colmap",
        frames=tuple(frames),
        scale="unscaled",
        info={"app": "COLMAP", "model": model_dir.relative_to(root).as_posix() or ".",
              "format": cameras_path.suffix.lstrip("."), "registered": len(images),
              "missing_frames": missing},
    )
