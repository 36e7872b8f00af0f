"""``scanbridge create --prompt TEXT | --image PHOTO [--size 0.3] [--refine-steps N] -o model.usdz``.

Makes a new capture for the asset (core.generated), queues the ``create`` method on it (progress
shown, Ctrl-C cancels, ``scanbridge jobs resume`` continues) and copies the published file to -o.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

OUT_SUFFIXES = (".usdz", ".glb", ".obj", ".ply")


def add_create_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "create", parents=[common], help="make an AR model from a text prompt or one photo (Shap-E)",
        description="Make a textured model from a text prompt or one photo with Shap-E (your own weights: "
        "the model names shap-e and shap-e-img2img resolve to settings.json model_paths or "
        "<workspace>/models/<name>; fetched from the hub only with --download), standing on the ground at "
        "the height you give, as a new capture of the workspace; its USDZ passes the ARKit check.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", metavar="TEXT", help="what to make")
    source.add_argument("--image", type=Path, metavar="PHOTO", help="a photo of one object")
    p.add_argument("--size", type=float, default=0.3, metavar="METRES", help="how tall (default 0.3)")
    p.add_argument("--refine-steps", type=int, default=0, metavar="N",
                   help="score-distillation steps against Stable Diffusion after Shap-E (default 0)")
    p.add_argument("--steps", type=int, default=64, help="Shap-E denoising steps (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="", metavar="MODEL", help="Shap-E model name, folder or hub id")
    p.add_argument("--grid", type=int, default=128, help="marching-cubes grid size (default 128)")
    p.add_argument("--detail", choices=("preview", "reduced", "medium", "full"), default="medium")
    p.add_argument("--name", default="", help="the capture's name (default: from the prompt or photo)")
    p.add_argument("--download", action="store_true", help="allow fetching missing weights from the hub")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="MODEL.usdz",
                   help="where to copy the model (.usdz, .glb, .obj or .ply)")
    p.set_defaults(func=run_create_command)


def create_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {"height_m": args.size, "refine_steps": args.refine_steps, "steps": args.steps,
               "seed": args.seed, "grid_size": args.grid, "allow_download": bool(args.download)}
    if args.model:
        options["model"] = args.model
    return options


def run_create_command(args: argparse.Namespace) -> int:
    from core.console import progress_bar
    from core.errors import ConfigError
    from core.generated import create_overrides, new_generated_capture
    from core.stages import load_stage, make_config
    from core.submit import method_job
    from core.worker import run_job
    from core.workspace import Workspace
    from recon.export.stage import copy_published

    if args.out.suffix.lower() not in OUT_SUFFIXES:
        raise ConfigError(f"name the model file with one of {', '.join(OUT_SUFFIXES)}", args.out)
    overrides = create_overrides(args.prompt or "", create_options(args))
    make_config(load_stage("create"), {**overrides["create"], "detail": args.detail})  # bad options fail here
    workspace = Workspace(getattr(args, "workspace", None))
    name = args.name or (args.prompt if args.prompt else args.image.stem)
    capture = new_generated_capture(workspace, name, args.image)
    steps = method_job(capture, "create", args.detail, overrides)
    with progress_bar(leave=False) as show:
        outcomes = run_job(workspace, capture.id, steps, show)
    files = next(o for o in outcomes if o.stage == "publish").result["files"]
    published = {fmt: capture.exports_dir / name for fmt, name in files.items()}
    out = copy_published(capture, published, args.out)
    print(f"capture {capture.id}: exports in {capture.exports_dir}")
    print(f"wrote {out}")
    return 0
