"""Neural reconstruction on the CPU: our stages against nerfstudio's stock nerfacto, side by side.

The scene is recon.sample's object (25 cm tall, known geometry) seen by an orbit of training
views; held-out views at another height are rendered by the same ray caster and never trained
on. Each method runs in its own child process (for an honest peak memory) with the same steps,
rays and image size where they share them, and the table gives held-out PSNR and SSIM, wall
and CPU time, peak memory (max RSS of the child) and the Chamfer distance / F-score (1 cm) of
its mesh against the true surface (recon.sample.evaluate, the ground left out).

    nerf (ours)      nerfacto through recon.nerf (CPU-sized hash grid and samples, SMALL_MODEL)
    ns nerfacto      nerfstudio's own ``method_configs["nerfacto"]`` (stock sizes), same data,
                     steps and rays; LPIPS stubbed (no AlexNet download), eval and viewer off
    splat (ours)     recon.splat's plain-torch rasterizer and trainer
    surface (ours)   recon.surface's stage (hash-grid SDF), on the same capture

    .venv/bin/python bench/neural.py                       # 300 steps, 64x48 training images
    .venv/bin/python bench/neural.py --steps 100 --methods nerf,ns-nerfacto
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

METHODS = ("nerf", "ns-nerfacto", "splat", "surface")
TRAIN_VIEWS, HELD_OUT = 16, 4


def _scene(size: tuple[int, int]) -> tuple[list[Any], list[Any]]:
    from recon.sample.scene import render_orbit

    train = render_orbit(TRAIN_VIEWS, size, elevations_deg=(20.0, 45.0), radius_m=0.55)
    held = render_orbit(HELD_OUT, size, elevations_deg=(30.0,), radius_m=0.55)
    return train, held


def _image_scores(pred: np.ndarray, truth_u8: np.ndarray) -> tuple[float, float]:
    from recon.splat.train import psnr, ssim

    a = torch.from_numpy(np.clip(pred, 0, 1).astype(np.float32))
    b = torch.from_numpy(truth_u8.astype(np.float32) / 255.0)
    return psnr(a, b), float(ssim(a, b))


def _mesh_scores(make_mesh: Any) -> dict[str, float | None]:
    """Chamfer (mm) and F-score of the mesh ``make_mesh()`` fuses; None when no surface came out."""
    from core.errors import ReconstructionError
    from recon.sample.evaluate import surface_metrics

    try:
        vertices = make_mesh().vertices
    except ReconstructionError:
        return {"chamfer_mm": None, "fscore": None}
    m = surface_metrics(np.asarray(vertices))
    return {"chamfer_mm": 1000.0 * m["chamfer_m"], "fscore": m["fscore"]}


def _nerf_dataset(out: Path, train: list[Any]) -> list[Any]:
    from core.fsio import atomic_write_bytes, atomic_write_json
    from recon.nerf.data import TrainingView, _png, transforms_for

    views = []
    for i, v in enumerate(train):
        name = f"frame_{i:05d}.png"
        atomic_write_bytes(out / "data" / "images" / name, _png(v.rgb))
        views.append(TrainingView(name, v.camera, v.c2w))
    atomic_write_json(out / "data" / "transforms.json", transforms_for(views))
    return views


def run_nerf(out: Path, args: argparse.Namespace, stock: bool) -> dict[str, Any]:
    from core.checkpoints import Checkpoints
    from core.progress import CancelToken, Progress
    from recon.nerf.mesh import fuse_rendered_depth
    from recon.nerf.model import TrainedNerf
    from recon.nerf.nsconfig import TrainSettings
    from recon.nerf.training import train as train_ours

    train, held = _scene(args.size)
    views = _nerf_dataset(out, train)
    settings = TrainSettings(steps=args.steps, rays_per_batch=args.rays, device="cpu", small_model=not stock,
                             cpu_threads=args.threads, checkpoint_every=10**6)
    started = time.perf_counter()
    if stock:
        model = _train_stock_nerfacto(out, settings)
    else:
        result = train_ours(out / "data", out, settings, Checkpoints(out / "checkpoints"), Progress("nerf"),
                            CancelToken())
        model = TrainedNerf(out, settings, result.checkpoint, result.base_dir)
    seconds = time.perf_counter() - started
    scores = [_image_scores(model.render(v.camera, v.c2w).rgb, v.rgb) for v in held]
    mesh = _mesh_scores(lambda: fuse_rendered_depth(model, views, 150.0, 0.5, Progress("mesh"),
                                                    CancelToken()))
    return {"train_s": seconds, "psnr": float(np.mean([s[0] for s in scores])),
            "ssim": float(np.mean([s[1] for s in scores])), **mesh}


def _train_stock_nerfacto(out: Path, settings: Any) -> Any:
    """nerfstudio's own nerfacto method config (what ``ns-train nerfacto`` builds), run as a library."""
    import copy

    from nerfstudio.configs.method_configs import method_configs

    from recon.nerf.model import DATAPARSER_TRANSFORMS, NerfFrame
    from recon.nerf.nsconfig import no_lpips_download, use_threads

    use_threads(settings)
    torch.manual_seed(0)
    cfg = copy.deepcopy(method_configs["nerfacto"])
    cfg.output_dir, cfg.experiment_name, cfg.timestamp = out / "ns", "bench", "run"
    cfg.vis = "tensorboard"
    cfg.logging.local_writer.enable = False
    cfg.steps_per_eval_batch = cfg.steps_per_eval_image = cfg.steps_per_eval_all_images = 0
    cfg.steps_per_save = 10**6
    cfg.max_num_iterations = settings.steps
    cfg.machine.device_type = "cpu"
    cfg.mixed_precision = False
    cfg.data = out / "data"
    dm = cfg.pipeline.datamanager
    dm.data = dm.dataparser.data = out / "data"
    dm.dataparser.eval_mode = "all"
    dm.dataparser.downscale_factor = 1
    dm.train_num_rays_per_batch = dm.eval_num_rays_per_batch = settings.rays_per_batch
    cfg.pipeline.model.implementation = "torch"
    cfg.pipeline.model.eval_num_rays_per_chunk = 1 << 12
    with no_lpips_download():
        trainer = cfg.setup(local_rank=0, world_size=1)
        trainer.setup()
        trainer.train()
    return _StockModel(trainer.pipeline, NerfFrame.read(cfg.get_base_dir() / DATAPARSER_TRANSFORMS))


class _StockModel:
    """Renders a trained stock pipeline like recon.nerf.model.TrainedNerf renders ours."""

    def __init__(self, pipeline: Any, frame: Any) -> None:
        from recon.nerf.model import TrainedNerf

        self.pipeline, self.frame, self.device = pipeline, frame, "cpu"
        self.pipeline.eval()
        self.render = TrainedNerf.render.__get__(self)  # the same camera mapping and depth conversion


def run_splat(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from core.progress import CancelToken, Progress
    from recon.sample.scene import OBJECT_BOUNDS
    from recon.splat.gaussians import init_params
    from recon.splat.mesh import fuse_rendered_depth
    from recon.splat.raster import rasterize
    from recon.splat.train import TrainConfig, Trainer, train
    from recon.splat.views import TrainView

    torch.set_num_threads(args.threads)
    train_views, held = _scene(args.size)

    def view(i: int, v: Any) -> TrainView:
        return TrainView(f"v{i}", v.rgb.astype(np.float32) / 255.0, v.camera, v.c2w)

    views = [view(i, v) for i, v in enumerate(train_views)]
    rng = np.random.default_rng(0)
    lo, hi = np.array(OBJECT_BOUNDS[0]) - 0.1, np.array(OBJECT_BOUNDS[1]) + 0.05
    points = rng.uniform(lo, hi, size=(1000, 3))  # no SfM or depth seed: random points, as a photo capture
    params = init_params(points, None, sh_degree=1, seed=0)
    background = torch.tensor(np.mean([v.rgb.reshape(-1, 3).mean(axis=0) for v in views], axis=0))
    config = TrainConfig(steps=args.steps, max_splats=3000)
    trainer = Trainer(params, background, views, config, rasterize, extent=0.66)
    started = time.perf_counter()
    result = train(trainer, [], out / "checkpoints", Progress("splat"), CancelToken())
    seconds = time.perf_counter() - started
    scores = []
    with torch.no_grad():
        for v in held:
            tv = view(0, v)
            rendered = rasterize(result.params, torch.from_numpy(tv.viewmat), torch.from_numpy(tv.K),
                                 v.camera.width, v.camera.height, result.background)
            scores.append(_image_scores(rendered.rgb.numpy(), v.rgb))
    mesh = _mesh_scores(lambda: fuse_rendered_depth(result.params, result.background, views, rasterize, 150.0,
                                                    Progress("mesh"), CancelToken()))
    return {"train_s": seconds, "psnr": float(np.mean([s[0] for s in scores])),
            "ssim": float(np.mean([s[1] for s in scores])), **mesh}


def run_surface(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from core.stages import execute_stage
    from core.workspace import Workspace
    from recon.ingest import ingest
    from recon.mesh.io import read_mesh_ply
    from recon.sample.dataset import write_capture_folder

    torch.set_num_threads(args.threads)
    train_views, _ = _scene(args.size)
    capture = ingest(write_capture_folder(train_views, out / "src", with_depth=True), Workspace(out / "ws"),
                     name="bench")
    started = time.perf_counter()
    run = execute_stage(capture, "surface", {"detail": "preview", "steps": args.steps, "device": "cpu",
                                             "image_max_side": max(args.size)})
    seconds = time.perf_counter() - started  # training and marching cubes
    return {"train_s": seconds, "psnr": None, "ssim": None,
            **_mesh_scores(lambda: read_mesh_ply(run.run_dir / "mesh.ply"))}


def run_one(method: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{method}-") as tmp:
        out = Path(tmp)
        cpu0 = time.process_time()
        if method in ("nerf", "ns-nerfacto"):
            row = run_nerf(out, args, stock=method == "ns-nerfacto")
        elif method == "splat":
            row = run_splat(out, args)
        else:
            row = run_surface(out, args)
        row["cpu_s"] = time.process_time() - cpu0
    row["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return row


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rays", type=int, default=256, help="rays per batch (the NeRFs)")
    parser.add_argument("--size", default="64x48", help="training image size WxH")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one method here, print its row as JSON
    args = parser.parse_args(argv)
    args.size = tuple(int(x) for x in args.size.lower().split("x"))
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return 0
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; known: {', '.join(METHODS)}")
    print(f"{args.steps} steps, {args.rays} rays, {args.size[0]}x{args.size[1]} px, {args.threads} "
          f"thread(s), {TRAIN_VIEWS} training and {HELD_OUT} held-out views; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| method | held-out PSNR dB | SSIM | train s (wall) | CPU s | peak MiB | Chamfer mm "
          "| F-score 1 cm |")
    print("|---|---|---|---|---|---|---|---|")
    for method in methods:
        cmd = [sys.executable, __file__, "--one", method, "--steps", str(args.steps),
               "--rays", str(args.rays), "--size", f"{args.size[0]}x{args.size[1]}",
               "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"| {method} | failed: {done.stderr.strip().splitlines()[-1:]} |||||||")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {method} | {_fmt(r['psnr'], '.2f')} | {_fmt(r['ssim'], '.3f')} | {r['train_s']:.0f} | "
              f"{r['cpu_s']:.0f} | {r['peak_mib']:.0f} | {_fmt(r['chamfer_mm'], '.1f')} | "
              f"{_fmt(r['fscore'], '.3f')} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
