"""Restyling a capture's textured mesh into a new AR asset, consistent across views.

The mesh is rendered with its current texture from the capture's own camera poses; those renders
(with their exact depth) are restyled together like a clip's keyframes (depth ControlNet,
cross-frame attention anchored on the first view, one seed); the edited views are fused in the
texture's UV space by recon's baker (each texel: the best-facing views that see it, weighted by
resolution); and the loop repeats with the fused texture, at a lower strength, so the views
agree more each round (render -> edit -> re-bake). Only the texture changes: vertices, faces
and UVs are the mesh's own, so the result exports exactly like the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from core.capture import Camera
from core.progress import CancelToken, Progress
from generation.restyle.engine import RestyleSettings, restyle_frames
from generation.restyle.frames import RestyleFrame
from recon.export.mesh_data import TexturedMesh
from recon.mesh.bake import bake_texture
from recon.mesh.raycast import depth_buffer, make_scene, render_textured
from recon.mesh.uv import UVMesh
from recon.mesh.views import PosedView

ROUND_STRENGTH_DECAY = 0.6  # each re-bake round edits less than the one before


@dataclass(frozen=True)
class AssetView:
    """A camera the mesh is rendered from: intrinsics at the working size and OpenCV camera-to-world."""

    view_id: str
    camera: Camera
    c2w: np.ndarray  # (4, 4), in the mesh's own frame


@dataclass(frozen=True)
class AssetRestyle:
    texture: np.ndarray  # (S, S, 3) uint8, for the mesh's own UVs
    disagreement: list[float]  # per round: mean |edited view - fused texture rendered there| (0..255)
    coverage: float  # fraction of the mesh's area (texels) some view saw


def split_corners(mesh: TexturedMesh) -> UVMesh:
    """The mesh with one vertex per face corner, so per-vertex and per-corner UVs bake alike."""
    corners = mesh.vertices[mesh.faces].reshape(-1, 3).astype(np.float64)
    faces = np.arange(len(corners), dtype=np.int64).reshape(-1, 3)
    uvs = mesh.corner_uvs().reshape(-1, 2).astype(np.float64)
    return UVMesh(corners, faces, uvs, mesh.faces.reshape(-1).astype(np.int64))


def render_views(mesh: TexturedMesh, views: Sequence[AssetView]) -> list[RestyleFrame]:
    """The textured mesh seen from each view: colour, exact z-depth (0 off the mesh), and its mask."""
    scene = make_scene(mesh.vertices, mesh.faces)
    frames = []
    for view in views:
        rgb, hit = render_textured(mesh, view.camera, view.c2w)
        z = depth_buffer(scene, view.camera, view.c2w)
        depth = np.where(np.isfinite(z) & hit, z, 0.0).astype(np.float32)
        frames.append(RestyleFrame(view.view_id, rgb, view.camera, depth, view.c2w, hit))
    return frames


def _disagreement(edited: Sequence[np.ndarray], rendered: Sequence[RestyleFrame]) -> float:
    diffs = [np.abs(e.astype(np.float32) - r.rgb.astype(np.float32))[r.mask].mean()
             for e, r in zip(edited, rendered, strict=True) if r.mask is not None and r.mask.any()]
    return float(np.mean(diffs)) if diffs else 0.0


def restyle_texture(pipe: Any, mesh: TexturedMesh, views: Sequence[AssetView], settings: RestyleSettings, *,
                    rounds: int = 2, texture_size: int = 0, reference: np.ndarray | None = None,
                    progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> AssetRestyle:
    """A restyled texture for ``mesh`` (in the same frame as ``views``): ``rounds`` of render -> edit
    -> re-bake. ``texture_size`` 0 keeps the mesh's texture size."""
    progress = progress or Progress("restyle-asset")
    cancel = cancel or CancelToken()
    if not views:
        raise ValueError("no views to restyle the mesh from")
    size = texture_size or int(mesh.texture.shape[0])
    uv_mesh = split_corners(mesh)
    current = mesh
    disagreement: list[float] = []
    coverage = 0.0
    for r in range(rounds):
        share = (r / rounds, (r + 1) / rounds)
        cancel.check()
        rendered = render_views(current, views)
        round_settings = replace(settings, mode="stylize", keyframe_every=1, cross_frame=True,
                                 strength=max(0.05, settings.strength * ROUND_STRENGTH_DECAY ** r))
        if round_settings.steps * round_settings.strength < 1:
            round_settings = replace(round_settings, strength=1.0 / round_settings.steps)
        result = restyle_frames(pipe, rendered, round_settings, reference=reference,
                                progress=progress.sub(share[0], share[0] + 0.8 * (share[1] - share[0])),
                                cancel=cancel)
        posed = [PosedView(f.frame_id, out, f.camera, f.c2w, f.mask)
                 for f, out in zip(rendered, result.frames, strict=True)]
        baked = bake_texture(uv_mesh, posed, size, cancel=cancel)
        current = TexturedMesh(mesh.vertices, mesh.faces, mesh.uvs, baked.texture, mesh.normals)
        disagreement.append(_disagreement(result.frames, render_views(current, views)))
        coverage = _coverage(uv_mesh, posed, size)
        progress.update(share[1], f"round {r + 1}/{rounds}: views disagree by {disagreement[-1]:.1f}")
    return AssetRestyle(current.texture, disagreement, coverage)


def _coverage(uv_mesh: UVMesh, views: Sequence[PosedView], size: int) -> float:
    """Fraction of the texels whose surface point faces, and is visible from, at least one view."""
    from recon.mesh.bake import rasterize_uv

    _, face, bary = rasterize_uv(uv_mesh, size)
    tri = uv_mesh.vertices[uv_mesh.faces[face]]
    points = np.einsum("tk,tkd->td", bary, tri)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    scene = make_scene(uv_mesh.vertices, uv_mesh.faces)
    seen = np.zeros(len(points), bool)
    for view in views:
        _, pin, z = view.project(points)
        w, h = view.camera.width, view.camera.height
        inside = ((z > 1e-6) & (pin[:, 0] > -0.5) & (pin[:, 0] < w - 0.5)
                  & (pin[:, 1] > -0.5) & (pin[:, 1] < h - 0.5))
        facing = np.einsum("td,td->t", normals, view.center - points) > 0
        zbuf = depth_buffer(scene, view.camera, view.c2w)
        xi = np.clip(np.rint(pin[:, 0]), 0, w - 1).astype(np.int64)
        yi = np.clip(np.rint(pin[:, 1]), 0, h - 1).astype(np.int64)
        seen |= inside & facing & (z <= zbuf[yi, xi] * 1.01 + 1e-4)
    return float(seen.mean()) if len(seen) else 0.0
