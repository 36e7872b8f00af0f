"""Camera poses (SfM) benchmark: our poses stage against pycolmap's plain pipeline.

For each photo set in /work/shared/data: ingest it into a scratch workspace and run the poses
stage (timed: the stage only), then, on the same machine, the baseline: pycolmap's
extract_features, match_exhaustive and incremental_mapping with default options. Prints a
markdown table: frames, registered % (ours / baseline), wall time (ours / baseline), time ratio,
and rotation / camera-centre error against ground truth after a similarity alignment where the
set has it (fox: transforms.json; DTU: cameras.npz).

    .venv/bin/python bench/sfm.py                 # every set (many minutes)
    .venv/bin/python bench/sfm.py --set fox --set dtu --skip-baseline
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from core.stages import execute_stage
from core.workspace import Workspace
from recon.ingest import ingest
from recon.poses.evaluate import compare_poses

DATA = Path("/work/shared/data")
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def fox_reference() -> dict[str, np.ndarray]:
    """{file name: OpenCV c2w} from the fox transforms.json (NeRF/OpenGL camera axes)."""
    data = json.loads((DATA / "instant-ngp-fox" / "transforms.json").read_text())
    return {Path(f["file_path"]).name: np.asarray(f["transform_matrix"]) @ OPENGL_TO_OPENCV
            for f in data["frames"]}


def dtu_reference() -> dict[str, np.ndarray]:
    """{file name: OpenCV c2w} from DTU world_mat_i = K [R | t] (world to image)."""
    cams = np.load(DATA / "dtu-scan24-monosdf" / "cameras.npz")
    out = {}
    i = 0
    while f"world_mat_{i}" in cams:
        p = cams[f"world_mat_{i}"][:3, :4]
        _k, r, c_h = cv2.decomposeProjectionMatrix(p)[:3]
        c2w = np.eye(4)
        c2w[:3, :3] = r.T  # r is world-to-camera
        c2w[:3, 3] = (c_h[:3] / c_h[3]).ravel()
        out[f"{i:06d}_rgb.png"] = c2w
        i += 1
    return out


@dataclass(frozen=True)
class PhotoSet:
    name: str
    images: Path
    reference: Callable[[], dict[str, np.ndarray]] | None = None


SETS = {
    "fox": PhotoSet("instant-ngp-fox", DATA / "instant-ngp-fox" / "images", fox_reference),
    "dtu": PhotoSet("dtu-scan24", DATA / "dtu-scan24-monosdf", dtu_reference),
    "lund": PhotoSet("opensfm-lund", DATA / "opensfm-iphone4s" / "lund" / "images"),
    "apple": PhotoSet("co3d-apple", DATA / "co3d-apple-vggsfm" / "images"),
    "sacre-coeur": PhotoSet("hloc-sacre-coeur", DATA / "hloc-sacre-coeur" / "mapping"),
}


@dataclass
class Run:
    registered: int
    total: int
    seconds: float  # wall
    cpu_seconds: float
    poses: dict[str, np.ndarray]  # {file name: OpenCV c2w}


def cpu_seconds() -> float:
    """CPU time of this process, all threads, user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_ours(images: Path, scratch: Path, overrides: dict) -> Run:
    workspace = Workspace(scratch / "workspace")
    capture = ingest(images, workspace, name="bench")
    started, cpu = time.perf_counter(), cpu_seconds()
    # SfM even where ingest found cameras (DTU's cameras.npz): that is what is measured here.
    outcome = execute_stage(capture, "poses", {"use_device_poses": False, **overrides})
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    poses = json.loads((outcome.run_dir / "poses.json").read_text())
    est = {Path(f["source_name"] or f["image"]).name: np.asarray(f["c2w"]) for f in poses["frames"]}
    for frame_id, reason in poses.get("unregistered", {}).items():
        print(f"  not registered: {frame_id}: {reason}")
    for a in poses["attempts"]:
        steps = ", ".join(f"{k} {v:.0f} s" for k, v in a.get("step_seconds", {}).items())
        print(f"  attempt '{a['name']}': {a.get('registered')} registered, {a.get('pairs')} pairs; {steps}")
    return Run(outcome.result["registered"], outcome.result["total"], seconds, cpu, est)


def run_baseline(images: Path, scratch: Path) -> Run:
    """pycolmap's plain pipeline with default options."""
    database = scratch / "baseline.db"
    names = sorted(p.name for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    started, cpu = time.perf_counter(), cpu_seconds()
    pycolmap.extract_features(database, images, image_names=names)
    pycolmap.match_exhaustive(database)
    models = pycolmap.incremental_mapping(database, images, scratch / "baseline")
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    best = max(models.values(), key=lambda r: r.num_reg_images(), default=None)
    est = {}
    if best is not None:
        for image_id in best.reg_image_ids():
            image = best.image(image_id)
            c2w = np.eye(4)
            c2w[:3, :] = image.cam_from_world().inverse().matrix()
            est[image.name] = c2w
    return Run(len(est), len(names), seconds, cpu, est)


def errors(run: Run | None, reference: dict[str, np.ndarray] | None) -> str:
    if run is None or reference is None or len(run.poses) < 3:
        return "n/a"
    e = compare_poses(run.poses, reference)
    return f"{e.median_rotation_deg:.2f}° / {e.median_centre:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", choices=sorted(SETS), help="run only this set (repeatable)")
    parser.add_argument("--skip-baseline", action="store_true", help="run only our stage")
    parser.add_argument("--matcher", default="auto", help="our stage's matcher (default: auto)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders (printed)")
    args = parser.parse_args(argv)
    chosen = args.set or list(SETS)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"pycolmap {pycolmap.__version__}, python {sys.version.split()[0]}")
    header = ("| set | frames | registered % ours / baseline | wall s ours / baseline | time ratio "
              "| CPU s ours / baseline | CPU ratio | median rot err / centre err, ours | same, baseline |")
    rows = [header, "|" + "---|" * 9]
    for key in chosen:
        s = SETS[key]
        scratch = Path(tempfile.mkdtemp(prefix=f"bench-sfm-{key}-"))
        try:
            reference = s.reference() if s.reference else None
            ours = run_ours(s.images, scratch, {"matcher": args.matcher})
            print(f"{s.name}: ours {ours.registered}/{ours.total} in {ours.seconds:.1f} s "
                  f"({ours.cpu_seconds:.0f} CPU s), "
                  f"errors {errors(ours, reference)}", flush=True)
            base = None if args.skip_baseline else run_baseline(s.images, scratch)
            if base is not None:
                print(f"{s.name}: baseline {base.registered}/{base.total} in {base.seconds:.1f} s "
                      f"({base.cpu_seconds:.0f} CPU s), "
                      f"errors {errors(base, reference)}", flush=True)
            pct = f"{100 * ours.registered / max(ours.total, 1):.0f}"
            pct += f" / {100 * base.registered / max(base.total, 1):.0f}" if base else " / -"
            wall = f"{ours.seconds:.0f}" + (f" / {base.seconds:.0f}" if base else " / -")
            ratio = f"{ours.seconds / base.seconds:.2f}" if base else "-"
            cpu = f"{ours.cpu_seconds:.0f}" + (f" / {base.cpu_seconds:.0f}" if base else " / -")
            cpu_ratio = f"{ours.cpu_seconds / base.cpu_seconds:.2f}" if base else "-"
            rows.append(f"| {s.name} | {ours.total} | {pct} | {wall} | {ratio} | {cpu} | {cpu_ratio} | "
                        f"{errors(ours, reference)} | {errors(base, reference)} |")
            print(rows[-1], flush=True)
        finally:
            if args.keep:
                print(f"scratch kept: {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    print()
    print("\n".join(rows))
    print("\nErrors: median rotation (degrees) / median camera-centre distance (reference units; "
          "fox: COLMAP reference units, DTU: mm) after Umeyama similarity alignment of camera centres.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
