"""Shap-E latents from a prompt or a photo, and the latent's shape as our own triangle mesh.

diffusers' ``decode_to_mesh`` needs the marching-cubes case table that ships inside the real
renderer weights and always samples a 128^3 grid; we query the same implicit function (the
renderer's MLP with the latent's projected weights) on a grid of our size, mesh it with
scikit-image's marching cubes and colour the vertices from the same MLP. Shap-E's objects are
z-up in a [-1, 1] cube; the mesh we return is y-up (our convention), in those units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from core.errors import ReconstructionError
from recon.mesh.types import Mesh

QUERY_CHUNK = 1 << 15
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # (x, y, z) -> (x, z, -y)
TEXT_GUIDANCE = 15.0  # the values of Shap-E's own examples
IMAGE_GUIDANCE = 3.0


def _steps_reporter(on_step: Callable[[int, int], None]) -> Callable[[Iterable[Any]], Iterator[Any]]:
    """A stand-in for the pipeline's progress bar that reports each denoising step (and may raise to stop)."""

    def progress_bar(iterable: Iterable[Any] = (), **_: Any) -> Iterator[Any]:
        items = list(iterable)
        for i, item in enumerate(items):
            on_step(i, len(items))
            yield item

    return progress_bar


def shap_e_latent(pipe: Any, *, prompt: str | None = None, image: Any = None, steps: int = 64,
                  guidance: float | None = None, seed: int = 0,
                  on_step: Callable[[int, int], None] | None = None) -> Any:
    """The (1, tokens, width) latent of one asset from ``prompt`` (text pipeline) or ``image`` (PIL)."""
    import torch

    if (prompt is None) == (image is None):
        raise ValueError("give exactly one of prompt and image")
    if on_step is not None:
        pipe.progress_bar = _steps_reporter(on_step)  # the pipeline calls self.progress_bar(timesteps)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    condition = {"prompt": prompt} if prompt is not None else {"image": image}
    scale = guidance if guidance is not None else (TEXT_GUIDANCE if prompt is not None else IMAGE_GUIDANCE)
    out = pipe(**condition, num_inference_steps=int(steps), guidance_scale=float(scale),
               generator=generator, output_type="latent")
    return out.images[:1]


def _query(mlp: Any, points: np.ndarray, device: str, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """(signed distance (N,), colour (N, 3) in 0..1) of the renderer's MLP at ``points`` (N, 3)."""
    import torch

    sdf = np.empty(len(points), np.float32)
    rgb = np.empty((len(points), 3), np.float32)
    for start in range(0, len(points), QUERY_CHUNK):
        chunk = torch.from_numpy(points[start:start + QUERY_CHUNK]).to(device=device, dtype=dtype)[None]
        out = mlp(position=chunk, direction=None, ts=None, nerf_level="fine", rendering_mode="stf")
        sdf[start:start + len(chunk[0])] = out.signed_distance[0, :, 0].float().cpu().numpy()
        rgb[start:start + len(chunk[0])] = out.channels[0].float().cpu().numpy()
    return sdf, rgb


def latent_mesh(renderer: Any, latent: Any, grid_size: int = 128, device: str = "cpu") -> Mesh:
    """The latent's surface (SDF > 0 is inside) as a y-up vertex-coloured mesh in Shap-E's units."""
    import torch
    from skimage.measure import marching_cubes

    with torch.no_grad():
        projected = renderer.params_proj(latent.to(device=device, dtype=renderer.dtype))
        for name, param in renderer.mlp.state_dict().items():
            if f"nerstf.{name}" in projected:
                param.copy_(projected[f"nerstf.{name}"].squeeze(0))
        lo, hi = renderer.volume.bbox_min.cpu().numpy(), renderer.volume.bbox_max.cpu().numpy()
        axes = [np.linspace(lo[i], hi[i], grid_size, dtype=np.float32) for i in range(3)]
        points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        sdf, _ = _query(renderer.mlp, points, device, renderer.dtype)
        field = np.full((grid_size + 2,) * 3, -1.0, np.float32)  # an outside border closes the surface
        field[1:-1, 1:-1, 1:-1] = sdf.reshape((grid_size,) * 3)
        if not (field > 0).any():
            raise ReconstructionError("the generated shape is empty (its field is outside everywhere); "
                                      "try another prompt, photo or seed", "create")
        cell = (hi - lo) / (grid_size - 1)
        verts, faces, _normals, _values = marching_cubes(field, level=0.0, spacing=tuple(cell))
        verts = verts.astype(np.float32) + (lo - cell).astype(np.float32)  # index 1 is the first sample
        _, colours = _query(renderer.mlp, verts, device, renderer.dtype)
    y_up = verts.astype(np.float64) @ Z_UP_TO_Y_UP.T
    return Mesh(y_up, faces.astype(np.int64), np.clip(colours, 0.0, 1.0))
