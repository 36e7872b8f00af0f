"""Record3D ``.r3d`` captures, zipped or unzipped: ARKit poses with LiDAR (or TrueDepth) depth.

An .r3d file is a zip holding::

    metadata                 JSON: w, h (colour size), dw, dh (depth size), K (3x3, column-major),
                             poses ([qx, qy, qz, qw, tx, ty, tz] per frame: ARKit camera-to-world,
                             metres, camera axes x right, y up, z back), fps, optional
                             frameTimestamps and perFrameIntrinsicCoeffs ([fx, fy, cx, cy] per frame)
    rgbd/<i>.jpg             colour, i counts from 0
    rgbd/<i>.depth           LZFSE-compressed float32 [dh, dw], metres (NaN or 0: no measurement)
    rgbd/<i>.conf            LZFSE-compressed uint8 [dh, dw], ARKit levels 0..2

The zip is unpacked with the archive checks of every other zip, then read as the folder it
holds; the .r3d itself is what goes into raw/. Depth becomes 16-bit millimetre PNGs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from core.capture import Camera, Frame
from core.errors import IngestError
from core.source_paths import copy_into
from recon.ingest.archive import ArchiveLimits, extract_archive
from recon.ingest.common import IngestContext, SourceResult, even_subsample, frame_id
from recon.ingest.depth import metres_to_mm_png
from recon.ingest.fields import finite, load_json_object, numbers, pixels, positive
from recon.ingest.geometry import as_pose_tuple, opengl_to_opencv, pose_from_quaternion
from recon.ingest.images import open_image
from recon.ingest.lzfse_maps import read_lzfse_map
from recon.ingest.maps import write_confidence
from recon.ingest.originals import copy_tree_into, source_file

SUFFIX = ".r3d"
METADATA_NAMES = ("metadata", "metadata.json")
FRAMES_DIR = "rgbd"
COLOUR_SUFFIXES = (".jpg", ".jpeg", ".png")
UNPACK_DIR = ".unpacked-r3d"  # inside the staging capture; removed before it is published


def r3d_metadata(root: Path) -> Path | None:
    """The metadata file of an unzipped .r3d at ``root``: one beside rgbd/ with .depth files."""
    if not (root / FRAMES_DIR).is_dir() or not any((root / FRAMES_DIR).glob("*.depth")):
        return None
    return next((root / n for n in METADATA_NAMES if (root / n).is_file()), None)


def is_r3d_folder(root: Path) -> bool:
    return root.is_dir() and r3d_metadata(root) is not None


def _intrinsics(meta: dict[str, Any], count: int, where: str) -> list[tuple[float, float, float, float]]:
    per_frame = meta.get("perFrameIntrinsicCoeffs")
    if per_frame is not None:
        if not isinstance(per_frame, list) or len(per_frame) != count:
            raise IngestError(f"expected {count} entries, one per pose", f"{where}: perFrameIntrinsicCoeffs")
        out = []
        for i, k in enumerate(per_frame):
            fx, fy, cx, cy = numbers(k, 4, f"{where}: perFrameIntrinsicCoeffs[{i}]")
            if fx <= 0 or fy <= 0:
                raise IngestError("focal lengths must be positive", f"{where}: perFrameIntrinsicCoeffs[{i}]")
            out.append((fx, fy, cx, cy))
        return out
    k = np.asarray(numbers(meta.get("K"), 9, f"{where}: K")).reshape(3, 3).T  # column-major
    if abs(k[0, 2]) + abs(k[1, 2]) < abs(k[2, 0]) + abs(k[2, 1]):
        k = k.T  # written row-major
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise IngestError("focal lengths must be positive", f"{where}: K")
    return [(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]))] * count


def _timestamps(meta: dict[str, Any], count: int, where: str) -> list[float | None]:
    stamps = meta.get("frameTimestamps")
    if isinstance(stamps, list) and len(stamps) == count:
        return [finite(s, f"{where}: frameTimestamps[{i}]") for i, s in enumerate(stamps)]
    fps = meta.get("fps")
    if fps is not None:
        rate = positive(fps, f"{where}: fps")
        return [i / rate for i in range(count)]
    return [None] * count


def _read_folder(root: Path, ctx: IngestContext, shown: Path) -> SourceResult:
    meta_path = r3d_metadata(root)
    if meta_path is None:
        raise IngestError("not a Record3D .r3d capture (no metadata beside rgbd/*.depth)", shown)
    where = f"{shown}: {meta_path.name}" if shown.suffix.lower() == SUFFIX else str(meta_path)
    meta = load_json_object(source_file(root, meta_path), where)
    width, height = pixels(meta.get("w"), f"{where}: w"), pixels(meta.get("h"), f"{where}: h")
    dw, dh = pixels(meta.get("dw"), f"{where}: dw"), pixels(meta.get("dh"), f"{where}: dh")
    if dw > 4096 or dh > 4096:
        raise IngestError(f"depth size {dw}x{dh} is larger than any device's depth map", f"{where}: dw")
    poses_raw = meta.get("poses")
    if not isinstance(poses_raw, list) or not poses_raw:
        raise IngestError("expected a non-empty list of poses", f"{where}: poses")
    count = len(poses_raw)
    intrinsics = _intrinsics(meta, count, where)
    stamps = _timestamps(meta, count, where)
    frames_dir = root / FRAMES_DIR
    frames: list[Frame] = []
    chosen = even_subsample(count, ctx.target_frames)
    for n, i in enumerate(chosen):
        q_t = numbers(poses_raw[i], 7, f"{where}: poses[{i}]")
        if any(abs(t) > 1e6 for t in q_t[4:]):
            raise IngestError("position further than 1000 km", f"{where}: poses[{i}]")
        pose = opengl_to_opencv(pose_from_quaternion(tuple(q_t[:4]), tuple(q_t[4:]), f"{where}: poses[{i}]"))
        fx, fy, cx, cy = intrinsics[i]
        if not (-width <= cx <= 2 * width and -height <= cy <= 2 * height):
            raise IngestError(f"principal point ({cx:g}, {cy:g}) is far outside the {width}x{height} image",
                              f"{where}: perFrameIntrinsicCoeffs[{i}]" if "perFrameIntrinsicCoeffs" in meta
                              else f"{where}: K")
        camera = Camera(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy)
        colour = next((p for p in (frames_dir / f"{i}{s}" for s in COLOUR_SUFFIXES) if p.is_file()), None)
        depth_src = frames_dir / f"{i}.depth"
        if colour is None and not depth_src.is_file():
            ctx.progress.warning(f"skipping frame {i}: neither {FRAMES_DIR}/{i}.jpg nor "
                                 f"{FRAMES_DIR}/{i}.depth exists")
            continue
        fid = frame_id(i)
        image_rel = None
        if colour is not None:
            source_file(root, colour)
            with open_image(colour) as img:
                size = img.size
            if size != (width, height):
                camera = camera.scaled(*size)
            image_rel = f"images/{fid}{colour.suffix.lower()}"
            copy_into(colour, ctx.capture.root / image_rel)
        depth_rel = conf_rel = None
        if depth_src.is_file():
            shown_depth = f"{shown}: {FRAMES_DIR}/{i}.depth" if shown.is_file() else depth_src
            depth = read_lzfse_map(source_file(root, depth_src), (dh, dw), np.float32, shown_depth)
            depth_rel = f"depth/{fid}.png"
            metres_to_mm_png(depth, ctx.capture.root / depth_rel)
            conf_src = frames_dir / f"{i}.conf"
            if conf_src.is_file():
                shown_conf = f"{shown}: {FRAMES_DIR}/{i}.conf" if shown.is_file() else conf_src
                conf = read_lzfse_map(source_file(root, conf_src), (dh, dw), np.uint8, shown_conf)
                conf_rel = f"confidence/{fid}.png"
                write_confidence(conf, ctx.capture.root / conf_rel)
        frames.append(Frame(id=fid, camera=camera, image=image_rel,
                            source_name=colour.name if colour is not None else depth_src.name,
                            pose=as_pose_tuple(pose), depth=depth_rel, depth_scale=0.001,
                            confidence=conf_rel, timestamp=stamps[i]))
        ctx.progress.update((n + 1) / len(chosen), f"frame {n + 1}/{len(chosen)}")
    if not frames:
        raise IngestError(f"none of the {count} frames in the metadata has a colour or depth file", shown)
    return SourceResult(
        kind="r3d",
        frames=tuple(frames),
        default_mode="rgbd",
        scale="metric",
        info={"app": "Record3D", "device_frames": count, "depth_size": [dw, dh],
              "camera_type": meta.get("cameraType") if isinstance(meta.get("cameraType"), int) else None},
    )


def read_r3d(path: Path, ctx: IngestContext) -> SourceResult:
    """``path`` is an .r3d file or the folder an .r3d unzips to."""
    if path.is_dir():
        result = _read_folder(path, ctx, path)
        if ctx.originals_to_raw:
            copy_tree_into(path, ctx.capture.raw_dir)
        return result
    unpacked = ctx.capture.root / UNPACK_DIR
    try:
        extract_archive(path, unpacked, ArchiveLimits(), ctx.progress.sub(0.0, 0.2))
        inner = IngestContext(ctx.capture, ctx.progress.sub(0.2, 1.0), ctx.target_frames,
                              originals_to_raw=False)
        result = _read_folder(unpacked, inner, path)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    if ctx.originals_to_raw:
        copy_into(path, ctx.capture.raw_dir / path.name)
    return result
