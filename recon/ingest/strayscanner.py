"""Stray Scanner exports: LiDAR depth (16-bit mm PNG), confidence, ARKit odometry, optional rgb.mp4.

``odometry.csv`` rows are ``timestamp, frame, x, y, z, qx, qy, qz, qw``: camera-to-world,
quaternion scalar last. The app writes these poses with OpenCV camera axes (x right, y down,
z forward) already, not ARKit's raw camera axes: on the real export in
shared/data/strayscanner-iphone-lidar-depthonly, depth back-projected from frame 300 lands on
frame 330's depth with a median error of 4.6 cm read as OpenCV, 40 cm read as OpenGL/ARKit
(tests/recon/test_ingest_stray.py checks this). So the poses are used as they are.
``camera_matrix.csv`` is K at the RGB resolution; depth maps are smaller (usually 256x192).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.capture import Camera, Frame
from core.errors import IngestError
from core.source_paths import inside_root, read_regular
from recon.ingest.common import IngestContext, SourceResult, copy_file, copy_tree, even_subsample, frame_id
from recon.ingest.depth import is_png, read_raw_map
from recon.ingest.geometry import as_pose_tuple, pose_from_quaternion
from recon.ingest.video import open_video

ODOMETRY = "odometry.csv"
CAMERA_MATRIX = "camera_matrix.csv"
RGB_VIDEO = "rgb.mp4"
POSE_COLUMNS = ("timestamp", "frame", "x", "y", "z", "qx", "qy", "qz", "qw")
# ARKit colour-stream sizes, largest first; K's principal point tells which one K was made for.
ARKIT_RGB_SIZES = ((3840, 2880), (1920, 1440), (1920, 1080), (1440, 1080), (1280, 960), (640, 480))
JPEG_QUALITY = 95
MAX_CSV_BYTES = 64 << 20  # an hour at 60 fps is ~20 MiB
MAX_FRAME_NUMBER = 10_000_000
MAX_CONFIDENCE = 2  # ARKit levels: 0 low, 1 medium, 2 high
MAX_FOCAL = 1e7
MAX_PRINCIPAL = 1e5


def is_stray_export(root: Path) -> bool:
    return root.is_dir() and (root / ODOMETRY).is_file() and (root / CAMERA_MATRIX).is_file()


@dataclass(frozen=True)
class OdometryRow:
    timestamp: float
    frame: int
    pose: np.ndarray  # [4, 4] camera-to-world, OpenCV axes
    intrinsics: tuple[float, float, float, float] | None  # fx, fy, cx, cy when the row has them


def _text(path: Path) -> str:
    try:
        return read_regular(path, MAX_CSV_BYTES, path).decode("utf-8")
    except UnicodeDecodeError:
        raise IngestError("not UTF-8 text", path) from None


def read_camera_matrix(path: Path) -> np.ndarray:
    """K [3, 3] from camera_matrix.csv."""
    text = _text(path)
    if not text.strip():
        raise IngestError("is empty; expected a 3x3 matrix of numbers", path)
    try:
        k = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except (ValueError, IndexError) as e:
        raise IngestError(f"expected a 3x3 matrix of numbers ({e})", path) from None
    if k.shape != (3, 3) or not np.all(np.isfinite(k)):
        raise IngestError(f"expected a 3x3 intrinsic matrix of finite numbers, got shape {k.shape}", path)
    if not (0 < k[0, 0] <= MAX_FOCAL and 0 < k[1, 1] <= MAX_FOCAL):
        reason = f"focal lengths {k[0, 0]}, {k[1, 1]} must be positive and at most {MAX_FOCAL:g}"
        raise IngestError(reason, path)
    if not (0 < k[0, 2] <= MAX_PRINCIPAL and 0 < k[1, 2] <= MAX_PRINCIPAL):
        raise IngestError(f"principal point {k[0, 2]}, {k[1, 2]} must lie in a real image", path)
    return k


def read_odometry(path: Path) -> list[OdometryRow]:
    try:
        reader = csv.reader(io.StringIO(_text(path), newline=""))
        header = [h.strip() for h in next(reader, [])]
        rows = [r for r in reader if any(c.strip() for c in r)]
    except csv.Error as e:
        raise IngestError(f"cannot read ({e})", path) from None
    missing = [c for c in POSE_COLUMNS if c not in header]
    if missing:
        raise IngestError(f"header lacks column(s) {', '.join(missing)}", path)
    col = {name: header.index(name) for name in header}
    has_k = all(c in col for c in ("fx", "fy", "cx", "cy"))
    out = []
    for line, r in enumerate(rows, start=2):
        where = f"{path}: line {line}"
        try:
            v = {
                name: float(r[i])
                for name, i in col.items()
                if name in (*POSE_COLUMNS, "fx", "fy", "cx", "cy")
            }
        except (ValueError, IndexError):
            raise IngestError("expected numbers in every column", where) from None
        if not all(np.isfinite(list(v.values()))):
            raise IngestError("non-finite number", where)
        if v["frame"] != int(v["frame"]) or not 0 <= v["frame"] <= MAX_FRAME_NUMBER:
            raise IngestError(f"frame must be a whole number from 0 to {MAX_FRAME_NUMBER}", where)
        pose = pose_from_quaternion((v["qx"], v["qy"], v["qz"], v["qw"]), (v["x"], v["y"], v["z"]), where)
        k = (v["fx"], v["fy"], v["cx"], v["cy"]) if has_k else None
        if k is not None and not (0 < k[0] <= MAX_FOCAL and 0 < k[1] <= MAX_FOCAL
                                  and 0 < k[2] <= MAX_PRINCIPAL and 0 < k[3] <= MAX_PRINCIPAL):
            raise IngestError("fx, fy, cx, cy must be positive and within a real image", where)
        out.append(OdometryRow(v["timestamp"], int(v["frame"]), pose, k))
    if not out:
        raise IngestError("has no poses", path)
    return out


def _check_confidence(path: Path, depth_size: tuple[int, int]) -> None:
    """A confidence map: 8-bit, the size of the depth maps, values 0..2."""
    conf = read_raw_map(path)
    if conf.dtype != np.uint8 or not is_png(path):
        kind = f"a {conf.dtype} PNG" if is_png(path) else "a file that is not a PNG"
        raise IngestError(f"expected an 8-bit confidence PNG, got {kind}", path)
    if (conf.shape[1], conf.shape[0]) != depth_size:
        conf_size = f"{conf.shape[1]}x{conf.shape[0]}"
        raise IngestError(f"confidence map is {conf_size}, depth is {depth_size[0]}x{depth_size[1]}", path)
    if conf.max() > MAX_CONFIDENCE:
        raise IngestError(f"confidence values must be 0..{MAX_CONFIDENCE}, found {conf.max()}", path)


def rgb_size_for(k: np.ndarray, depth_size: tuple[int, int]) -> tuple[int, int]:
    """The colour resolution K was made for: the ARKit size whose centre is nearest K's principal point
    (among sizes with the depth map's aspect), else twice the principal point."""
    dw, dh = depth_size
    cx, cy = k[0, 2], k[1, 2]
    candidates = [s for s in ARKIT_RGB_SIZES if abs(s[0] * dh - s[1] * dw) <= 0.02 * s[0] * dh]
    best = min(candidates, key=lambda s: abs(s[0] / 2 - cx) + abs(s[1] / 2 - cy), default=None)
    if best is not None and abs(best[0] / 2 - cx) < 0.05 * best[0] and abs(best[1] / 2 - cy) < 0.05 * best[1]:
        return best
    w = int(round(2 * cx))
    return w, int(round(w * dh / dw))


def _extract_rgb(video: Path, wanted: set[int], ctx: IngestContext) -> tuple[dict[int, str], tuple[int, int]]:
    """Write the video frames numbered in ``wanted`` to images/NNNNNN.jpg; returns their paths and size."""
    cap = open_video(video)
    ctx.capture.images_dir.mkdir(parents=True, exist_ok=True)
    written: dict[int, str] = {}
    size = (0, 0)
    last = max(wanted)
    index = 0
    progress = ctx.progress.sub(0.5, 0.95)
    try:
        while index <= last:
            if index not in wanted:
                if not cap.grab():
                    break
                index += 1
                continue
            ok, image = cap.read()
            if not ok or image is None:
                break
            size = (image.shape[1], image.shape[0])
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise IngestError(f"could not encode frame {index} as JPEG", video)
            name = f"{frame_id(index)}.jpg"
            (ctx.capture.images_dir / name).write_bytes(buf.tobytes())
            written[index] = f"images/{name}"
            index += 1
            progress.update(index / (last + 1), f"rgb frame {index}/{last + 1}")
    finally:
        cap.release()
    if index <= last:
        raise IngestError(f"truncated: ends at frame {index}, but depth frame {last} needs its colour", video)
    return written, size


def read_stray(root: Path, ctx: IngestContext) -> SourceResult:
    for name in (CAMERA_MATRIX, ODOMETRY):
        inside_root(root, name, root / name)
    k = read_camera_matrix(root / CAMERA_MATRIX)
    rows = read_odometry(root / ODOMETRY)
    present = []
    for row in rows:
        rel = f"depth/{row.frame:06d}.png"
        if inside_root(root, rel, root / rel).is_file():
            present.append(row)
        else:
            ctx.progress.warning(f"skipping frame {row.frame}: depth/{row.frame:06d}.png is missing")
    if not present:
        raise IngestError("no depth map of the frames in odometry.csv exists", root / "depth")
    chosen = [present[i] for i in even_subsample(len(present), ctx.target_frames)]
    depth_size: tuple[int, int] | None = None
    check = ctx.progress.sub(0.0, 0.5)
    for n, row in enumerate(chosen):
        path = root / "depth" / f"{row.frame:06d}.png"
        depth = read_raw_map(path)
        if depth.dtype != np.uint16 or not is_png(path):
            kind = f"a {depth.dtype} PNG" if is_png(path) else "a file that is not a PNG"
            raise IngestError(f"expected a 16-bit depth PNG, got {kind}", path)
        size = (depth.shape[1], depth.shape[0])
        if depth_size is not None and size != depth_size:
            raise IngestError(
                f"depth map is {size[0]}x{size[1]}, others are {depth_size[0]}x{depth_size[1]}", path
            )
        depth_size = size
        check.update((n + 1) / len(chosen), f"depth {n + 1}/{len(chosen)}")
    assert depth_size is not None
    rgb_size = rgb_size_for(k, depth_size)
    images: dict[int, str] = {}
    video = root / RGB_VIDEO
    inside_root(root, RGB_VIDEO, video)
    if video.is_file():
        images, video_size = _extract_rgb(video, {r.frame for r in chosen}, ctx)
        k_rgb_size, rgb_size = rgb_size, video_size
    else:
        k_rgb_size = rgb_size
        ctx.progress.log("no rgb.mp4: frames carry depth and confidence only")
    frames = []
    for row in chosen:
        fx, fy, cx, cy = row.intrinsics or (k[0, 0], k[1, 1], k[0, 2], k[1, 2])
        camera = Camera(width=k_rgb_size[0], height=k_rgb_size[1], fx=fx, fy=fy, cx=cx, cy=cy)
        if rgb_size != k_rgb_size:
            camera = camera.scaled(*rgb_size)
        name = f"{row.frame:06d}.png"
        copy_file(root / "depth" / name, ctx.capture.depth_dir / name)
        conf = root / "confidence" / name
        if inside_root(root, f"confidence/{name}", conf).is_file():
            _check_confidence(conf, depth_size)
            copy_file(conf, ctx.capture.confidence_dir / name)
        frames.append(
            Frame(
                id=frame_id(row.frame),
                camera=camera,
                image=images.get(row.frame),
                source_name=Path(images[row.frame]).name if row.frame in images else name,
                pose=as_pose_tuple(row.pose),
                depth=f"depth/{name}",
                depth_scale=0.001,
                confidence=f"confidence/{name}" if conf.is_file() else None,
                timestamp=row.timestamp,
            )
        )
    if ctx.originals_to_raw:
        copy_tree(root, ctx.capture.raw_dir)
    ctx.progress.update(1.0, f"kept {len(frames)} of {len(rows)} frames")
    return SourceResult(
        kind="strayscanner",
        frames=tuple(frames),
        default_mode="rgbd",
        scale="metric",
        info={"app": "Stray Scanner", "device_frames": len(rows), "has_rgb": video.is_file()},
    )
