"""``scanbridge restyle SOURCE --prompt TEXT [--mode stylize|mask|render] -o out.mp4|out.usdz|out.glb``.

An .mp4 runs the restyle stage as a job (progress, cancel with Ctrl-C, resume with ``scanbridge
jobs``) and copies its MP4 to -o. A .usdz or .glb restyles the texture of the capture's newest
textured mesh (the restyle-asset stage), publishes restyled-<name>.usdz/.glb to exports/ beside the
original, and copies the one asked for to -o."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

STAGE_PATH = "restyle"  # the registered stage (pyproject.toml)
ASSET_STAGE = "restyle-asset"
ASSET_SUFFIXES = (".usdz", ".glb")


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
    p.add_argument("--image", type=Path, default=None, metavar="REF",
                   help="a reference image whose look to carry over (IP-Adapter; copied into the capture)")
    p.add_argument("--image-scale", type=float, default=0.6,
                   help="how much the reference image counts against the prompt, 0 .. 2")
    p.add_argument("--mode", choices=("stylize", "mask", "render", "storyboard"), default="stylize",
                   help="stylize the whole frame; only the subject (its mask, or the near depth); render "
                        "a finished look from the geometry alone (depth maps or --mesh; photos unused); or "
                        "storyboard: rough mock-up frames to a finished look, structure from their lines "
                        "(an edge ControlNet, sd15-controlnet-canny)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.mp4|OUT.usdz|OUT.glb",
                   help=".mp4: the restyled frames as a video; .usdz/.glb: the capture's textured model "
                        "with a restyled texture, a new AR asset beside the original")
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
    p.add_argument("--asset-name", default="", metavar="NAME",
                   help="AR asset: exports/restyled-NAME.usdz (default: from the prompt)")
    p.add_argument("--mesh-run", default="", metavar="RUN",
                   help="AR asset: the mesh run to restyle (default: the capture's newest)")
    p.add_argument("--views", type=int, default=8, help="AR asset: camera poses to render the mesh from")
    p.add_argument("--rounds", type=int, default=2, help="AR asset: render -> edit -> re-bake rounds")
    p.set_defaults(func=run_restyle_command)


def restyle_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "prompt": args.prompt, "negative_prompt": args.negative_prompt, "mode": args.mode,
        "preset": args.preset, "base": args.base, "controlnet": args.controlnet, "fidelity": args.fidelity,
        "strength": args.strength, "steps": args.steps, "seed": args.seed, "size": args.size,
        "keyframe_every": args.keyframe_every, "cross_frame": not args.no_cross_frame,
        "max_frames": args.max_frames, "stride": args.stride, "mesh": args.mesh, "fps": args.fps,
        "image_scale": args.image_scale, "allow_download": args.download, "allow_cpu": args.allow_cpu,
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
        store_reference,
    )

    if args.output.suffix.lower() in ASSET_SUFFIXES:
        return run_asset_command(args)
    if args.output.suffix.lower() != ".mp4":
        raise ConfigError("restyle writes an .mp4 video, or a .usdz / .glb AR asset", args.output)
    config = restyle_config(args)
    engine_settings(RestyleConfig(**config))  # a bad option fails here, before anything is imported
    workspace = Workspace(getattr(args, "workspace", None))
    with progress_bar() as show:
        if workspace.has_capture(args.source):
            capture = workspace.capture(args.source)
        else:
            from recon.ingest import ingest

            capture = ingest(Path(args.source), workspace, name=args.name, progress=Progress("import", show))
        if args.image is not None:
            config["image"] = store_reference(capture, args.image)
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


def asset_config(args: argparse.Namespace) -> dict[str, Any]:
    from generation.restyle.asset_stage import asset_name

    return {
        "prompt": args.prompt, "negative_prompt": args.negative_prompt, "mesh_run": args.mesh_run,
        "name": args.asset_name or asset_name(args.prompt), "preset": args.preset, "base": args.base,
        "controlnet": args.controlnet, "fidelity": args.fidelity, "strength": args.strength,
        "steps": args.steps, "seed": args.seed, "size": args.size, "views": args.views,
        "rounds": args.rounds, "image_scale": args.image_scale, "allow_download": args.download,
        "allow_cpu": args.allow_cpu,
    }


def run_asset_command(args: argparse.Namespace) -> int:
    from core.console import progress_bar
    from core.errors import ConfigError
    from core.jobs import Step
    from core.worker import run_job
    from core.workspace import Workspace
    from generation.restyle.asset_stage import RestyleAssetConfig, check_asset_config, latest_mesh_run
    from generation.restyle.stage import licence_ledger, model_registry, resolve_models, store_reference
    from recon.export.stage import copy_published

    if args.mode != "stylize":
        raise ConfigError("an AR asset is restyled in stylize mode", "mode")
    config = asset_config(args)
    workspace = Workspace(getattr(args, "workspace", None))
    if not workspace.has_capture(args.source):
        raise ConfigError("an AR asset is made from a processed capture: give its id "
                          "(scanbridge process SOURCE first)", args.source)
    capture = workspace.capture(args.source)
    config["mesh_run"] = config["mesh_run"] or latest_mesh_run(capture)
    if args.image is not None:
        config["image"] = store_reference(capture, args.image)
    check_asset_config(RestyleAssetConfig(**config))
    registry = model_registry(capture, args.download)
    models = resolve_models(RestyleAssetConfig(**config).restyle_config(), registry)
    for line in licence_ledger(capture).notices_to_show(models.values()):
        print(line, file=sys.stderr)
    with progress_bar() as show:
        outcomes = run_job(workspace, capture.id, [Step(ASSET_STAGE, config), Step("publish")], show)
    asset = next(o for o in outcomes if o.stage == ASSET_STAGE)
    files = asset.result["files"]
    published = {fmt: capture.exports_dir / name for fmt, name in files.items()}
    copy_published(capture, published, args.output)
    print(f"capture {capture.id}: texture of {asset.result['restyled_from']} restyled from "
          f"{asset.result['views']} views in {asset.result['rounds']} rounds; {asset.result['runtime']}")
    print(f"published exports/{files['usdz']} and exports/{files['glb']} beside the original; "
          f"share it: scanbridge share {capture.id} --asset {asset.result['asset']}")
    print(f"wrote {args.output}")
    return 0
