"""Text -> 3D benchmark: seconds and peak memory per asset for our path (Shap-E latent, our SDF decode,
recon's clean/UV/bake/place, the USDZ) against the plain diffusers ShapEPipeline with its own mesh
decode (output_type="mesh"), side by side; then the render rate of our video path against open3d's
OffscreenRenderer on the same mesh and turntable path.

    .venv/bin/python bench/create.py --model FOLDER [--steps 64] [--grid 128] [--frames 12 --size 1920x1080]
    .venv/bin/python bench/create.py --tiny      # tiny random weights built in code (no download)

Peak memory is the process's resident set high-water mark (and CUDA's max allocated on a GPU), so
each path runs in its own child process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PROMPT = "a small wooden chair"


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _gpu_peak_mb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def _ours(model: str, steps: int, grid: int, out: Any) -> None:
    import torch
    from diffusers import ShapEPipeline

    from core.progress import CancelToken, Progress
    from generation.create.mesh_path import RESULT_FILE, finish_mesh
    from generation.create.shap_e import latent_mesh, shap_e_latent
    from recon.export.exporter import write_exports
    from recon.mesh.io import read_textured_npz

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    pipe = ShapEPipeline.from_pretrained(model, local_files_only=True, dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    t0 = time.perf_counter()
    latent = shap_e_latent(pipe, prompt=PROMPT, steps=steps)
    t1 = time.perf_counter()
    raw = latent_mesh(pipe.shap_e_renderer, latent, grid, device)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        finish_mesh(raw, Path(tmp), height_m=0.3, detail="medium", texture_size=1024, name="bench",
                    progress=Progress("bench"), cancel=CancelToken())
        t3 = time.perf_counter()
        written = write_exports(read_textured_npz(Path(tmp) / RESULT_FILE), Path(tmp), formats=("usdz",))
        t4 = time.perf_counter()
        size = written["usdz"].stat().st_size
    out.put({"path": "ours", "latent_s": t1 - t0, "decode_s": t2 - t1, "mesh_path_s": t3 - t2,
             "usdz_s": t4 - t3, "total_s": t4 - t0, "triangles_raw": raw.n_faces, "usdz_bytes": size,
             "peak_rss_mb": _peak_mb(), "peak_gpu_mb": _gpu_peak_mb(), "device": device})


def _plain(model: str, steps: int, grid: int, out: Any) -> None:
    import torch
    from diffusers import ShapEPipeline

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    pipe = ShapEPipeline.from_pretrained(model, local_files_only=True, dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    t0 = time.perf_counter()
    try:
        mesh = pipe(PROMPT, num_inference_steps=steps, guidance_scale=15.0, output_type="mesh",
                    generator=torch.Generator().manual_seed(0)).images[0]
        result: dict[str, Any] = {"triangles_raw": int(len(mesh.faces))}
    except Exception as e:  # noqa: BLE001 (reported in the table)
        result = {"error": f"{type(e).__name__}: {e}"[:160]}
    elapsed = time.perf_counter() - t0
    out.put({"path": "plain diffusers (output_type=mesh, its 128^3 decode)", "total_s": elapsed, **result,
             "peak_rss_mb": _peak_mb(), "peak_gpu_mb": _gpu_peak_mb(), "device": device})


def _in_child(fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args, queue)`` in a fresh process; what it put, or how it died."""
    import queue as queues

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=fn, args=(*args, queue))
    proc.start()
    while True:
        try:
            return queue.get(timeout=1.0)
        except queues.Empty:
            if not proc.is_alive():
                return {"what": fn.__name__, "error": f"the process died (exit code {proc.exitcode})"}


def _sphere_and_path(frames: int, width: int, height: int, rows: int, cols: int) -> tuple[Any, Any]:
    from generation.video.paths import Intrinsics, turntable
    from recon.export.samples import checker_texture, uv_sphere

    sphere = uv_sphere(rows=rows, cols=cols)
    mesh = type(sphere)(sphere.vertices, sphere.faces, sphere.uvs, checker_texture(2048, 2048, noise=0.15))
    intrinsics = Intrinsics.from_fov(width, height, 40.0)
    return mesh, turntable(np.zeros(3), 1.0, intrinsics, frames, elevation_deg=20.0)


def _ours_fps(frames: int, width: int, height: int, rows: int, cols: int, out: Any) -> None:
    from generation.video.render import FrameRenderer

    mesh, path = _sphere_and_path(frames, width, height, rows, cols)
    renderer = FrameRenderer(mesh)
    t0 = time.perf_counter()
    for pose in path.poses:
        renderer.render(pose, path.intrinsics)
    out.put({"renderer": "ours (numpy, generation.video.render)", "triangles": mesh.face_count,
             "fps": frames / (time.perf_counter() - t0)})


def _open3d_fps(frames: int, width: int, height: int, rows: int, cols: int, out: Any) -> None:
    import open3d as o3d

    mesh, path = _sphere_and_path(frames, width, height, rows, cols)
    renderer = o3d.visualization.rendering.OffscreenRenderer(width, height)
    tm = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices.astype(np.float64)),
                                   o3d.utility.Vector3iVector(mesh.faces.astype(np.int32)))
    material = o3d.visualization.rendering.MaterialRecord()
    material.shader = "defaultLit"
    renderer.scene.add_geometry("mesh", tm, material)
    k = path.intrinsics
    K = np.array([[k.fx, 0, k.cx], [0, k.fy, k.cy], [0, 0, 1]])
    t0 = time.perf_counter()
    for pose in path.poses:
        renderer.setup_camera(K, np.linalg.inv(pose), width, height)
        renderer.render_to_image()
    out.put({"renderer": "open3d OffscreenRenderer", "triangles": mesh.face_count,
             "fps": frames / (time.perf_counter() - t0)})


def render_rates(frames: int, width: int, height: int, rows: int, cols: int) -> list[dict[str, Any]]:
    """Frames per second of our FrameRenderer and of open3d's OffscreenRenderer, same mesh and path;
    each in a child process, since open3d aborts the process where it finds no GL/EGL context."""
    return [_in_child(fn, frames, width, height, rows, cols) for fn in (_ours_fps, _open3d_fps)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a Shap-E pipeline folder (openai/shap-e as saved by diffusers)")
    ap.add_argument("--tiny", action="store_true", help="tiny random weights built in code")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--grid", type=int, default=128)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--rows", type=int, default=250)
    ap.add_argument("--cols", type=int, default=500)
    ap.add_argument("--skip-render", action="store_true")
    ap.add_argument("--skip-create", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if args.skip_create:
            model = ""
        if not args.skip_create and (args.tiny or not model):
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "generation"))
            from tiny_models import save_tiny_shap_e

            model = str(save_tiny_shap_e(Path(tmp) / "tiny-shap-e"))
        for fn in (_ours, _plain) if model else ():
            print(json.dumps(_in_child(fn, model, args.steps, args.grid), default=float))
    if not args.skip_render:
        width, height = (int(x) for x in args.size.split("x"))
        for row in render_rates(args.frames, width, height, args.rows, args.cols):
            print(json.dumps(row))


if __name__ == "__main__":
    main()
