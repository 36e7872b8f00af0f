"""Texture baking speed and quality: recon.mesh.bake_texture vs open3d's project_images_to_albedo.

Both bake the same UV-unwrapped mesh (the ray-cast sample object, TSDF-fused from its depth,
cleaned and decimated to a detail preset, xatlas-unwrapped once) from the same posed photos
into a square texture, one after the other in this process. The table shows wall time, process
CPU time, and the PSNR of held-out photos (cameras between the baking views) against the
textured mesh re-rendered from those cameras, on object pixels. The steps before baking are
timed too (clean, decimate, unwrap).

    .venv/bin/python bench/mesh_bake.py                       # 30 views 800x600, 2048², reduced
    .venv/bin/python bench/mesh_bake.py --views 12 --size 1024 --detail preview
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import cv2
import numpy as np
import open3d as o3d

from recon.export.mesh_data import TexturedMesh
from recon.export.presets import triangle_budget
from recon.fusion import TSDFFusion, preset
from recon.mesh.bake import bake_texture
from recon.mesh.clean import clean_mesh
from recon.mesh.decimate import decimate
from recon.mesh.raycast import render_textured
from recon.mesh.types import Mesh
from recon.mesh.uv import unwrap
from recon.mesh.views import PosedView
from recon.sample.scene import ORBIT_TARGET, look_at, render_orbit, render_view


class Timer:
    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def held_out(camera, n: int = 4) -> list:
    out = []
    for az in np.radians(np.arange(n) * 360.0 / n + 23.0):
        el = np.radians(25.0)
        eye = ORBIT_TARGET + 0.5 * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
        out.append(render_view(camera, look_at(eye, ORBIT_TARGET)))
    return out


def psnr(mesh: TexturedMesh, photos: list) -> float:
    values = []
    for p in photos:
        rgb, hit = render_textured(mesh, p.camera, p.c2w)
        m = cv2.erode(p.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & hit
        err = (rgb.astype(np.float64) - p.rgb)[m]
        values.append(10 * np.log10(255.0**2 / np.mean(err**2)))
    return float(np.mean(values))


def open3d_albedo(uv_mesh, views: list[PosedView], size: int) -> TexturedMesh:
    """open3d's baker on the same mesh and photos (its intrinsics put pixel centres at integers)."""
    t = o3d.t.geometry.TriangleMesh()
    t.vertex.positions = o3d.core.Tensor(uv_mesh.vertices.astype(np.float32))
    t.triangle.indices = o3d.core.Tensor(uv_mesh.faces.astype(np.int64))
    t.triangle.texture_uvs = o3d.core.Tensor(uv_mesh.uvs[uv_mesh.faces].astype(np.float32))
    images, ks, exts = [], [], []
    for v in views:
        images.append(o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(v.image))))
        k = np.asarray(v.camera.matrix())
        k[:2, 2] -= 0.5
        ks.append(o3d.core.Tensor(k))
        exts.append(o3d.core.Tensor(np.linalg.inv(v.c2w)))
    albedo = np.asarray(t.project_images_to_albedo(images, ks, exts, size, False).as_tensor().numpy()).copy()
    tex = albedo[..., :3]
    if tex.dtype != np.uint8:
        tex = np.clip(tex * (255.0 if tex.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return TexturedMesh(uv_mesh.vertices, uv_mesh.faces, uv_mesh.uvs, tex)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=30)
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--detail", default="reduced")
    ap.add_argument("--voxel", type=float, default=0.002)
    args = ap.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"# {machine}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    size = (args.width, args.width * 3 // 4)
    with Timer() as t_render:
        rendered = render_orbit(args.views, size, elevations_deg=(10.0, 30.0, 55.0), radius_m=0.5)
    views = [PosedView(f"{i}", r.rgb, r.camera, r.c2w) for i, r in enumerate(rendered)]
    fusion = TSDFFusion(preset("object", voxel_size_m=args.voxel, min_weight=1.0))
    for r in rendered:
        fusion.add_frame(np.where(r.mask, r.depth_m, 0).astype(np.float32), r.camera, r.c2w)
    fused = fusion.extract_mesh()
    raw = Mesh(fused.vertices, fused.faces)
    steps = {}
    with Timer() as steps["clean"]:
        cleaned = clean_mesh(raw)
    with Timer() as steps["decimate"]:
        mesh = decimate(cleaned, triangle_budget(args.detail))
    with Timer() as steps["unwrap (xatlas)"]:
        uv_mesh = unwrap(mesh, args.size)
    print(f"# {args.views} views {size[0]}x{size[1]} (rendered in {t_render.wall:.0f} s), fused "
          f"{raw.n_faces} triangles -> {mesh.n_faces} ({args.detail}), "
          f"{len(uv_mesh.vertices)} atlas vertices")
    print("\n| step | wall s | CPU s |\n|---|---|---|")
    for name, t in steps.items():
        print(f"| {name} | {t.wall:.1f} | {t.cpu:.1f} |")
    photos = held_out(rendered[0].camera)
    print(f"\n| baker ({args.size}², {args.views} views) | wall s | CPU s | held-out PSNR dB |")
    print("|---|---|---|---|")
    with Timer() as t:
        ours = bake_texture(uv_mesh, views, args.size)
    print(f"| recon.mesh.bake_texture (top-3 blend, z-buffer, edge fade) | {t.wall:.1f} | {t.cpu:.1f} "
          f"| {psnr(ours, photos):.2f} |")
    with Timer() as t:
        theirs = open3d_albedo(uv_mesh, views, args.size)
    flipped = TexturedMesh(theirs.vertices, theirs.faces, theirs.uvs, theirs.texture[::-1].copy())
    score = max(psnr(theirs, photos), psnr(flipped, photos))  # whichever row order open3d meant
    print(f"| open3d project_images_to_albedo | {t.wall:.1f} | {t.cpu:.1f} | {score:.2f} |")


if __name__ == "__main__":
    main()
