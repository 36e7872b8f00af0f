"""Dense geometry on an NVIDIA GPU: COLMAP's PatchMatch stereo through pycolmap, then a mesh.

The poses stage's COLMAP model (``sparse/0``) is undistorted into a workspace inside the run
folder, PatchMatch computes photometric then geometrically consistent depth and normal maps on
the GPU, stereo fusion merges them into an oriented, coloured point cloud, and screened Poisson
(open3d) turns that into a mesh. mesh.ply and points.ply are written with the same writers as
the CPU plane-sweep path, so the stages after ``mvs`` cannot tell which backend ran.

PatchMatch needs pycolmap built with CUDA (the ``pycolmap-cuda12`` wheel) and a CUDA device;
``unavailable_reason`` says why it cannot run here, and ``choose_backend`` picks a backend.
Undistortion, fusion and meshing run on the CPU.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import open3d as o3d
import pycolmap

from core.capture import CaptureFolder
from core.errors import ConfigError, InputError, ReconstructionError
from core.progress import CancelToken, Progress
from recon.fusion.ply import write_mesh_ply, write_points_ply
from recon.posed import load_posed_frames

BACKENDS = ("auto", "plane_sweep", "patch_match")
WORKSPACE_DIR = "patch_match"  # inside the run folder; removed after a successful run
MESH_FILE = "mesh.ply"
POINTS_FILE = "points.ply"
NO_CUDA_BUILD = "PatchMatch needs pycolmap built with CUDA (pycolmap-cuda12); use backend plane_sweep"
NO_CUDA_DEVICE = ("PatchMatch needs an NVIDIA GPU, and the CUDA driver reports none "
                  "(check the driver and CUDA_VISIBLE_DEVICES); use backend plane_sweep")

T = TypeVar("T")


@dataclass(frozen=True)
class PatchMatchConfig:
    max_image_size: int = 1600  # undistorted images (and so depth maps) are at most this, longer side
    max_views: int = 0  # evenly spaced subset of the registered photos; 0 = all of them
    num_source_images: int = 20  # per reference view, chosen by shared sparse points
    window_radius: int = 5  # NCC window half-size, pixels
    num_iterations: int = 5
    filter_min_num_consistent: int = 2  # source views that must agree with a depth
    gpu_index: str = "-1"  # "-1": every GPU; "0,1": those
    fusion_min_num_pixels: int = 5  # depth samples fused into one point, at least
    fusion_max_reproj_error_px: float = 2.0
    fusion_max_depth_error: float = 0.01  # relative
    fusion_max_normal_error_deg: float = 10.0
    poisson_depth: int = 10  # octree depth over the fused points' extent
    poisson_trim_quantile: float = 0.05  # drop this fraction of the least-supported vertices
    keep_workspace: bool = False  # keep undistorted images and depth maps after success

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"{why}, got {getattr(self, name)!r}", f"mvs.{name}")

        for name in ("max_image_size", "num_source_images", "window_radius", "num_iterations",
                     "filter_min_num_consistent", "fusion_min_num_pixels", "poisson_depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, "expected a positive whole number")
        if isinstance(self.max_views, bool) or not isinstance(self.max_views, int) or self.max_views < 0:
            raise bad("max_views", "expected a whole number >= 0 (0 = all)")
        for name in ("fusion_max_reproj_error_px", "fusion_max_depth_error", "fusion_max_normal_error_deg"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise bad(name, "expected a positive number")
        if not 0.0 <= float(self.poisson_trim_quantile) < 0.5:
            raise bad("poisson_trim_quantile", "expected a fraction in [0, 0.5)")
        if not isinstance(self.gpu_index, str) or not all(p.strip().lstrip("-").isdigit()
                                                          for p in self.gpu_index.split(",")):
            raise bad("gpu_index", 'expected "-1" or comma-separated GPU numbers like "0,1"')


# -- which backend ---------------------------------------------------------------------------


def cuda_device_count() -> int:
    """CUDA devices the driver offers this process (0 without an NVIDIA driver).

    Asks the driver API (libcuda) directly, so it needs neither torch nor a CUDA toolkit. This
    initialises the driver in the calling process, which is where PatchMatch then runs.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    names = {"Linux": ("libcuda.so.1", "libcuda.so"), "Windows": ("nvcuda.dll",)}.get(platform.system(), ())
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return 0
        except AttributeError:  # not the CUDA driver after all
            return 0
        return int(count.value)
    return 0


def unavailable_reason() -> str | None:
    """Why PatchMatch cannot run in this process, or None when it can."""
    if not bool(getattr(pycolmap, "has_cuda", False)):
        return NO_CUDA_BUILD
    if cuda_device_count() < 1:
        return NO_CUDA_DEVICE
    return None


def choose_backend(requested: str, unavailable: str | None) -> str:
    """The backend to run for ``requested`` (auto | plane_sweep | patch_match), given why
    PatchMatch is unavailable here (None: it is available). An explicit patch_match stays
    patch_match, so that running it reports the reason instead of silently falling back."""
    if requested not in BACKENDS:
        raise ConfigError(f"expected one of {', '.join(BACKENDS)}, got {requested!r}", "mvs.backend")
    if requested == "auto":
        return "patch_match" if unavailable is None else "plane_sweep"
    return requested


# -- steps -----------------------------------------------------------------------------------


def _run_cancellable(call: Callable[[pycolmap.CancellationToken], T], cancel: CancelToken,
                     tick: Callable[[], None] | None = None, interval_s: float = 0.5) -> T:
    """Run a blocking pycolmap call (it releases the GIL) on a thread, passing our cancel on
    to its CancellationToken and calling ``tick`` while it runs."""
    cancel.check()
    token = pycolmap.CancellationToken()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call(token)
        except BaseException as e:  # re-raised on the calling thread
            outcome["error"] = e

    worker = threading.Thread(target=target, name="pycolmap-mvs", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(interval_s)
        if cancel.cancelled:
            token.cancel()
        elif tick is not None:
            tick()
    cancel.check()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def select_images(model: pycolmap.Reconstruction, capture: CaptureFolder, poses_run: Path,
                  max_views: int) -> list[str]:
    """Names (capture-relative paths) of the registered photos to reconstruct, in name order:
    every one, or ``max_views`` evenly spaced ones."""
    photos = {f.image.relative_to(capture.root).as_posix()
              for f in load_posed_frames(capture, poses_run) if f.image is not None}
    names = sorted(im.name for im in model.images.values() if im.has_pose and im.name in photos)
    if len(names) < 3:
        raise ReconstructionError(f"dense stereo needs at least 3 posed photos, got {len(names)}")
    missing = [n for n in names if not (capture.root / n).is_file()]
    if missing:
        raise InputError("photo of a registered frame is missing", capture.root / missing[0])
    if max_views and len(names) > max_views:
        keep = np.linspace(0, len(names) - 1, max_views).round().astype(int)
        names = [names[i] for i in sorted(set(keep.tolist()))]
    return names


def undistort_workspace(model_dir: Path, image_root: Path, workspace: Path, image_names: list[str],
                        cfg: PatchMatchConfig, cancel: CancelToken) -> Path:
    """A COLMAP dense workspace (images/, sparse/, stereo/) of ``image_names`` only, undistorted
    to pinhole and at most ``cfg.max_image_size``; returns ``workspace``."""
    model = pycolmap.Reconstruction(model_dir)
    keep = set(image_names)
    # Leave the other frames out of the model altogether, so PatchMatch cannot pick them as
    # source views (their images are not undistorted).
    for image in list(model.images.values()):
        if image.has_pose and image.name not in keep:
            model.deregister_frame(image.frame_id)
    if workspace.exists():
        shutil.rmtree(workspace)
    subset = workspace.parent / f".{workspace.name}-model"
    if subset.exists():
        shutil.rmtree(subset)
    subset.mkdir(parents=True)
    try:
        model.write(subset)
        options = pycolmap.UndistortCameraOptions(max_image_size=cfg.max_image_size)
        _run_cancellable(lambda token: pycolmap.undistort_images(
            workspace, subset, image_root, output_type="COLMAP",
            num_patch_match_src_images=cfg.num_source_images, undistort_options=options,
            cancellation_token=token), cancel)
    finally:
        shutil.rmtree(subset, ignore_errors=True)
    listed = (workspace / "stereo" / "fusion.cfg").read_text().split()
    if len(listed) < len(image_names):
        lost = sorted(keep - set(listed))
        raise InputError("cannot read or undistort the photo", image_root / lost[0])
    return workspace


def _count_maps(workspace: Path) -> int:
    return sum(1 for _ in (workspace / "stereo" / "depth_maps").rglob("*.bin"))


def run_patch_match(workspace: Path, cfg: PatchMatchConfig, progress: Progress, cancel: CancelToken) -> Path:
    """Photometric, then geometrically consistent depth and normal maps for every view of
    ``workspace`` (on the GPU); returns the folder of depth maps."""
    reason = unavailable_reason()
    if reason is not None:
        raise ConfigError(reason, "mvs.backend")
    options = pycolmap.PatchMatchOptions(
        max_image_size=cfg.max_image_size, gpu_index=cfg.gpu_index, window_radius=cfg.window_radius,
        num_iterations=cfg.num_iterations, geom_consistency=True, filter=True,
        filter_min_num_consistent=cfg.filter_min_num_consistent,
    )
    views = len((workspace / "stereo" / "fusion.cfg").read_text().split())
    expected = 2 * views  # a photometric and a geometric map per view

    def tick() -> None:
        done = _count_maps(workspace)
        progress.update(done / expected, f"PatchMatch depth maps {done}/{expected}")

    _run_cancellable(lambda token: pycolmap.patch_match_stereo(
        workspace, workspace_format="COLMAP", options=options, cancellation_token=token), cancel, tick)
    maps = workspace / "stereo" / "depth_maps"
    if not any(maps.rglob("*.geometric.bin")):
        raise ReconstructionError("PatchMatch wrote no depth maps", maps)
    progress.update(1.0, f"PatchMatch depth maps for {views} views")
    return maps


def fuse_depth_maps(workspace: Path, cfg: PatchMatchConfig, cancel: CancelToken) -> Path:
    """Geometric depth and normal maps of ``workspace`` fused into workspace/fused.ply
    (points with normals and colours); returns its path."""
    options = pycolmap.StereoFusionOptions(
        min_num_pixels=cfg.fusion_min_num_pixels, max_reproj_error=cfg.fusion_max_reproj_error_px,
        max_depth_error=cfg.fusion_max_depth_error, max_normal_error=cfg.fusion_max_normal_error_deg,
    )
    fused = workspace / "fused.ply"
    _run_cancellable(lambda token: pycolmap.stereo_fusion(
        fused, workspace, workspace_format="COLMAP", input_type="geometric", options=options,
        output_type="ply", cancellation_token=token), cancel)
    if not fused.is_file():
        raise ReconstructionError("stereo fusion wrote no point cloud", fused)
    return fused


def mesh_fused_points(fused_ply: Path, out_dir: Path, cfg: PatchMatchConfig) -> dict[str, Any]:
    """Screened Poisson surface of the fused points, trimmed where few points support it and
    to the points' bounds; writes out_dir/mesh.ply and out_dir/points.ply."""
    cloud = o3d.io.read_point_cloud(str(fused_ply))
    n = len(cloud.points)
    if n < 100:
        raise ReconstructionError(f"stereo fusion kept only {n} points (too little texture or overlap?)",
                                  fused_ply)
    if not cloud.has_normals():
        cloud.estimate_normals()
    mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
        cloud, depth=cfg.poisson_depth)
    density = np.asarray(densities)  # (V,)
    if cfg.poisson_trim_quantile > 0 and len(density):
        mesh.remove_vertices_by_mask(density < np.quantile(density, cfg.poisson_trim_quantile))
    lo, hi = cloud.get_min_bound(), cloud.get_max_bound()
    margin = 0.01 * float(np.linalg.norm(hi - lo))
    mesh = mesh.crop(o3d.geometry.AxisAlignedBoundingBox(lo - margin, hi + margin))
    mesh.remove_unreferenced_vertices()
    if len(mesh.triangles) == 0:
        raise ReconstructionError("Poisson meshing of the fused points gave no surface", fused_ply)
    mesh.compute_vertex_normals()
    vertices = np.asarray(mesh.vertices)  # (V, 3)
    faces = np.asarray(mesh.triangles)  # (F, 3)
    colors = (np.clip(np.asarray(mesh.vertex_colors), 0.0, 1.0) * 255).round().astype(np.uint8) \
        if mesh.has_vertex_colors() else None  # (V, 3)
    write_mesh_ply(out_dir / MESH_FILE, vertices, faces, np.asarray(mesh.vertex_normals), colors)
    points = np.asarray(cloud.points)  # (N, 3)
    point_colors = (np.clip(np.asarray(cloud.colors), 0.0, 1.0) * 255).round().astype(np.uint8) \
        if cloud.has_colors() else None
    write_points_ply(out_dir / POINTS_FILE, points, np.asarray(cloud.normals), point_colors)
    return {
        "fused_points": n, "vertices": len(vertices), "triangles": len(faces),
        "bounds": [vertices.min(axis=0).tolist(), vertices.max(axis=0).tolist()],
        "mesh": MESH_FILE,
    }


def patch_match_mesh(poses_run: Path, capture: CaptureFolder, out_dir: Path, progress: Progress,
                     cancel: CancelToken, cfg: PatchMatchConfig) -> dict[str, Any]:
    """Undistort, PatchMatch (GPU), fuse and mesh the photos of ``poses_run``/sparse/0; writes
    ``out_dir``/mesh.ply and points.ply and returns a summary. ConfigError naming mvs.backend
    when PatchMatch cannot run here (checked before anything is written)."""
    reason = unavailable_reason()
    if reason is not None:
        raise ConfigError(reason, "mvs.backend")
    if poses_run is None:
        raise ConfigError("PatchMatch needs the output of the poses stage (its COLMAP model)", "mvs")
    model_dir = Path(poses_run) / "sparse" / "0"
    if not (model_dir / "images.bin").is_file():
        raise InputError("no COLMAP model here (run the poses stage again)", model_dir)
    model = pycolmap.Reconstruction(model_dir)
    if model.num_points3D() == 0:
        raise ReconstructionError("the poses run has no sparse points; PatchMatch chooses its "
                                  "source views and depth ranges from them", model_dir)
    names = select_images(model, capture, Path(poses_run), cfg.max_views)
    # COLMAP's INFO lines would drown the progress bar; warnings still show.
    pycolmap.logging.minloglevel = max(int(pycolmap.logging.minloglevel), 1)
    workspace = Path(out_dir) / WORKSPACE_DIR

    progress.update(0.0, f"undistorting {len(names)} photos")
    undistort_workspace(model_dir, capture.root, workspace, names, cfg, cancel)
    progress.update(0.1, f"undistorted {len(names)} photos")
    run_patch_match(workspace, cfg, progress.sub(0.1, 0.8), cancel)
    cancel.check()
    progress.update(0.8, "fusing depth maps")
    fused = fuse_depth_maps(workspace, cfg, cancel)
    cancel.check()
    progress.update(0.9, "meshing the fused points (Poisson)")
    result = mesh_fused_points(fused, Path(out_dir), cfg)
    if not cfg.keep_workspace:
        shutil.rmtree(workspace, ignore_errors=True)
    progress.update(1.0, f"{result['triangles']} triangles from {result['fused_points']} fused points")
    return {"views": len(names), **result}
