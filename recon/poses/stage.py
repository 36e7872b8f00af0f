"""The "poses" stage: device poses when every frame has one, else pycolmap SfM with retries.

Writes in its run folder: sparse/0/ (COLMAP binary model), sparse.ply, transforms.json
(nerfstudio), poses.json (OpenCV camera-to-world per registered frame, the unregistered frames
with reasons, the registered fraction and the attempts made), and attempts/ (the database and
models of the attempt that was kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pycolmap

from core.capture import Frame, Manifest
from core.errors import InputError, ReconstructionError
from core.ports import POSED_IMAGES
from core.stages import StageContext, StageSpec
from recon.poses.config import PosesConfig, attempt_ladder
from recon.poses.depth_scale import MAX_SPREAD, DepthScale, measure, scale_model
from recon.poses.diagnose import unregistered_reasons
from recon.poses.features import colmap_camera, image_entries
from recon.poses.headings import frame_directions
from recon.poses.known_poses import depth_points, triangulate_known
from recon.poses.merge import add_posed_images, merge_models
from recon.poses.outputs import (
    PosedFrame,
    c2w_from_image,
    camera_json,
    model_points,
    write_model,
    write_outputs,
)
from recon.poses.pairs import choose_matcher
from recon.poses.sfm import registered_names, run_sfm

# Sources whose intrinsics come from the device or a calibration, not from a guess.
KNOWN_INTRINSICS_SOURCES = ("transforms", "strayscanner", "record3d", "polycam", "colmap", "idr")
VIDEO_LIKE_SOURCES = ("video", "strayscanner", "record3d")


def _summary(registered: int, total: int, attempts: list[dict[str, Any]], unregistered: dict[str, str],
             **extra: Any) -> dict[str, Any]:
    return {
        "registered": registered,
        "total": total,
        "fraction": round(registered / total, 4) if total else 0.0,
        "attempts": attempts,
        "unregistered": unregistered,
        **extra,
    }


def _posed_from_model(model: pycolmap.Reconstruction, frames: Sequence[Frame]) -> list[PosedFrame]:
    posed = []
    for fr in frames:
        image = model.find_image_with_name(fr.image) if fr.image is not None else None
        if image is None or not image.has_pose:
            continue
        posed.append(PosedFrame(fr.id, fr.image, fr.source_name, c2w_from_image(image),
                                camera_json(model.camera(image.camera_id)), fr.depth, fr.depth_scale))
    return posed


def _depth_only_model(frames: Sequence[Frame]) -> pycolmap.Reconstruction:
    """Cameras and posed images (named by their depth maps) without points."""
    model = pycolmap.Reconstruction()
    cameras: list[Any] = []
    for i, fr in enumerate(frames, start=1):
        if fr.camera not in cameras:
            cameras.append(fr.camera)
            cam = colmap_camera(fr.camera, prior_focal=True, for_sfm=False)
            cam.camera_id = len(cameras)
            model.add_camera_with_trivial_rig(cam)
        c2w = np.asarray(fr.pose, dtype=np.float64)
        model.add_image_with_trivial_frame(
            pycolmap.Image(name=fr.depth or fr.id, camera_id=cameras.index(fr.camera) + 1, image_id=i),
            pycolmap.Rigid3d(np.linalg.inv(c2w)[:3, :]),
        )
    return model


def _run_device(ctx: StageContext, config: PosesConfig, manifest: Manifest) -> dict[str, Any]:
    frames = manifest.frames
    root = ctx.capture.root
    entries, cameras = image_entries(frames)
    ctx.progress.log(f"using the device poses of all {len(frames)} frames ({manifest.scale} scale)")
    attempts: list[dict[str, Any]] = []
    if len(entries) >= 2:
        video = manifest.source.get("kind") in VIDEO_LIKE_SOURCES or manifest.mode == "rgbd"
        matcher = choose_matcher(config.matcher, len(entries), "video" if video else None,
                                 config.exhaustive_limit)
        settings = attempt_ladder(config, matcher, len(entries), video)[0]
        poses = {fr.image: np.asarray(fr.pose, dtype=np.float64) for fr in frames if fr.image is not None}
        model, database = triangulate_known(
            root, entries, cameras, poses, settings, ctx.out_dir / "attempts" / "device-poses",
            num_threads=config.num_threads, seed=config.seed, progress=ctx.progress.sub(0.0, 0.9),
            cancel=ctx.cancel,
        )
        xyz, rgb = model_points(model)
        attempts.append({"name": "device poses + triangulation", "settings": settings.to_json(),
                         "points": int(model.num_points3D()),
                         "mean_reprojection_error_px":
                             round(float(model.compute_mean_reprojection_error()), 3)})
        posed_images = {p.name: p for p in _posed_from_model(model, frames)}
    else:
        model = _depth_only_model(frames)
        xyz, rgb = depth_points(root, frames, seed=config.seed)
        attempts.append({"name": "device poses + depth back-projection", "points": len(xyz)})
        posed_images = {}
    posed = []
    for fr in frames:
        if fr.image is not None and fr.image in posed_images:
            posed.append(posed_images[fr.image])
        else:
            cam = colmap_camera(fr.camera, prior_focal=True, for_sfm=False)
            posed.append(PosedFrame(fr.id, fr.image, fr.source_name, np.asarray(fr.pose, dtype=np.float64),
                                    camera_json(cam), fr.depth, fr.depth_scale))
    write_model(model, ctx.out_dir)
    summary = _summary(len(frames), len(frames), attempts, {}, source="device", scale=manifest.scale)
    write_outputs(ctx.out_dir, root, posed, xyz, rgb, summary)
    return {**summary, "attempts": [a["name"] for a in attempts], "points": len(xyz)}


def _scale_from_depth(ctx: StageContext, model: pycolmap.Reconstruction,
                      frames: Sequence[Frame]) -> tuple[str, DepthScale | None]:
    """Scale ``model`` into metres (in place) when the frames' sensor depth agrees with it."""
    if not any(fr.depth is not None and fr.image is not None for fr in frames):
        return "unscaled", None
    measured = measure(model, frames, ctx.capture.root)
    if measured is None:
        ctx.progress.warning("the frames' depth maps do not see enough of the sparse points to set the "
                             "scale; the result is unscaled")
        return "unscaled", None
    if not measured.agrees:
        ctx.progress.warning(
            f"the frames' depth maps disagree with the photos' geometry (per-view scale spread "
            f"{measured.spread:.1%} over {measured.views} views, at most {MAX_SPREAD:.0%} allowed); "
            "the result is unscaled")
        return "unscaled", measured
    scale_model(model, measured.metres_per_unit)
    ctx.progress.log(f"metric scale from the frames' depth maps: {measured.views} views, "
                     f"{measured.points} points, per-view spread {measured.spread:.1%}")
    return "metric", measured


def _run_sfm(ctx: StageContext, config: PosesConfig, manifest: Manifest) -> dict[str, Any]:
    frames = manifest.frames
    root = ctx.capture.root
    entries, cameras = image_entries(frames)
    if len(entries) < 2:
        raise InputError(f"structure from motion needs at least 2 images, the capture has {len(entries)}",
                         ctx.capture.manifest_path)
    directions = frame_directions(manifest)
    if directions:
        entries = [replace(e, direction=directions.get(e.frame_id)) for e in entries]
        ctx.progress.log(f"{len(directions)} photo(s) came with the phone's orientation: their neighbours "
                         "around the object are matched too")
    kind = manifest.source.get("kind")
    video = kind in VIDEO_LIKE_SOURCES
    matcher = choose_matcher(config.matcher, len(entries), "video" if video else kind,
                             config.exhaustive_limit)
    ctx.progress.log(f"structure from motion over {len(entries)} images, {matcher} matching, "
                     f"{config.mapper} mapping")
    best, attempts = run_sfm(
        root, entries, cameras, config, matcher, video=video,
        prior_focal=kind in KNOWN_INTRINSICS_SOURCES, work_dir=ctx.out_dir / "attempts",
        progress=ctx.progress.sub(0.0, 0.95), cancel=ctx.cancel,
    )
    main = best.models[0] if best.models else None
    merged_from: dict[str, str] = {}
    if main is not None and len(attempts) > 1:
        others = [(a.settings.name, m) for a in attempts if a is not best for m in a.models]
        merged = merge_models(main, others)
        add_posed_images(main, merged)
        frame_of = {e.name: e.frame_id for e in entries}
        merged_from = {frame_of[m.name]: m.source for m in merged}
        if merged:
            ctx.progress.log(f"merged {len(merged)} frame(s) registered only by other attempts")
    registered = registered_names(main) if main is not None else set()
    side = [registered_names(m) for m in best.models[1:]]
    reasons = unregistered_reasons(
        root, entries, registered, best.database if best.database.exists() else None, side,
        min_keypoints=config.min_keypoints, min_inliers=config.min_inliers, blur_ratio=config.blur_ratio,
    )
    for fr in frames:
        if fr.image is None:
            reasons[fr.id] = "no image: the frame has only a depth map and no device pose"
    for frame_id, reason in reasons.items():
        ctx.progress.warning(f"frame {frame_id} not registered: {reason}")
    scale, depth_scale = ("unscaled", None) if main is None else _scale_from_depth(ctx, main, frames)
    posed = _posed_from_model(main, frames) if main is not None else []
    extra = {"depth_scale": depth_scale.to_json()} if depth_scale is not None else {}
    summary = _summary(
        len(posed), len(frames), [a.to_json() for a in attempts], reasons, source="sfm", scale=scale,
        **extra,
        matcher=matcher, mapper=config.mapper, kept_attempt=best.settings.name, merged=merged_from,
        database=str(best.database.relative_to(ctx.out_dir)),
    )
    if main is None:
        write_outputs(ctx.out_dir, root, [], np.zeros((0, 3)), np.zeros((0, 3), np.uint8), summary)
        first = next(iter(reasons.items()), ("?", "unknown"))
        raise ReconstructionError(
            f"no frame could be registered after {len(attempts)} attempt(s) "
            f"(e.g. frame {first[0]}: {first[1]})",
            ctx.capture.root,
        )
    write_model(main, ctx.out_dir)
    xyz, rgb = model_points(main)
    write_outputs(ctx.out_dir, root, posed, xyz, rgb, summary)
    return {**summary, "attempts": [a.settings.name for a in attempts], "points": len(xyz)}


def run(ctx: StageContext, config: PosesConfig) -> dict[str, Any]:
    """Estimate camera poses for the capture; returns the summary (see module docstring)."""
    manifest = ctx.capture.load()
    # COLMAP's per-step INFO lines would drown the progress bar; warnings still show.
    pycolmap.logging.minloglevel = max(int(pycolmap.logging.minloglevel), 1)
    if not manifest.frames:
        raise InputError("the capture has no frames", ctx.capture.manifest_path)
    if config.use_device_poses and all(fr.pose is not None for fr in manifest.frames):
        return _run_device(ctx, config, manifest)
    return _run_sfm(ctx, config, manifest)


STAGE = StageSpec(
    name="poses",
    config_cls=PosesConfig,
    run=run,
    version=1,
    reads=(), writes=(POSED_IMAGES,),
    description="camera poses: device poses with a triangulated sparse cloud, or pycolmap SfM with retries",
)


def result_paths(run_dir: Path) -> dict[str, Path]:
    """Where a finished poses run keeps its outputs."""
    return {
        "model": run_dir / "sparse" / "0",
        "sparse_ply": run_dir / "sparse.ply",
        "transforms": run_dir / "transforms.json",
        "poses": run_dir / "poses.json",
    }
