"""A capture's frames as the restyler needs them: colour, depth, pose and subject mask at one
working size, and the depth-ControlNet control images (clip-wide depth range, blurred by fidelity).

Depth comes from the frame's sensor depth map, else from a mesh rendered at the frame's pose
(exact geometry, no estimator), else the frame has none: it is then restyled without warping, with
a depth estimator's relative depth (``estimate_disparity``) as its ControlNet hint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.capture import Camera, CaptureFolder, Frame
from core.errors import InputError, StageError
from generation.restyle.warp import View
from recon.fusion.frames import read_color, read_depth_png

MULTIPLE = 8  # diffusion pipelines need sides divisible by the VAE's factor


@dataclass(frozen=True)
class RestyleFrame:
    frame_id: str
    rgb: np.ndarray  # (H, W, 3) uint8
    camera: Camera  # at (W, H)
    depth: np.ndarray | None = None  # (H, W) float32 metres, 0 = unknown
    c2w: np.ndarray | None = None  # (4, 4) OpenCV camera-to-world
    mask: np.ndarray | None = None  # (H, W) bool subject
    disparity: np.ndarray | None = None  # (H, W) estimated relative inverse depth, where no depth exists

    @property
    def view(self) -> View | None:
        if self.depth is None or self.c2w is None:
            return None
        return View(self.depth, self.c2w, self.camera)


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    scale = long_side / max(width, height)

    def fit(x: int) -> int:
        return max(MULTIPLE, int(round(x * scale / MULTIPLE)) * MULTIPLE)

    return fit(width), fit(height)


def nearest_at_centres(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize by taking the source pixel under each target pixel's centre (no mixing of depths;
    cv2's INTER_NEAREST takes a corner-side pixel instead, shifting the map by up to half a pixel)."""
    src_h, src_w = image.shape[:2]
    rows = np.minimum(((np.arange(height) + 0.5) * src_h / height).astype(np.int64), src_h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * src_w / width).astype(np.int64), src_w - 1)
    return image[rows[:, None], cols[None, :]]


def pick_frames(frames: Sequence[Frame], max_frames: int, stride: int) -> list[Frame]:
    chosen = [f for f in frames if f.image][:: max(1, stride)]
    return chosen[:max_frames] if max_frames > 0 else chosen


def load_frames(capture: CaptureFolder, long_side: int, *, max_frames: int = 0, stride: int = 1,
                mesh: Path | None = None) -> list[RestyleFrame]:
    manifest = capture.load()
    chosen = pick_frames(manifest.frames, max_frames, stride)
    if not chosen:
        raise StageError("the capture has no photos to restyle", capture.root)
    scene = _mesh_scene(mesh) if mesh is not None else None
    out = []
    for frame in chosen:
        rgb = read_color(capture.path(frame.image))
        w, h = working_size(rgb.shape[1], rgb.shape[0], long_side)
        camera = frame.camera.scaled(w, h)
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        c2w = np.array(frame.pose, np.float64) if frame.pose is not None else None
        depth = None
        if frame.depth:
            raw = read_depth_png(capture.path(frame.depth)).astype(np.float32) * frame.depth_scale
            depth = nearest_at_centres(raw, w, h)
        elif scene is not None and c2w is not None:
            from recon.mesh.raycast import depth_buffer

            hit = depth_buffer(scene, camera, c2w)
            depth = np.where(np.isfinite(hit), hit, 0.0).astype(np.float32)
        mask = None
        if frame.mask:
            raw_mask = cv2.imdecode(np.fromfile(capture.path(frame.mask), np.uint8), cv2.IMREAD_GRAYSCALE)
            if raw_mask is None:
                raise InputError("cannot decode this mask", capture.path(frame.mask))
            mask = cv2.resize(raw_mask, (w, h), interpolation=cv2.INTER_NEAREST) > 0
        out.append(RestyleFrame(frame.id, rgb, camera, depth, c2w, mask))
    return out


def _mesh_scene(path: Path):  # noqa: ANN202 (an open3d scene; open3d stays an implementation detail)
    from recon.mesh.io import read_mesh_ply
    from recon.mesh.raycast import make_scene

    mesh = read_mesh_ply(path)
    return make_scene(mesh.vertices, mesh.faces)


def subject_mask(frame: RestyleFrame) -> np.ndarray:
    """The capture's mask, else the near part of the depth map (Otsu on inverse depth), else everything."""
    if frame.mask is not None and frame.mask.any():
        return frame.mask
    if frame.depth is not None and (frame.depth > 0).sum() > 16:
        known = frame.depth > 0
        inverse = np.zeros_like(frame.depth)
        inverse[known] = 1.0 / frame.depth[known]
        scaled = (255 * inverse / inverse.max()).astype(np.uint8)
        _, near = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        return (near > 0) & known
    return np.ones(frame.rgb.shape[:2], bool)


def control_images(frames: Sequence[RestyleFrame], blur_sigma_fraction: float) -> list[np.ndarray]:
    """Depth ControlNet hints (H, W, 3) float32 in 0..1, near = bright, one depth range for the clip
    so a surface keeps its shade from frame to frame; frames without depth get their grey image."""
    known = [f.depth[f.depth > 0] for f in frames if f.depth is not None and (f.depth > 0).any()]
    near = far = None
    if known:
        values = np.concatenate(known)
        near, far = float(np.percentile(values, 1)), float(np.percentile(values, 99))
        far = max(far, near * 1.01)
    hints = []
    for f in frames:
        if (f.depth is None or near is None) and f.disparity is not None:
            lo, hi = np.percentile(f.disparity, [1, 99])
            hint = (f.disparity - lo) / max(float(hi - lo), 1e-6)
        elif f.depth is None or near is None:
            hint = cv2.cvtColor(f.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        else:
            d = np.clip(f.depth, near, far)
            hint = np.where(f.depth > 0, (1.0 / d - 1.0 / far) / (1.0 / near - 1.0 / far), 0.0)
        sigma = blur_sigma_fraction * f.rgb.shape[1]
        if sigma > 0.3:
            hint = cv2.GaussianBlur(hint.astype(np.float32), (0, 0), sigma)
        hints.append(np.repeat(np.clip(hint, 0, 1).astype(np.float32)[..., None], 3, axis=2))
    return hints


def edge_images(frames: Sequence[RestyleFrame], fidelity: float) -> list[np.ndarray]:
    """Edge ControlNet hints (H, W, 3) float32 in 0..1, white lines on black (as canny and lineart nets
    were trained on), from each mock-up frame. Higher fidelity keeps fainter lines (lower thresholds)."""
    high = int(round(200 - 120 * fidelity))  # fidelity 0: only strong lines; 1: faint ones too
    hints = []
    for f in frames:
        grey = cv2.cvtColor(f.rgb, cv2.COLOR_RGB2GRAY)
        edges = cv2.Canny(grey, high // 2, high).astype(np.float32) / 255.0
        hints.append(np.repeat(edges[..., None], 3, axis=2))
    return hints


def estimate_disparity(processor: Any, model: Any, rgb: np.ndarray) -> np.ndarray:
    """A transformers depth estimator's relative inverse depth (near = large) at the image's size."""
    import torch

    inputs = processor(images=rgb, return_tensors="pt")
    device = next(model.parameters()).device
    with torch.no_grad():
        predicted = model(**{k: v.to(device) for k, v in inputs.items()}).predicted_depth
    estimate = predicted[0].float().cpu().numpy()
    return cv2.resize(estimate, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
