"""The ``mcc`` stage: one RGB-D frame of a capture completed into a whole object, mesh.ply.

The frame's depth gives the seen points (camera frame, metres); the object's pixels come from
the capture's mask for that frame, a box the user drew, or the depth itself; the network fills
in the unseen side, and the mesh goes to the capture's world frame through the frame's device
pose, so the mesh stage places it on the ground at its true size like any other method's.
Weights: the small model shipped in resources/mcc, or a model id the user installed in the
settings (``model_paths``), such as Meta's research checkpoint (licence shown in the log).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from core.errors import ConfigError, InputError
from core.ports import RAW_MESH
from core.resources import Resources
from core.stages import StageContext, StageSpec
from recon.fusion.frames import read_frame
from recon.fusion.ply import write_mesh_ply
from recon.mcc.frame import backproject, prepare_view
from recon.mcc.infer import SeenFrame, complete
from recon.mcc.mask import mask_from_box, mask_from_depth
from recon.mcc.weights import load_model
from recon.mesh.placement import ARKIT_SOURCES

MESH_FILE = "mesh.ply"
MASKS = ("auto", "depth", "capture", "box")
DEVICES = ("auto", "cpu", "cuda")
FLOORS = ("auto", "lowest-seen", "none")
MAX_FRAME = 10_000_000


@dataclass(frozen=True)
class MCCStageConfig:
    frame: int | None = None  # index into capture.json's frames; None: the middle frame with depth
    # auto (the frame's mask if any, else the box if given, else depth) | depth | capture | box
    mask: str = "auto"
    box: tuple[int, ...] | None = None  # x0, y0, x1, y1 in the colour image's pixels (mask "box")
    resolution: int = 48  # query grid per axis
    threshold: float | None = None  # probability that counts as inside; None: the model's default
    weights: str = "default"  # default (shipped in resources/mcc) | a model id from the settings
    carve: bool = True  # remove what the frame shows to be empty (in front of its depth, off the object)
    # auto: with gravity (ARKit, live RGB-D: world +y up) the object stands at its lowest seen point,
    # so nothing is predicted below it | lowest-seen (the same, always) | none
    floor: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.frame is not None and (isinstance(self.frame, bool) or not isinstance(self.frame, int)
                                       or not 0 <= self.frame <= MAX_FRAME):
            raise ConfigError(f"expected a frame number (0 or more), got {self.frame!r}", "mcc.frame")
        if self.mask not in MASKS:
            raise ConfigError(f"must be one of {', '.join(MASKS)}, got {self.mask!r}", "mcc.mask")
        if self.box is not None:
            if len(self.box) != 4 or not all(isinstance(v, int) and not isinstance(v, bool)
                                             and 0 <= v <= 100_000 for v in self.box):
                raise ConfigError(f"expected four pixel numbers x0, y0, x1, y1, got {self.box!r}", "mcc.box")
        if self.mask == "box" and self.box is None:
            raise ConfigError("mask is 'box' but no box was given", "mcc.box")
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int) \
                or not 8 <= self.resolution <= 256:
            raise ConfigError(f"expected a whole number in 8..256, got {self.resolution!r}", "mcc.resolution")
        if self.threshold is not None and (isinstance(self.threshold, bool)
                                           or not isinstance(self.threshold, (int, float))
                                           or not 0 < self.threshold < 1):
            raise ConfigError(f"expected a probability between 0 and 1, got {self.threshold!r}",
                              "mcc.threshold")
        if not isinstance(self.weights, str) or not self.weights or len(self.weights) > 200:
            raise ConfigError("expected 'default' or a model id from the settings", "mcc.weights")
        if self.floor not in FLOORS:
            raise ConfigError(f"must be one of {', '.join(FLOORS)}, got {self.floor!r}", "mcc.floor")
        if not isinstance(self.carve, bool):
            raise ConfigError(f"expected true or false, got {self.carve!r}", "mcc.carve")
        if self.device not in DEVICES:
            raise ConfigError(f"must be one of {', '.join(DEVICES)}, got {self.device!r}", "mcc.device")


def _device(setting: str, ctx_device: str) -> str:
    if setting == "cpu":
        return "cpu"
    if setting == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("no CUDA GPU is available to torch on this machine", "mcc.device")
        return "cuda"
    return ctx_device if ctx_device.startswith(("cuda", "mps")) else "cpu"


def pick_frame(frames: list, index: int | None) -> int:
    """The frame to complete: ``index`` (checked), else the middle one of those with depth."""
    with_depth = [i for i, f in enumerate(frames) if f.depth]
    if not with_depth:
        raise InputError("no frame of this capture has a depth map (mcc needs RGB-D)", "frames")
    if index is None:
        return with_depth[len(with_depth) // 2]
    if index >= len(frames):
        raise ConfigError(f"the capture has frames 0..{len(frames) - 1}, not {index}", "mcc.frame")
    if not frames[index].depth:
        raise ConfigError(f"frame {index} has no depth map (frames with depth: {with_depth[:10]}"
                          f"{'...' if len(with_depth) > 10 else ''})", "mcc.frame")
    return index


@dataclass(frozen=True)
class FrameData:
    rgb: np.ndarray  # [H, W, 3] uint8 at the depth map's size
    points: np.ndarray  # [H, W, 3] camera-frame metres, NaN where no depth
    mask: np.ndarray  # [H, W] bool, the object
    seen: SeenFrame
    c2w: np.ndarray | None
    mask_source: str


def frame_inputs(ctx: StageContext, config: MCCStageConfig, index: int) -> FrameData:
    """The frame's colour, camera-frame points and object mask at the depth map's size, its pose,
    and a word for where the mask came from."""
    frame = ctx.capture.load().frames[index]
    arrays = read_frame(ctx.capture, frame)
    h, w = arrays.depth.shape
    depth = arrays.depth.astype(np.float32) * float(frame.depth_scale)
    if arrays.confidence is not None:
        depth[arrays.confidence == 0] = 0  # ARKit's low-confidence depth is mostly edges and noise
    cam = frame.camera.scaled(w, h)
    points = backproject(depth, cam.fx, cam.fy, cam.cx, cam.cy)
    rgb = arrays.color if arrays.color is not None else np.full((h, w, 3), 128, np.uint8)
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    mode = config.mask
    if mode == "auto":
        mode = "capture" if frame.mask else ("box" if config.box is not None else "depth")
    if mode == "capture":
        if not frame.mask:
            raise ConfigError(f"frame {index} has no mask in the capture", "mcc.mask")
        m = cv2.imread(str(ctx.capture.path(frame.mask)), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise InputError("cannot read this mask", ctx.capture.path(frame.mask))
        mask = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) > 0
    elif mode == "box":
        assert config.box is not None
        sx, sy = w / frame.camera.width, h / frame.camera.height
        x0, y0, x1, y1 = config.box
        mask = mask_from_box(points, (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)))
    else:
        mask = mask_from_depth(points)
    seen = SeenFrame(depth, mask, cam.fx, cam.fy, cam.cx, cam.cy)
    manifest = ctx.capture.load()
    gravity = manifest.mode == "rgbd" or str(manifest.source.get("kind", "")).lower() in ARKIT_SOURCES
    if config.floor == "lowest-seen" or (config.floor == "auto" and gravity and arrays.c2w is not None):
        if arrays.c2w is None:
            raise ConfigError("the frame has no pose, so where the floor is is unknown", "mcc.floor")
        up = arrays.c2w[:3, :3].T @ np.array([0.0, 1.0, 0.0])  # world +y in the camera frame
        object_points = points[mask & np.isfinite(points).all(axis=-1)]
        seen = dataclasses.replace(seen, up=up, floor=float(np.percentile(object_points @ up, 0.5)))
    return FrameData(rgb, points, mask, seen, arrays.c2w, mode)


def run(ctx: StageContext, config: MCCStageConfig) -> dict[str, Any]:
    manifest = ctx.capture.load()
    index = pick_frame(list(manifest.frames), config.frame)
    ctx.progress.update(0.0, f"reading frame {index}")
    if config.weights == "default":
        loaded = load_model(None)
        weights_hash = None
    else:
        resolved = ctx.models.resolve(config.weights)
        loaded = load_model(resolved.path)
        weights_hash = resolved.sha256
    if "licence" in loaded.about:
        ctx.progress.warning(loaded.about["licence"])
    device = _device(config.device, ctx.device)
    model = loaded.model.to(device)
    data = frame_inputs(ctx, config, index)
    c2w, mask = data.c2w, data.mask
    view = prepare_view(data.rgb, data.points, mask, model.config.rgb_size, model.config.xyz_size)
    ctx.cancel.check()
    ctx.progress.update(0.2, f"completing frame {index} ({int(mask.sum())} object pixels)")
    started = time.monotonic()
    done = complete(model, view, config.resolution, config.threshold, device,
                    data.seen if config.carve else None)
    seconds = time.monotonic() - started
    vertices = done.vertices
    if c2w is not None:
        vertices = vertices @ c2w[:3, :3].T + c2w[:3, 3]
    normals = np.zeros_like(vertices)
    write_mesh_ply(ctx.out_dir / MESH_FILE, vertices, done.faces, normals, done.colours)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    ctx.progress.log(f"mcc: frame {index}, {len(vertices)} vertices, {len(done.faces)} triangles "
                     f"in {seconds:.2f} s")
    return {
        "frame": index,
        "frame_id": manifest.frames[index].id,
        "mask": data.mask_source,
        "carved": config.carve,
        "object_pixels": int(mask.sum()),
        "seen_points": int(view.valid.sum()),
        "weights": config.weights,
        "weights_source": loaded.source,
        "weights_sha256": weights_hash,
        "device": device,
        "frame_in_world": c2w is not None,
        "occupied_cells": done.occupied,
        "seconds": round(seconds, 3),
        "vertices": len(vertices),
        "triangles": len(done.faces),
        "bounds_m": [[round(float(v), 4) for v in lo], [round(float(v), 4) for v in hi]],
        "extent_m": [round(float(v), 4) for v in hi - lo],
        "files": [MESH_FILE],
    }


STAGE = StageSpec(
    name="mcc",
    config_cls=MCCStageConfig,
    run=run,
    reads=(),  # no earlier run: the capture's own frames
    writes=(RAW_MESH,),
    resources=Resources(gpu=True, gpu_memory_gb=2),
    description="MCC-style completion of one RGB-D frame (occupancy and colour at grid queries), "
                "marching cubes",
)
