"""``scanbridge restyle SOURCE --prompt TEXT [--mode stylize|mask|render] -o out.mp4``: runs the restyle stage
as a job (progress, cancel with Ctrl-C, resume with ``scanbridge jobs``) and copies its MP4 to -o."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

STAGE_PATH = "restyle"  # the registered stage (pyproject.toml)


def add_restyle_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from generation.models.presets import PRESETS

    p = subparsers.add_parser(
        "restyle", help="restyle a capture's frames with a diffusion model into an MP4",
        description="Restyle SOURCE (a capture id, or anything 'scanbridge import' reads) by a text prompt, "
                    "keeping its structure through its own depth, and write an H.264 MP4 to -o; the "
                    "frames stay as PNGs in the run folder. Models are your own: a preset name resolves "
                    "to your folder (settings.json model_paths, or <workspace>/models/<name>), or is "
                    "fetched from the hub only with --download.",
    )
    p.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                   help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)")
    p.add_argument("source", metavar="SOURCE", help="capture id, or a path to import first")
    p.add_argument("--prompt", required=True, help="the look to give the capture")
    p.add_argument("--negative-prompt", default="", metavar="TEXT")
    p.add_argument("--mode", choices=("stylize", "mask", "render"), default="stylize",
                   help="stylize the whole frame; only the subject (its mask, or the near depth); or render "
                        "a finished look from the geometry alone (depth maps or --mesh; photos unused)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.mp4")
    p.add_argument("--preset", choices=list(PRESETS), default="sd15-depth")
    p.add_argument("--base", default="", metavar="MODEL", help="base model name, folder or hub id")
    p.add_argument("--controlnet", default="", metavar="MODEL",
                   help="depth ControlNet name, folder or hub id")
    p.add_argument("--fidelity", type=float, default=0.7, help="structure kept, 0 loose .. 1 strict")
    p.add_argument("--strength", type=float, default=0.75, help="how far the style may go, 0.05 .. 1")
    p.add_argument("--steps", type=int, default=0, help="denoising steps (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=0, metavar="PX", help="long side of a frame (default: preset)")
    p.add_argument("--keyframe-every", type=int, default=4, metavar="N",
                   help="diffuse every Nth frame; the others are warped from them by depth and pose")
    p.add_argument("--no-cross-frame", action="store_true", help="restyle keyframes independently")
    p.add_argument("--max-frames", type=int, default=0, metavar="N", help="only the first N frames")
    p.add_argument("--stride", type=int, default=1, metavar="N", help="every Nth frame of the capture")
    p.add_argument("--mesh", default="", metavar="PLY", help="a mesh in the capture to render depth from")
    p.add_argument("--fps", type=float, default=12.0)
    p.add_argument("--download", action="store_true", help="allow fetching models from the hub")
    p.add_argument("--allow-cpu", action="store_true", help="run full-size models on the CPU (hours)")
    p.add_argument("--name", default=None, help="capture name when SOURCE is imported")
    p.set_defaults(func=run_restyle_command)


def restyle_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "prompt": args.prompt, "negative_prompt": args.negative_prompt, "mode": args.mode,
        "preset": args.preset, "base": args.base, "controlnet": args.controlnet, "fidelity": args.fidelity,
        "strength": args.strength, "steps": args.steps, "seed": args.seed, "size": args.size,
        "keyframe_every": args.keyframe_every, "cross_frame": not args.no_cross_frame,
        "max_frames": args.max_frames, "stride": args.stride, "mesh": args.mesh, "fps": args.fps,
        "allow_download": args.download, "allow_cpu": args.allow_cpu,
    }


def run_restyle_command(args: argparse.Namespace) -> int:
    from core.console import progress_bar
    from core.errors import ConfigError
    from core.fsio import atomic_copy
    from core.jobs import Step
    from core.progress import Progress
    from core.worker import run_job
    from core.workspace import Workspace
    from generation.restyle.stage import (
        RestyleConfig,
        engine_settings,
        licence_ledger,
        model_registry,
        resolve_models,
    )

    if args.output.suffix.lower() != ".mp4":
        raise ConfigError("restyle writes an .mp4 video", args.output)
    config = restyle_config(args)
    engine_settings(RestyleConfig(**config))  # a bad option fails here, before anything is imported
    workspace = Workspace(getattr(args, "workspace", None))
    with progress_bar() as show:
        if workspace.has_capture(args.source):
            capture = workspace.capture(args.source)
        else:
            from recon.ingest import ingest

            capture = ingest(Path(args.source), workspace, name=args.name, progress=Progress("import", show))
        models = resolve_models(RestyleConfig(**config), model_registry(capture, args.download))
        for line in licence_ledger(capture).notices_to_show(models.values()):
            print(line, file=sys.stderr)
        outcome = run_job(workspace, capture.id, [Step(STAGE_PATH, config)], show)[-1]
    atomic_copy(outcome.run_dir / outcome.result["video"], args.output)
    result = outcome.result
    print(f"capture {capture.id}: {result['frames']} frames restyled ({len(result['keyframes'])} keyframes), "
          f"{result['size'][0]}x{result['size'][1]}, {result['runtime']}")
    if "warped_error" in result:
        print(f"temporal consistency: warped error {result['warped_error']:.1f} between consecutive frames "
              f"(the input photos: {result['input_warped_error']:.1f})")
    print(f"frames: {outcome.run_dir / 'frames'}")
    print(f"wrote {args.output}")
    return 0
