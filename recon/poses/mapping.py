"""Mapping: pycolmap's incremental (or global) mapper over a matched database."""

from __future__ import annotations

from pathlib import Path

import pycolmap

from core.progress import CancelToken, Progress
from recon.poses.config import AttemptSettings
from recon.poses.features import colmap_cancellation


def incremental_options(
    settings: AttemptSettings, num_threads: int, seed: int
) -> pycolmap.IncrementalPipelineOptions:
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = num_threads
    options.random_seed = seed
    options.min_num_matches = settings.min_num_matches
    options.min_model_size = 3
    options.extract_colors = True
    # Global bundle adjustment when the model has grown by 25% (COLMAP: 10%); a final global
    # adjustment still runs at the end, so this saves time, not accuracy.
    options.ba_global_frames_ratio = 1.25
    options.ba_global_points_ratio = 1.25
    mapper = options.mapper
    mapper.init_min_num_inliers = settings.init_min_num_inliers
    mapper.init_min_tri_angle = settings.init_min_tri_angle
    mapper.abs_pose_min_num_inliers = settings.abs_pose_min_num_inliers
    mapper.abs_pose_min_inlier_ratio = settings.abs_pose_min_inlier_ratio
    mapper.random_seed = seed
    # Global bundle adjustment first on a reduced set of points (the rest after): much faster
    # on models of many frames, the same poses.
    mapper.ba_global_ignore_redundant_points3D = True
    return options


def map_incremental(
    database: Path,
    image_root: Path,
    out_dir: Path,
    settings: AttemptSettings,
    num_images: int,
    *,
    num_threads: int,
    seed: int,
    progress: Progress,
    cancel: CancelToken,
) -> list[pycolmap.Reconstruction]:
    """Run the incremental mapper; returns its models, largest first.

    Progress counts registered images through the mapper's callbacks (the initial pair, then
    one call per image added), so the fraction is images registered / images in the capture.
    """
    options = incremental_options(settings, num_threads, seed)
    in_model = 0  # images in the model being built; a failed start begins a new one
    best = 0.0

    def report(message: str) -> None:
        nonlocal best
        best = max(best, min(1.0, in_model / num_images))
        progress.update(best, message)

    def on_initial_pair() -> None:
        nonlocal in_model
        in_model = 2
        report(f"mapping: initial pair registered, 2/{num_images} images")

    def on_next_image() -> None:
        nonlocal in_model
        in_model += 1
        report(f"mapping: {in_model}/{num_images} images registered")

    out_dir.mkdir(parents=True, exist_ok=True)
    with colmap_cancellation(cancel) as token:
        models = pycolmap.incremental_mapping(
            database, image_root, out_dir, options=options,
            initial_image_pair_callback=on_initial_pair, next_image_callback=on_next_image,
            cancellation_token=token,
        )
    cancel.check()
    return sorted(models.values(), key=lambda r: r.num_reg_images(), reverse=True)


def extend_model(
    database: Path,
    image_root: Path,
    model: pycolmap.Reconstruction,
    out_dir: Path,
    settings: AttemptSettings,
    *,
    num_threads: int,
    seed: int,
    cancel: CancelToken,
) -> pycolmap.Reconstruction | None:
    """Go on from ``model`` with the incremental mapper and registration thresholds relaxed to at
    most 15 inliers at a ratio of 0.15 with more trials per image, to take in frames the first
    pass gave up on (the end of a walk that only links to the model through a few points).
    Returns the grown model, or None when it registered nothing more. Costs about a second:
    features and matches are reused, and it never starts a new model."""
    options = incremental_options(settings, num_threads, seed)
    options.multiple_models = False
    mapper = options.mapper
    mapper.abs_pose_min_num_inliers = min(settings.abs_pose_min_num_inliers, 15)
    mapper.abs_pose_min_inlier_ratio = min(settings.abs_pose_min_inlier_ratio, 0.15)
    mapper.max_reg_trials = max(mapper.max_reg_trials, 10)
    source, target = out_dir / "input", out_dir / "extended"
    source.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    model.write(source)
    with colmap_cancellation(cancel) as token:
        models = pycolmap.incremental_mapping(database, image_root, target, options=options,
                                              input_path=source, cancellation_token=token)
    cancel.check()
    grown = max(models.values(), key=lambda r: r.num_reg_images(), default=None)
    if grown is None or grown.num_reg_images() <= model.num_reg_images():
        return None
    return grown


def map_global(
    database: Path,
    image_root: Path,
    out_dir: Path,
    *,
    num_threads: int,
    seed: int,
    progress: Progress,
    cancel: CancelToken,
) -> list[pycolmap.Reconstruction]:
    """Run pycolmap's global mapper (GLOMAP); it has no per-image callback, so progress is coarse."""
    options = pycolmap.GlobalPipelineOptions()
    options.num_threads = num_threads
    options.random_seed = seed
    options.mapper.global_positioning.use_gpu = False
    options.mapper.bundle_adjustment.ceres.use_gpu = False
    cancel.check()
    progress.update(0.05, "global mapping: rotation averaging, positioning, bundle adjustment")
    out_dir.mkdir(parents=True, exist_ok=True)
    models = pycolmap.global_mapping(database, image_root, out_dir, options=options)
    cancel.check()
    return sorted(models.values(), key=lambda r: r.num_reg_images(), reverse=True)
