"""Restyle benchmark: ours against the plain diffusers pipeline with its default settings, side by side.

On the bundled sample (its photos, sensor depth and poses), for N frames at one size:
- seconds per keyframe and peak memory (GPU: torch's peak allocation; CPU: the process's peak RSS
  above what it held before), for the plain StableDiffusionControlNetImg2ImgPipeline called once per
  frame with diffusers' defaults (its scheduler, 50 steps, strength 0.8, guidance 7.5) and for ours
  (the preset's scheduler and steps, keyframes every --keyframe-every frames, cross-frame attention,
  the rest warped by depth and pose);
- temporal consistency: the warped error between consecutive output frames (capture depth and poses),
  for the plain pipeline, per-frame restyle with our settings, and ours;
- structure kept: Pearson correlation of the output's estimated inverse depth (the depth estimator)
  with the capture's true inverse depth, and of the input photo's, for scale.

Without --gpu it runs tiny random models built in code (tests/generation/tiny_models.py) on the CPU:
the timings then say how the code paths compare, not what real weights do. With --gpu it uses the
weights registered in --workspace (settings.json model_paths or <workspace>/models/<name>).

    .venv/bin/python bench/restyle.py [--frames 8] [--size 64] [--gpu --workspace DIR --preset sd15-lcm]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


class PeakMemory:
    """Peak memory of a block: CUDA's max allocation, or the sampled RSS peak above the start."""

    def __init__(self, gpu: bool) -> None:
        self.gpu = gpu
        self.peak_mb = 0.0

    def __enter__(self) -> PeakMemory:
        import psutil
        import torch

        if self.gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        self._process = psutil.Process()
        self._start = self._process.memory_info().rss
        self._peak = self._start
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.01):
                self._peak = max(self._peak, self._process.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        import torch

        if self.gpu:
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return
        self._stop.set()
        self._thread.join()
        self.peak_mb = (self._peak - self._start) / 2**20


def timed(fn: Callable[[], Any], gpu: bool) -> tuple[Any, float, float]:
    with PeakMemory(gpu) as memory:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
    return out, seconds, memory.peak_mb


def structure_kept(frames: list[np.ndarray], depths: list[np.ndarray], processor: Any, net: Any) -> float:
    """Mean Pearson correlation of the estimated inverse depth with the true inverse depth."""
    from generation.restyle.frames import estimate_disparity

    scores = []
    for image, depth in zip(frames, depths, strict=True):
        known = depth > 0
        if known.sum() < 16:
            continue
        estimate = estimate_disparity(processor, net, image)[known]
        truth = 1.0 / depth[known]
        if estimate.std() > 0 and truth.std() > 0:
            scores.append(float(np.corrcoef(estimate, truth)[0, 1]))
    return float(np.mean(scores)) if scores else float("nan")


def tiny_models(root: Path) -> dict[str, str]:
    sys.path.insert(0, str(REPO / "tests" / "generation"))
    from tiny_models import save_tiny_depth_anything, save_tiny_sd15

    base, controlnet = save_tiny_sd15(root)
    return {"sd15": str(base), "sd15-controlnet-depth": str(controlnet),
            "depth-anything-v2-small": str(save_tiny_depth_anything(root / "depth"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=0, help="long side (default: 64 on CPU, 512 with --gpu)")
    ap.add_argument("--keyframe-every", type=int, default=4)
    ap.add_argument("--gpu", action="store_true", help="real weights on the GPU")
    ap.add_argument("--workspace", type=Path, default=None, help="where your real weights are registered")
    ap.add_argument("--preset", default="", help="ours (default: sd15-lcm with --gpu, sd15-depth on CPU)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import diffusers
    import torch

    from core.settings import load_settings
    from core.workspace import Workspace
    from generation.models import ModelRegistry, RuntimeSettings
    from generation.models.loader import load_depth_estimator, load_restyle_pipeline
    from generation.models.presets import PRESETS
    from generation.restyle.engine import RestyleSettings, restyle_frames
    from generation.restyle.frames import control_images, load_frames
    from generation.restyle.warp import warped_error
    from recon.ingest import ingest
    from recon.sample import bundled_sample_dir

    size = args.size or (512 if args.gpu else 64)
    preset = PRESETS[args.preset or ("sd15-lcm" if args.gpu else "sd15-depth")]
    device = "cuda" if args.gpu else "cpu"
    dtype = "float16" if args.gpu else "float32"
    with tempfile.TemporaryDirectory(prefix="bench-restyle-") as tmp:
        if args.gpu:
            root = args.workspace or Path.home() / "ScanBridge"
            paths = load_settings(root / "settings.json").model_paths
            registry = ModelRegistry(root / "models", paths)
        else:
            paths = tiny_models(Path(tmp) / "models")
            registry = ModelRegistry(None, paths)
        workspace = Workspace(Path(tmp) / "ws")
        capture = ingest(bundled_sample_dir(), workspace, name="sample")
        frames = load_frames(capture, size, max_frames=args.frames)
        views = [f.view for f in frames]
        depths = [f.depth for f in frames]
        runtime = RuntimeSettings(device, dtype)
        base, net = registry.resolve(preset.base, "sd15"), registry.resolve(preset.controlnet, "controlnet")

        # The plain pipeline, as diffusers' documentation calls it: defaults everywhere.
        held = {"plain": diffusers.StableDiffusionControlNetImg2ImgPipeline.from_pretrained(
            base.location, controlnet=diffusers.ControlNetModel.from_pretrained(
                net.location, local_files_only=True, dtype=getattr(torch, dtype)),
            local_files_only=True, dtype=getattr(torch, dtype), safety_checker=None,
            requires_safety_checker=False).to(device)}
        held["plain"].set_progress_bar_config(disable=True)
        hints = control_images(frames, 0.0)
        prompt = "a bronze statue on a stone floor, museum lighting"

        def run_plain() -> list[np.ndarray]:
            out = []
            for frame, hint in zip(frames, hints, strict=True):
                image = held["plain"](prompt=prompt, image=frame.rgb.astype(np.float32)[None] / 255.0,
                              control_image=hint[None], height=frame.rgb.shape[0], width=frame.rgb.shape[1],
                              generator=torch.Generator().manual_seed(args.seed), output_type="np").images[0]
                out.append(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8))
            return out

        plain_frames, plain_s, plain_mb = timed(run_plain, args.gpu)
        print(f"plain pipeline: {plain_s / len(frames):.3f} s per frame, peak {plain_mb:.0f} MB", flush=True)
        held.clear()  # its weights leave memory before ours are measured
        gc.collect()
        if args.gpu:
            torch.cuda.empty_cache()
        pipe = load_restyle_pipeline(base, net, runtime, lora=registry.resolve(preset.lora, "lora")
                                     if preset.lora else None, scheduler=preset.scheduler)
        common = {"prompt": prompt, "steps": preset.steps, "guidance": preset.guidance, "seed": args.seed}
        per_frame, per_frame_s, per_frame_mb = timed(lambda: restyle_frames(
            pipe, frames, RestyleSettings(cross_frame=False, keyframe_every=1, **common)), args.gpu)
        ours, ours_s, ours_mb = timed(lambda: restyle_frames(
            pipe, frames, RestyleSettings(cross_frame=True, keyframe_every=args.keyframe_every, **common)),
            args.gpu)
        depth_model = registry.resolve("depth-anything-v2-small", "depth-estimator")
        processor, estimator = load_depth_estimator(depth_model, device=device)
        rows = [
            ("plain diffusers (defaults, per frame)", plain_s / len(frames), len(frames), plain_s, plain_mb,
             plain_frames),
            (f"per-frame, our settings ({preset.name})", per_frame_s / len(frames), len(frames), per_frame_s,
             per_frame_mb, per_frame.frames),
            (f"ours ({preset.name}, cross-frame, keyframe every {args.keyframe_every})",
             ours_s / len(ours.keyframes), len(ours.keyframes), ours_s, ours_mb, ours.frames),
        ]
        where = f"GPU ({torch.cuda.get_device_name()})" if args.gpu else "CPU, tiny random models"
        h, w = frames[0].rgb.shape[:2]
        print(f"{len(frames)} frames of the bundled sample at {w}x{h}, {where}")
        print("| pipeline | s / keyframe | keyframes | s total | peak memory MB | warped error "
              "| structure r |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, per_key, keys, total, mb, out in rows:
            kept = structure_kept(out, depths, processor, estimator)
            print(f"| {name} | {per_key:.3f} | {keys} | {total:.2f} | {mb:.0f} | "
                  f"{warped_error(out, views):.2f} | {kept:.3f} |")
        print(f"| input photos | | | | | {warped_error([f.rgb for f in frames], views):.2f} | "
              f"{structure_kept([f.rgb for f in frames], depths, processor, estimator):.3f} |")
        print(f"ours / plain seconds per output frame: {ours_s / plain_s:.3f}")


if __name__ == "__main__":
    main()
