"""Merging what other attempts registered into the kept model.

A retry runs on a fresh database, so its model can hold frames the kept model lacks. When the two
models share at least ``min_common`` frames, a similarity from their common camera centres
(Umeyama) brings the other model into the kept model's frame; if the common centres then agree
(to ``tolerance`` of the camera spread) its extra frames are added with their poses and cameras
(the kept model gains them as posed images without 3D points).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pycolmap

from recon.poses.evaluate import umeyama


@dataclass(frozen=True)
class MergedFrame:
    name: str
    c2w: np.ndarray  # (4, 4) OpenCV camera-to-world in the kept model's frame
    camera: pycolmap.Camera
    source: str  # which attempt it came from


def _centres(model: pycolmap.Reconstruction) -> dict[str, np.ndarray]:
    return {model.image(i).name: model.image(i).projection_center() for i in model.reg_image_ids()}


def merge_models(
    kept: pycolmap.Reconstruction,
    others: Sequence[tuple[str, pycolmap.Reconstruction]],
    *,
    min_common: int = 4,
    tolerance: float = 0.05,
) -> list[MergedFrame]:
    """Frames registered in ``others`` (named models) but not in ``kept``, posed in ``kept``'s frame."""
    kept_centres = _centres(kept)
    merged: dict[str, MergedFrame] = {}
    for label, other in others:
        other_centres = _centres(other)
        common = [n for n in other_centres if n in kept_centres]
        extra = [n for n in other_centres if n not in kept_centres and n not in merged]
        if len(common) < min_common or not extra:
            continue
        src = np.stack([other_centres[n] for n in common])  # (C, 3)
        dst = np.stack([kept_centres[n] for n in common])  # (C, 3)
        scale, rot, t = umeyama(src, dst)
        residual = np.linalg.norm(scale * src @ rot.T + t - dst, axis=1)  # (C,)
        spread = np.median(np.linalg.norm(dst - dst.mean(0), axis=1))
        if spread <= 0 or np.max(residual) > tolerance * spread:
            continue
        for name in extra:
            image = other.find_image_with_name(name)
            c2w_other = np.eye(4)
            c2w_other[:3, :] = image.cam_from_world().inverse().matrix()
            c2w = np.eye(4)
            c2w[:3, :3] = rot @ c2w_other[:3, :3]
            c2w[:3, 3] = scale * rot @ c2w_other[:3, 3] + t
            merged[name] = MergedFrame(name, c2w, other.camera(image.camera_id), label)
    return list(merged.values())


def add_posed_images(model: pycolmap.Reconstruction, frames: Sequence[MergedFrame]) -> None:
    """Add ``frames`` to ``model`` as registered images (each with its own camera), no points."""
    next_camera = max(model.cameras, default=0) + 1
    next_image = max([*model.images, 0]) + 1
    for fr in frames:
        camera = pycolmap.Camera(fr.camera.todict())
        camera.camera_id = next_camera
        model.add_camera_with_trivial_rig(camera)
        image = pycolmap.Image(name=fr.name, camera_id=next_camera, image_id=next_image)
        model.add_image_with_trivial_frame(image, pycolmap.Rigid3d(np.linalg.inv(fr.c2w)[:3, :]))
        next_camera += 1
        next_image += 1
