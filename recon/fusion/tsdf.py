"""TSDF fusion of depth frames, one frame at a time, on open3d's tensor VoxelBlockGrid.

Frames can arrive from a finished capture or a live stream: ``add_frame`` integrates one, and
``extract_mesh`` / ``extract_points`` can be called at any point to show the growing model.
A lock makes it safe to extract from one thread while another adds frames.

Why VoxelBlockGrid (open3d.t) and not the legacy ScalableTSDFVolume: on 2 CPU cores it
integrated Stray Scanner's 256x192 LiDAR frames faster at 2 cm and 1 cm voxels (see
bench/fusion.py and docs/benchmarks.md), takes float depth directly, and colour at its own
resolution.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, fields, replace
from typing import Any

import cv2
import numpy as np
import open3d as o3d
import open3d.core as o3c

from core.capture import Camera
from core.errors import ConfigError
from recon.export.mesh_data import area_weighted_normals
from recon.fusion.library_errors import fusion_error, touched_no_block
from recon.fusion.refine import DepthView, EvenSample, refine_vertices
from recon.fusion.validate import (
    check_camera,
    check_color,
    check_confidence,
    check_depth,
    check_pose,
    world_to_camera,
)
from recon.lens import is_distorted, pinhole, undistort_depth, undistort_image

CONFIDENCE_LEVELS = (0, 1, 2)  # ARKit: low, medium, high


@dataclass(frozen=True)
class FusionConfig:
    """How depth becomes a TSDF. Distances in metres."""

    voxel_size_m: float = 0.02
    trunc_voxels: float = 4.0  # truncation distance, in voxels
    min_depth_m: float = 0.2  # nearer measurements are dropped
    max_depth_m: float = 5.0  # farther ones too (LiDAR gets noisy past ~5 m)
    min_confidence: int = 1  # keep pixels whose confidence level is at least this
    min_weight: float = 2.0  # extract only voxels seen by at least this many frames
    color: bool = True  # keep a colour per voxel when frames bring colour
    block_resolution: int = 8  # voxels per block edge (8 was fastest on CPU)
    initial_blocks: int = 4096  # the block hash map grows on demand
    refine_views: int = 48  # depth frames kept (evenly spaced) to refine the mesh; 0 = none
    refine_iterations: int = 2

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"{why}, got {getattr(self, name)!r}", f"fusion.{name}")

        for name in ("voxel_size_m", "trunc_voxels", "max_depth_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise bad(name, "expected a positive number")
        for name in ("min_depth_m", "min_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise bad(name, "expected a number >= 0")
        if self.min_depth_m >= self.max_depth_m:
            raise bad("min_depth_m", f"must be less than max_depth_m ({self.max_depth_m})")
        if self.min_confidence not in CONFIDENCE_LEVELS or isinstance(self.min_confidence, bool):
            raise bad("min_confidence", "expected an ARKit level 0, 1 or 2")
        if self.block_resolution not in (4, 8, 16):
            raise bad("block_resolution", "expected 4, 8 or 16")
        blocks = self.initial_blocks
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
            raise bad("initial_blocks", "expected a positive whole number")
        if not isinstance(self.color, bool):
            raise bad("color", "expected true or false")
        for name in ("refine_views", "refine_iterations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(name, "expected a whole number >= 0")

    @property
    def trunc_m(self) -> float:
        return self.voxel_size_m * self.trunc_voxels


# Object: a thing on a table seen from 0.2-1.5 m; 4 mm voxels resolve phone LiDAR's detail and
# a 2 cm band absorbs its noise. Room: walls and furniture out to 5 m at 2 cm, fast enough to
# fuse a live 60 Hz stream on 2 CPU cores.
PRESETS: dict[str, FusionConfig] = {
    "object": FusionConfig(voxel_size_m=0.004, trunc_voxels=5.0, min_depth_m=0.1, max_depth_m=1.5),
    "room": FusionConfig(voxel_size_m=0.02, trunc_voxels=4.0, min_depth_m=0.2, max_depth_m=5.0),
}


def preset(name: str, **overrides: Any) -> FusionConfig:
    """A preset's config with some fields replaced; unknown names and keys raise ConfigError."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})", "fusion.preset")
    known = {f.name for f in fields(FusionConfig)}
    for key in overrides:
        if key not in known:
            raise ConfigError(f"unknown option (known: {', '.join(sorted(known))})", f"fusion.{key}")
    return replace(PRESETS[name], **overrides)


def _to_pinhole(
    metres: np.ndarray, conf: np.ndarray | None, rgb: np.ndarray | None, camera: Camera,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, Camera]:
    """A distorted frame's maps resampled as its pinhole camera sees them: depth never blended
    across an edge (recon.lens.undistort_depth), confidence by nearest pixel."""
    h, w = metres.shape
    metres = undistort_depth(metres, camera.scaled(w, h))
    if conf is not None:
        conf = undistort_image(conf, camera.scaled(w, h), nearest=True)[0]
    if rgb is not None:
        rgb = undistort_image(rgb, camera.scaled(rgb.shape[1], rgb.shape[0]))[0]
    return metres, conf, rgb, pinhole(camera)


@dataclass(frozen=True, eq=False)
class FusedMesh:
    vertices: np.ndarray  # (V, 3) float32 metres, world frame of the poses
    faces: np.ndarray  # (F, 3) int32
    normals: np.ndarray  # (V, 3) float32
    colors: np.ndarray | None  # (V, 3) uint8 RGB, None when no frame had colour

    @property
    def vertex_count(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def triangle_count(self) -> int:
        return int(self.faces.shape[0])

    def bounds(self) -> np.ndarray | None:
        """(2, 3): min and max corner in metres; None when empty."""
        if self.vertex_count == 0:
            return None
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    def to_open3d(self) -> o3d.geometry.TriangleMesh:
        mesh = o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(self.vertices.astype(np.float64)),
            o3d.utility.Vector3iVector(self.faces.astype(np.int32)),
        )
        mesh.vertex_normals = o3d.utility.Vector3dVector(self.normals.astype(np.float64))
        if self.colors is not None:
            mesh.vertex_colors = o3d.utility.Vector3dVector(self.colors.astype(np.float64) / 255.0)
        return mesh


@dataclass(frozen=True, eq=False)
class FusedPoints:
    points: np.ndarray  # (N, 3) float32 metres
    normals: np.ndarray  # (N, 3) float32
    colors: np.ndarray | None  # (N, 3) uint8 RGB

    @property
    def count(self) -> int:
        return int(self.points.shape[0])


def _colors_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


class TSDFFusion:
    """A growing TSDF volume. Poses are OpenCV camera-to-world in metres."""

    def __init__(self, config: FusionConfig | None = None) -> None:
        self.config = config or FusionConfig()
        self._device = o3c.Device("CPU:0")
        names, dtypes, channels = ["tsdf", "weight"], [o3c.float32, o3c.float32], [1, 1]
        if self.config.color:
            names.append("color")
            dtypes.append(o3c.float32)
            channels.append(3)
        self._grid = o3d.t.geometry.VoxelBlockGrid(
            attr_names=tuple(names), attr_dtypes=tuple(dtypes), attr_channels=tuple(channels),
            voxel_size=self.config.voxel_size_m, block_resolution=self.config.block_resolution,
            block_count=self.config.initial_blocks, device=self._device,
        )
        self._lock = threading.Lock()
        self._frames = 0
        self._colored_frames = 0
        self._sample: EvenSample[DepthView] = EvenSample(self.config.refine_views)

    @property
    def frame_count(self) -> int:
        """Frames integrated so far (frames with no usable depth pixel are not counted)."""
        return self._frames

    def _intrinsics(self, camera: Camera, width: int, height: int) -> o3c.Tensor:
        c = camera.scaled(width, height)
        return o3c.Tensor(np.array([[c.fx, 0.0, c.cx], [0.0, c.fy, c.cy], [0.0, 0.0, 1.0]]), o3c.float64)

    def add_frame(
        self,
        depth: np.ndarray,
        camera: Camera,
        c2w: np.ndarray,
        color: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
        *,
        depth_scale: float = 0.001,
        frame: str | None = None,
    ) -> int:
        """Integrate one frame; returns how many depth pixels were used (0: nothing integrated,
        also when the depth is too sparse for open3d to place it in the volume).

        depth: (H, W) uint16 in units of ``depth_scale`` metres, or float32 metres (0, NaN or
        inf = no measurement). camera: intrinsics at the colour resolution; they are scaled to
        the depth map's size. c2w: (4, 4) OpenCV camera-to-world. color: (h, w, 3) uint8 RGB.
        confidence: (H, W) uint8 ARKit levels. ``frame`` names the frame in errors. Any bad
        input raises one InputError and leaves the volume unchanged. A distorted camera (fisheye,
        OpenCV radial) has its depth, confidence and colour resampled to its pinhole first.
        """
        label = frame or f"frame {self._frames}"
        camera = check_camera(camera, label)
        metres = check_depth(depth, camera, depth_scale, label)  # (H, W) float32
        conf = check_confidence(confidence, metres.shape, label)
        rgb = check_color(color, camera, label)
        pose = check_pose(c2w, label)
        if is_distorted(camera):
            metres, conf, rgb, camera = _to_pinhole(metres, conf, rgb, camera)

        cfg = self.config
        keep = (metres >= cfg.min_depth_m) & (metres <= cfg.max_depth_m)
        if conf is not None and cfg.min_confidence > 0:
            keep &= conf >= cfg.min_confidence
        used = int(np.count_nonzero(keep))
        if used == 0:
            return 0
        metres = np.where(keep, metres, np.float32(0.0))

        h, w = metres.shape
        depth_t = o3d.t.geometry.Image(o3c.Tensor(metres))
        k_depth = self._intrinsics(camera, w, h)
        extrinsic = o3c.Tensor(world_to_camera(pose), o3c.float64)
        color_t = k_color = None
        if rgb is not None and cfg.color:
            if rgb.shape[0] > h:  # voxels sample colour at about the depth map's resolution
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            color_t = o3d.t.geometry.Image(o3c.Tensor(rgb.astype(np.float32) * np.float32(1.0 / 255.0)))
            k_color = self._intrinsics(camera, rgb.shape[1], rgb.shape[0])
        with self._lock:
            far, trunc = cfg.max_depth_m, cfg.trunc_voxels  # depth is already in metres: scale 1
            try:
                blocks = self._grid.compute_unique_block_coordinates(depth_t, k_depth, extrinsic, 1.0, far,
                                                                     trunc)
            except RuntimeError as e:
                if touched_no_block(e):  # so sparse that open3d's sampled pixels are all empty
                    return 0
                raise fusion_error(e, "placing this frame's depth in the volume", label) from None
            if blocks.shape[0] == 0:
                return 0
            grid = self._grid
            try:
                if color_t is not None:
                    grid.integrate(blocks, depth_t, color_t, k_depth, k_color, extrinsic, 1.0, far, trunc)
                else:
                    grid.integrate(blocks, depth_t, k_depth, extrinsic, 1.0, far, trunc)
            except RuntimeError as e:
                if touched_no_block(e):
                    return 0
                raise fusion_error(e, "integrating this frame's depth", label) from None
            if color_t is not None:
                self._colored_frames += 1
            self._frames += 1
            self._sample.offer(lambda: DepthView.reduced(metres, k_depth.numpy(), pose))
        return used

    @property
    def _weight_threshold(self) -> float:
        # open3d keeps voxels whose weight is strictly above the threshold; weights count frames
        return max(self.config.min_weight - 0.5, 0.0)

    def _has_color(self) -> bool:
        return self.config.color and self._colored_frames > 0

    def extract_mesh(self, refine: bool = False) -> FusedMesh:
        """The zero level set of the TSDF as a triangle mesh (empty before any frame). With
        ``refine``, vertices are then pulled onto the sampled depth frames (recon.fusion.refine):
        slower, for the final mesh rather than a live preview."""
        with self._lock:
            if self._frames == 0:
                return FusedMesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32),
                                 np.zeros((0, 3), np.float32), None)
            try:
                mesh = self._grid.extract_triangle_mesh(weight_threshold=self._weight_threshold)
            except RuntimeError as e:
                raise fusion_error(e, "extracting the surface", "TSDF volume") from None
            views = list(self._sample.items)
        vertices = mesh.vertex.positions.numpy().astype(np.float32)
        faces = mesh.triangle.indices.numpy().astype(np.int32) if "indices" in mesh.triangle \
            else np.zeros((0, 3), np.int32)
        normals = mesh.vertex.normals.numpy().astype(np.float32) if "normals" in mesh.vertex \
            else np.zeros_like(vertices)
        faces = faces.reshape(-1, 3)
        if refine and views and len(faces) and self.config.refine_iterations:
            vertices = refine_vertices(vertices, normals, views, max_offset=self.config.trunc_m / 2,
                                       iterations=self.config.refine_iterations)
            normals = area_weighted_normals(vertices, faces)
        colors = None
        if self._has_color() and "colors" in mesh.vertex:
            colors = _colors_u8(mesh.vertex.colors.numpy())
        return FusedMesh(vertices, faces, normals, colors)

    def extract_points(self) -> FusedPoints:
        """Surface points (zero crossings of the TSDF) with normals."""
        with self._lock:
            if self._frames == 0:
                return FusedPoints(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), None)
            try:
                cloud = self._grid.extract_point_cloud(weight_threshold=self._weight_threshold)
            except RuntimeError as e:
                raise fusion_error(e, "extracting the surface points", "TSDF volume") from None
        points = cloud.point.positions.numpy().astype(np.float32)
        normals = cloud.point.normals.numpy().astype(np.float32) if "normals" in cloud.point \
            else np.zeros_like(points)
        colors = None
        if self._has_color() and "colors" in cloud.point:
            colors = _colors_u8(cloud.point.colors.numpy())
        return FusedPoints(points, normals, colors)
