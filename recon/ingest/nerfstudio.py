"""nerfstudio / instant-ngp datasets: a transforms.json with OpenGL camera-to-world poses.

Intrinsics come from the top level and may be overridden per frame. Frames whose image is
missing on disk are skipped with a warning naming each (instant-ngp's fox lists 17 of them).
Poses are not metric unless the file says so (a top-level ``"scale": "metric"``, which
our own writers add): otherwise the capture is marked unscaled.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from core.capture import Camera, Frame
from core.errors import IngestError
from core.source_paths import inside_root
from recon.ingest.common import (
    IngestContext,
    RawMirror,
    SourceResult,
    copy_file,
    frame_id,
    load_json,
    unique_name,
)
from recon.ingest.depth import metres_to_mm_png, read_raw_map, write_uint8_png, write_uint16_png
from recon.ingest.depth_agreement import judge_depth_scale
from recon.ingest.geometry import as_pose_tuple, check_pose, opengl_to_opencv
from recon.ingest.images import open_image
from recon.ingest.nerfstudio_depth_only import is_depth_only, read_depth_only_entry

TRANSFORMS_NAME = "transforms.json"
INTRINSIC_KEYS = (
    "fl_x",
    "fl_y",
    "cx",
    "cy",
    "w",
    "h",
    "k1",
    "k2",
    "k3",
    "k4",
    "p1",
    "p2",
    "camera_model",
    "camera_angle_x",
    "camera_angle_y",
)
DEFAULT_DEPTH_UNIT = 1e-3  # nerfstudio's depth_unit_scale_factor: stored values are millimetres
PINHOLE_MODELS = ("PINHOLE", "SIMPLE_PINHOLE")
FISHEYE = "OPENCV_FISHEYE"
# Extensions tried for Blender-style file paths that omit them ("./train/r_0").
IMPLIED_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_PIXELS_SIDE = 1 << 16  # w, h
MAX_FOCAL = 1e7  # pixels
MAX_DISTORTION = 1e3  # |k1|, |k2|, |p1|, |p2|; real lenses are well under 1
MAX_FRAMES = 100_000


def _number(d: dict[str, Any], key: str, where: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise IngestError(f"expected a finite number, got {v!r}", f"{where}.{key}")
    return float(v)


def _size(d: dict[str, Any], key: str, where: str) -> int | None:
    v = _number(d, key, where)
    if v is None:
        return None
    if v <= 0 or v != int(v) or v > MAX_PIXELS_SIDE:
        reason = f"expected a positive whole number of pixels (at most {MAX_PIXELS_SIDE}), got {v!r}"
        raise IngestError(reason, f"{where}.{key}")
    return int(v)


def parse_camera(d: dict[str, Any], where: str, image_size: tuple[int, int]) -> Camera:
    """Intrinsics from nerfstudio keys in ``d``; w and h default to the image's size."""
    w = _size(d, "w", where) or image_size[0]
    h = _size(d, "h", where) or image_size[1]
    fx = _number(d, "fl_x", where)
    if fx is None:
        angle = _number(d, "camera_angle_x", where)
        if angle is None or not 0 < angle < math.pi:
            raise IngestError("no focal length: needs fl_x or camera_angle_x", where)
        fx = 0.5 * w / math.tan(0.5 * angle)
    fy = _number(d, "fl_y", where)
    if fy is None:
        angle_y = _number(d, "camera_angle_y", where)
        fy = 0.5 * h / math.tan(0.5 * angle_y) if angle_y and 0 < angle_y < math.pi else fx
    for key, f in (("fl_x", fx), ("fl_y", fy)):
        if not 0 < f <= MAX_FOCAL or not math.isfinite(f):
            raise IngestError(f"focal length must be positive and at most {MAX_FOCAL:g}, got {f}",
                              f"{where}.{key}")
    cx = _number(d, "cx", where)
    cy = _number(d, "cy", where)
    for key, c, side in (("cx", cx, w), ("cy", cy, h)):
        if c is not None and abs(c) > 10 * side:
            raise IngestError(f"principal point {c} is far outside the {side}-pixel image", f"{where}.{key}")
    model = d.get("camera_model")
    if model == FISHEYE:  # Kannala-Brandt: k1..k4 on the angle, no tangential terms
        names: tuple[str, ...] = ("k1", "k2", "k3", "k4")
        refused = ("p1", "p2")
    else:
        names, refused = ("k1", "k2", "p1", "p2"), ("k3", "k4")
    dist = tuple(_number(d, k, where) or 0.0 for k in names)
    for key, value in zip(names, dist, strict=True):
        if abs(value) > MAX_DISTORTION:
            raise IngestError(f"distortion {value} is beyond {MAX_DISTORTION:g}", f"{where}.{key}")
    for k in refused:
        if _number(d, k, where):
            raise IngestError(f"{model or 'OPENCV'} has no {k} (only {', '.join(names)})", f"{where}.{k}")
    if model is not None and model not in (*PINHOLE_MODELS, "OPENCV", FISHEYE):
        raise IngestError(
            f"camera model {model!r} is not supported (use PINHOLE, OPENCV or OPENCV_FISHEYE)",
            f"{where}.camera_model",
        )
    if model in PINHOLE_MODELS and any(dist):
        raise IngestError(f"{model} cannot have distortion coefficients", f"{where}.camera_model")
    distorted_model = FISHEYE if model == FISHEYE else "OPENCV"
    return Camera(
        width=w,
        height=h,
        fx=fx,
        fy=fy,
        cx=w / 2.0 if cx is None else cx,
        cy=h / 2.0 if cy is None else cy,
        model=distorted_model if any(dist) else "PINHOLE",
        distortion=dist if any(dist) else (),
    )


def load_transforms(path: Path) -> dict[str, Any]:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise IngestError("expected an object with a 'frames' list", path)
    return data


def _resolve(base: Path, rel: Any, where: str) -> Path | None:
    """The file a frame names, inside ``base`` only, trying image suffixes for Blender-style paths;
    None if missing. Absolute paths, ``..``, links out, devices: UnsafeSourceError naming ``where``."""
    if not isinstance(rel, str) or not rel:
        raise IngestError(f"expected a file path, got {rel!r}", where)
    p = inside_root(base, rel, where)
    if p.is_file():
        return p
    if not Path(rel).suffix:
        for suffix in IMPLIED_SUFFIXES:
            q = inside_root(base, rel + suffix, where)
            if q.is_file():
                return q
    return None


def _copy_depth(src: Path, name: str, unit: float, ctx: IngestContext) -> tuple[str, float]:
    """Depth into depth/``name``: 16-bit maps keep their values and unit; others are converted to mm."""
    data = read_raw_map(src)
    if data.dtype.itemsize < 2:  # 8-bit "depth" holds at most 255 units: a photo or a mask, not depth
        raise IngestError(f"expected 16-bit or floating-point depth, got {data.dtype}", src)
    if data.dtype == np.uint16:  # whatever the file's format, the capture gets a PNG of the same values
        write_uint16_png(data, ctx.capture.depth_dir / name)
        return f"depth/{name}", unit
    metres_to_mm_png(data.astype(np.float64) * unit, ctx.capture.depth_dir / name)
    return f"depth/{name}", 0.001


def _copy_mask(src: Path, name: str, size: tuple[int, int], ctx: IngestContext) -> str:
    data = read_raw_map(src)
    if (data.shape[1], data.shape[0]) != size:
        raise IngestError(f"mask is {data.shape[1]}x{data.shape[0]}, image is {size[0]}x{size[1]}", src)
    write_uint8_png(np.where(data > 0, 255, 0), ctx.capture.masks_dir / name)
    return f"masks/{name}"


def _use_once(used: dict[Path, str], path: Path, field: str, where: str) -> None:
    """Each image and depth file serves one frame: a file listed again (which would be copied once
    per listing, without bound) is refused."""
    first = used.setdefault(path, field)
    if first != field:
        raise IngestError(f"names the same file as {first}", where)


def read_transforms(path: Path, ctx: IngestContext) -> SourceResult:
    """``path`` is a transforms.json file or a folder that holds one."""
    # A transforms.json given by hand is the user's choice; one found in a folder must be inside it.
    if path.is_dir():
        inside_root(path, TRANSFORMS_NAME, path)
    tf_path = path / TRANSFORMS_NAME if path.is_dir() else path
    data = load_transforms(tf_path)
    base = tf_path.parent
    unit = data.get("depth_unit_scale_factor", DEFAULT_DEPTH_UNIT)
    if isinstance(unit, bool) or not isinstance(unit, (int, float)) or not 0 < unit < 1e6:
        raise IngestError(f"expected a positive scale, got {unit!r}", f"{tf_path}: depth_unit_scale_factor")
    global_intrinsics = {k: data[k] for k in INTRINSIC_KEYS if k in data}
    listed = data["frames"]
    if not listed:
        raise IngestError("lists no frames", f"{tf_path}: frames")
    if len(listed) > MAX_FRAMES:
        raise IngestError(f"lists {len(listed)} frames, more than the {MAX_FRAMES} an import may have",
                          f"{tf_path}: frames")
    frames: list[Frame] = []
    missing: list[str] = []
    taken: set[str] = set()
    taken_depth: set[str] = set()
    taken_masks: set[str] = set()
    raw = RawMirror(base, ctx.capture.raw_dir) if ctx.originals_to_raw else None
    used: dict[Path, str] = {}  # image or depth file -> the field that used it first
    for i, entry in enumerate(listed):
        where = f"{tf_path}: frames[{i}]"
        if not isinstance(entry, dict):
            raise IngestError("expected an object", where)
        if is_depth_only(entry):
            frames.append(read_depth_only_entry(entry, base, len(frames), global_intrinsics, unit, where,
                                                ctx))
            continue
        src = _resolve(base, entry.get("file_path"), f"{where}.file_path")
        if src is None:
            missing.append(str(entry["file_path"]))
            ctx.progress.warning(f"skipping frames[{i}]: image {entry['file_path']} is missing")
            continue
        _use_once(used, src, f"frames[{i}].file_path", f"{where}.file_path")
        pose = opengl_to_opencv(check_pose(entry.get("transform_matrix"), f"{where}.transform_matrix"))
        with open_image(src) as img:
            size = img.size
        camera = parse_camera({**global_intrinsics, **entry}, where, size)
        if (camera.width, camera.height) != size:
            raise IngestError(
                f"image is {size[0]}x{size[1]} but the intrinsics are for {camera.width}x{camera.height}", src
            )
        name = unique_name(src.name, taken)
        copy_file(src, ctx.capture.images_dir / name)
        if raw is not None:
            raw.add(src)
        stem = Path(name).stem
        depth_rel, depth_scale = None, 0.001
        if entry.get("depth_file_path") is not None:
            depth_src = _resolve(base, entry["depth_file_path"], f"{where}.depth_file_path")
            if depth_src is None:
                ctx.progress.warning(
                    f"frames[{i}]: depth {entry['depth_file_path']} is missing; frame kept without"
                )
            else:
                _use_once(used, depth_src, f"frames[{i}].depth_file_path", f"{where}.depth_file_path")
                depth_name = unique_name(f"{stem}.png", taken_depth)
                depth_rel, depth_scale = _copy_depth(depth_src, depth_name, unit, ctx)
                if raw is not None:
                    raw.add(depth_src)
        mask_rel = None
        if entry.get("mask_path") is not None:
            mask_src = _resolve(base, entry["mask_path"], f"{where}.mask_path")
            if mask_src is None:
                ctx.progress.warning(f"frames[{i}]: mask {entry['mask_path']} is missing; frame kept without")
            else:
                mask_rel = _copy_mask(mask_src, unique_name(f"{stem}.png", taken_masks), size, ctx)
                if raw is not None:
                    raw.add(mask_src)
        frames.append(
            Frame(
                id=frame_id(len(frames)),
                camera=camera,
                image=f"images/{name}",
                source_name=src.name,
                pose=as_pose_tuple(pose),
                depth=depth_rel,
                depth_scale=depth_scale,
                mask=mask_rel,
            )
        )
        ctx.progress.update((i + 1) / len(listed), f"frame {i + 1}/{len(listed)}: {src.name}")
    if not frames:
        raise IngestError(f"none of the {len(listed)} images it lists exist", tf_path)
    if raw is not None:
        raw.add(tf_path, tf_path.name)
    # Our own writers (and the bundled sample) say "scale": "metric" when poses are in metres.
    scale = "metric" if data.get("scale") == "metric" else "unscaled"
    mode, depth_check = "import", {}
    if scale != "metric" and any(f.depth for f in frames):
        scale, mode, check = judge_depth_scale(ctx.capture.root, frames, ctx.progress)
        depth_check = {"depth_check": check.to_json()}
    return SourceResult(
        kind="transforms",
        frames=tuple(frames),
        default_mode=mode,
        scale=scale,
        info={"app": "nerfstudio", "listed_frames": len(listed), "missing_frames": missing, **depth_check},
    )
