"""A generated object as a one-frame RGB-D capture: what tests and the benchmark complete."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.capture import Camera, CaptureFolder, Frame, Manifest, utc_now
from core.workspace import Workspace
from recon.mcc.data import Camera as RenderCamera
from recon.mcc.data import GeneratedObject, random_camera, random_object, render


@dataclass(frozen=True)
class GeneratedView:
    obj: GeneratedObject
    camera: RenderCamera
    rgb: np.ndarray  # [H, W, 3] uint8
    depth: np.ndarray  # [H, W] metres, 0 = background


def generated_view_images(seed: int, size: int = 192) -> GeneratedView:
    """A held-out object (``seed`` picks it) seen once from a random camera."""
    rng = np.random.default_rng(seed)
    while True:
        obj = random_object(rng)
        cam = random_camera(rng, obj, size)
        rgb, depth = render(obj, cam)
        if (depth > 0).sum() >= 200:
            return GeneratedView(obj, cam, rgb, depth)


def write_generated_capture(workspace: Workspace, view: GeneratedView,
                            name: str = "generated") -> CaptureFolder:
    """One ingested RGB-D frame (colour PNG, 16-bit depth in mm, device pose, metric scale)."""
    cid = workspace.new_capture_id(name)
    cam = view.camera
    with workspace.staged_capture(cid) as cap:
        cap.images_dir.mkdir()
        cap.depth_dir.mkdir()
        cv2.imwrite(str(cap.images_dir / "000000.png"), cv2.cvtColor(view.rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(cap.depth_dir / "000000.png"), np.round(view.depth * 1000).astype(np.uint16))
        frame = Frame(id="000000", camera=Camera(cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy),
                      image="images/000000.png", depth="depth/000000.png", depth_scale=0.001,
                      pose=tuple(tuple(float(x) for x in row) for row in cam.c2w))
        cap.save(Manifest(id=cid, name=name, created=utc_now(), mode="rgbd", frames=(frame,),
                          status="ingested", scale="metric", source={"kind": "generated"}))
    return workspace.capture(cid)
