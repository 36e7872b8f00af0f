"""``scanbridge process SOURCE -o OUT.usdz|.glb|.obj|.ply [--method] [--detail]``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from recon.export.presets import DETAIL_PRESETS


def _method_help() -> str:
    from recon.methods import methods

    listed = "; ".join(f"{m.name}: {m.description}" for m in methods())
    return f"how to reconstruct (default: the settings' default method, auto). {listed}"


def add_process_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from core.submit import method_names

    p = subparsers.add_parser(
        "process", help="turn a capture into an AR-ready model (USDZ, GLB, OBJ or PLY)",
        description="Reconstruct SOURCE (a capture id, or anything 'scanbridge import' reads) into a "
                    "textured mesh at real-world scale where the capture allows, and write it to -o. "
                    "The files also go to the capture's exports/ folder. The job is the one the "
                    "server and the app queue for the same method.",
    )
    p.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                   help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)")
    p.add_argument("source", metavar="SOURCE", help="capture id, or a path to import first")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                   help="the model to write: .usdz (with OUT-poster.png), .glb, .obj or .ply")
    p.add_argument("--method", choices=method_names(), default=None, help=_method_help())
    p.add_argument("--detail", choices=list(DETAIL_PRESETS), default=None,
                   help="triangle budget: preview 25k, reduced 50k, medium 100k, full 250k "
                        "(default: the settings' default detail, medium)")
    p.add_argument("--texture-size", type=int, default=None, metavar="PX",
                   help="texture atlas side (default 2048)")
    p.add_argument("--name", default=None, help="capture name when SOURCE is imported")
    p.add_argument("--size", type=metres, default=None, metavar="M",
                   help="the object's real longest side in metres (e.g. 0.25); without it, a capture "
                   "with no metric depth, device poses or marker gets an estimated 0.30 m, marked as such")
    p.add_argument("--marker-size", type=metres, default=None, metavar="M",
                   help="edge of the printed ArUco marker's black square in metres (default 0.10)")
    p.add_argument("--marker-dictionary", default=None, metavar="NAME",
                   help="the marker's ArUco dictionary, as OpenCV names it (default DICT_4X4_50)")
    p.add_argument("--frame", type=frame_number, default=None, metavar="N",
                   help="with --method mcc: the frame to complete (its index in the capture; default: "
                        "the middle frame with depth)")
    p.set_defaults(func=run_process)


def frame_number(text: str) -> int:
    """A frame index argument: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a frame number of 0 or more, got {text!r}")
    return value


def metres(text: str) -> float:
    """A length argument: a positive, finite number of metres."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a length in metres, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive length in metres, got {text!r}")
    return value


def mesh_options(args: argparse.Namespace) -> dict[str, Any]:
    """The mesh stage's options given on the command line (the rest keep the stage's defaults, so the
    job is the one the server and the app queue)."""
    given = {"texture_size": args.texture_size, "marker_size_m": args.marker_size,
             "marker_dictionary": args.marker_dictionary, "real_size_m": args.size}
    return {key: value for key, value in given.items() if value is not None}


def run_process(args: argparse.Namespace) -> int:
    from core.console import progress_bar
    from core.progress import Progress
    from core.settings import load_settings
    from core.workspace import Workspace
    from recon.pipeline import process

    workspace = Workspace(getattr(args, "workspace", None))
    settings = load_settings(workspace.settings_path)
    method = args.method or settings.default_method
    detail = args.detail or settings.default_detail
    with progress_bar() as show:
        if workspace.has_capture(args.source):
            capture = workspace.capture(args.source)
        else:
            from recon.ingest import ingest

            capture = ingest(Path(args.source), workspace, name=args.name, progress=Progress("import", show))
        overrides = {"mcc": {"frame": args.frame}} if getattr(args, "frame", None) is not None else None
        result = process(workspace, capture, method=method, detail=detail, out=args.output,
                         sink=show, mesh_options=mesh_options(args), overrides=overrides)
    export = next(o for o in result.outcomes if o.stage == "export").result
    mesh = next(o for o in result.outcomes if o.stage == "mesh").result
    size = " x ".join(f"{x:.3f}" for x in export["size_m"])
    scale = export["scale"]
    units = {"metric": "m", "aruco": "m (scaled by the ArUco marker)", "user": "m (the size you gave)",
             "estimated": "m, ESTIMATED: nothing in the capture gives its real size; "
                          "run again with --size METRES (its real longest side)"}
    unit = units.get(scale, "units (unscaled)")
    print(f"capture {capture.id}: {result.method}, {export['triangles']} triangles, "
          f"texture {export['texture'][1]}x{export['texture'][0]}, size {size} {unit}")
    check = export["arkit_check"]
    if check.get("ran"):
        print("USDZ passes OpenUSD's ARKit compliance check")
    elif "usdz" in export["files"]:
        print(f"USDZ not checked: {check.get('why', 'checker off')}")
    print(f"views used for the texture: {mesh.get('views')}")
    print(f"exports: {capture.exports_dir}")
    print(f"wrote {result.published['out']}")
    return 0
