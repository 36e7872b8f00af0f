"""A trained nerfacto: loaded through the same config it trained with, rendered from any camera
of the capture's world, and the map between the capture's world and nerfstudio's frame.

nerfstudio moves the poses into its own frame (dataparser_transforms.json): a point p of the
capture's world is ``scale * (R p + t)`` there. Rendered depth is divided by ``scale`` to be in
the capture's units again; cameras are mapped the other way before rendering.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.capture import Camera
from core.errors import InputError
from recon.nerf.data import DATA_DIR, OPENCV_TO_OPENGL
from recon.nerf.nsconfig import TrainSettings, no_lpips_download, trainer_config, use_threads
from recon.nerf.training import load_checkpoint_file

DATAPARSER_TRANSFORMS = "dataparser_transforms.json"


@dataclass(frozen=True, eq=False)
class NerfFrame:
    """nerfstudio's frame relative to the capture's world: x_ns = scale * (R x + t)."""

    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)
    scale: float

    @classmethod
    def read(cls, path: Path) -> NerfFrame:
        try:
            data = json.loads(path.read_text())
            m = np.asarray(data["transform"], np.float64)
            scale = float(data["scale"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"cannot read: {e}", path) from None
        if m.shape != (3, 4) or not np.isfinite(m).all() or not np.isfinite(scale) or scale <= 0:
            raise InputError("expected a finite 3x4 transform and a positive scale", path)
        return cls(m[:, :3], m[:, 3], scale)

    def camera_to_ns(self, c2w: np.ndarray) -> np.ndarray:
        """(4, 4) OpenCV camera-to-world of the capture -> (3, 4) OpenGL camera-to-world in nerfstudio."""
        gl = c2w @ OPENCV_TO_OPENGL
        out = np.empty((3, 4))
        out[:, :3] = self.rotation @ gl[:3, :3]
        out[:, 3] = self.scale * (self.rotation @ gl[:3, 3] + self.translation)
        return out

    def points_to_world(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) nerfstudio points -> the capture's world."""
        return (points / self.scale - self.translation) @ self.rotation


@dataclass(frozen=True, eq=False)
class Rendered:
    rgb: np.ndarray  # (H, W, 3) float32 0..1
    depth: np.ndarray  # (H, W) float32 z-depth in the capture's units (along the optical axis)
    accumulation: np.ndarray  # (H, W) float32 0..1, how opaque the ray ended


class TrainedNerf:
    """A checkpoint loaded into nerfacto for rendering (inference mode: no images loaded)."""

    def __init__(self, out_dir: Path, settings: TrainSettings, checkpoint: Path, base_dir: Path) -> None:
        use_threads(settings)
        cfg = trainer_config(out_dir / DATA_DIR, out_dir, settings)
        with no_lpips_download():
            self.pipeline = cfg.pipeline.setup(device=settings.device, test_mode="inference")
        state = load_checkpoint_file(checkpoint)
        self.pipeline.load_pipeline(state["pipeline"], state["step"])
        self.pipeline.eval()
        self.step = int(state["step"])
        self.device = settings.device
        self.frame = NerfFrame.read(base_dir / DATAPARSER_TRANSFORMS)

    @torch.no_grad()
    def render(self, camera: Camera, c2w: np.ndarray) -> Rendered:
        """Render a pinhole ``camera`` (capture conventions) at OpenCV camera-to-world ``c2w``."""
        from nerfstudio.cameras.cameras import Cameras, CameraType

        pose = torch.tensor(self.frame.camera_to_ns(c2w)[None], dtype=torch.float32)
        cams = Cameras(camera_to_worlds=pose, fx=float(camera.fx), fy=float(camera.fy), cx=float(camera.cx),
                       cy=float(camera.cy), width=int(camera.width), height=int(camera.height),
                       camera_type=CameraType.PERSPECTIVE).to(self.device)
        out: dict[str, Any] = self.pipeline.model.get_outputs_for_camera(cams)
        rgb = out["rgb"].clamp(0, 1).cpu().numpy().astype(np.float32)
        distance = out["depth"][..., 0].cpu().numpy().astype(np.float64)
        acc = out["accumulation"][..., 0].cpu().numpy().astype(np.float32)
        # Ray directions are unit vectors: distance along the ray -> depth along the optical axis.
        u = (np.arange(camera.width) + 0.5 - camera.cx) / camera.fx
        v = (np.arange(camera.height) + 0.5 - camera.cy) / camera.fy
        norm = np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2)
        depth = (distance / norm / self.frame.scale).astype(np.float32)
        return Rendered(rgb, depth, acc)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in 0..1."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else -10.0 * float(np.log10(mse))
