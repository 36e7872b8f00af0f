"""``scanbridge process SOURCE -o OUT.usdz|.glb|.obj|.ply [--method] [--detail]``."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from core.console import add_output_options
from recon.export.presets import DETAIL_PRESETS
from recon.export.texture_io import JPEG_QUALITY
from recon.methods import FORMATS


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
    p.add_argument("--formats", type=format_list, default=None, metavar="LIST",
                   help="which files to publish, comma-separated: some of usdz,glb,obj,ply "
                        "(default: all four); OUT's suffix must be one of them")
    p.add_argument("--texture-format", choices=("png", "jpeg"), default=None,
                   help="how the texture is stored in USDZ, GLB and OBJ (default: png)")
    p.add_argument("--texture-quality", type=int, default=None, metavar="Q",
                   help=f"JPEG quality 1..100 with --texture-format jpeg (default {JPEG_QUALITY})")
    p.add_argument("--up", choices=("y", "z"), default=None,
                   help="up axis of PLY and OBJ files (default: y; USDZ and GLB are Y up by their specs)")
    p.add_argument("--crop", choices=("auto", "none"), default=None,
                   help="auto (default): keep the object the cameras look at (its masks, or without "
                        "them cut at the ground or table it stands on); none: keep everything")
    p.add_argument("--frame", type=frame_number, default=None, metavar="N",
                   help="with --method mcc: the frame to complete (its index in the capture; default: "
                        "the middle frame with depth)")
    add_output_options(p)
    p.set_defaults(func=run_process)


def format_list(text: str) -> list[str]:
    """A --formats argument: comma-separated export formats, each known, none twice."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if not formats or unknown or len(set(formats)) != len(formats):
        raise argparse.ArgumentTypeError(
            f"expected some of {','.join(FORMATS)} (comma-separated), got {text!r}")
    return formats


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
             "marker_dictionary": args.marker_dictionary, "real_size_m": args.size, "crop": args.crop}
    return {key: value for key, value in given.items() if value is not None}


def export_options(args: argparse.Namespace) -> dict[str, Any]:
    """The export stage's options given on the command line."""
    given = {"formats": args.formats, "texture_format": args.texture_format,
             "texture_quality": args.texture_quality, "up": args.up}
    return {key: value for key, value in given.items() if value is not None}


def run_process(args: argparse.Namespace) -> int:
    from core.console import command_progress, json_line, report_result, wants_json
    from core.progress import Progress
    from core.settings import load_settings
    from core.workspace import Workspace
    from recon.methods import capture_facts, expected_time, load_method
    from recon.pipeline import check_output, process

    workspace = Workspace(getattr(args, "workspace", None))
    settings = load_settings(workspace.settings_path)
    method = args.method or settings.default_method
    detail = args.detail or settings.default_detail
    check_output(args.output, method, args.formats)  # before anything is imported
    with command_progress(args) as show:
        if workspace.has_capture(args.source):
            capture = workspace.capture(args.source)
        else:
            from recon.ingest import ingest

            capture = ingest(Path(args.source), workspace, name=args.name, progress=Progress("import", show))
        # Before anything is queued: the expected time, or the refusal of a run that takes hours.
        expected = expected_time(load_method(method), capture_facts(capture), detail)
        if expected is not None:
            if wants_json(args):
                json_line({"event": "expected", "method": method, "detail": detail,
                           "expected": str(expected)})
            elif not args.quiet:
                print(f"{method} at detail {detail}: expected {expected}", file=sys.stderr, flush=True)
        overrides = {"mcc": {"frame": args.frame}} if getattr(args, "frame", None) is not None else None
        result = process(workspace, capture, method=method, detail=detail, out=args.output, sink=show,
                         mesh_options=mesh_options(args), export_options=export_options(args),
                         overrides=overrides)
    export = next(o for o in result.outcomes if o.stage == "export").result
    mesh = next(o for o in result.outcomes if o.stage == "mesh").result
    size = " x ".join(f"{x:.3f}" for x in export["size_m"])
    scale = export["scale"]
    units = {"metric": "m", "aruco": "m (scaled by the ArUco marker)", "user": "m (the size you gave)",
             "estimated": "m, ESTIMATED: nothing in the capture gives its real size; "
                          "run again with --size METRES (its real longest side)"}
    unit = units.get(scale, "units (unscaled)")
    lines = [f"capture {capture.id}: {result.method}, {export['triangles']} triangles, "
             f"texture {export['texture'][1]}x{export['texture'][0]}, size {size} {unit}"]
    check = export["arkit_check"]
    if check.get("ran"):
        lines.append("USDZ passes OpenUSD's ARKit compliance check")
    elif "usdz" in export["files"]:
        lines.append(f"USDZ not checked: {check.get('why', 'checker off')}")
    lines += [f"views used for the texture: {mesh.get('views')}", f"exports: {capture.exports_dir}",
              f"wrote {result.published['out']}"]
    summary = {"capture": capture.id, "method": result.method, "out": result.published["out"],
               "files": {fmt: path for fmt, path in result.published.items() if fmt != "out"},
               "exports": capture.exports_dir, "triangles": export["triangles"],
               "texture": export["texture"], "size_m": export["size_m"], "scale": scale,
               "arkit_check": check, "views": mesh.get("views")}
    return report_result(args, summary, lines)
