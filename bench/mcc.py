"""MCC single-frame completion: held-out generated objects and a real RGB-D frame.

For each, the completed object (the shipped default model unless --weights) against the truth,
beside two baselines: the seen points alone (no completion) and the seen points mirrored about
their best symmetry plane. Scores: F-score at 1 cm and 2 cm, Chamfer distance (m), and seconds
per frame on this machine's CPU (model inference, grid query and meshing).

Generated objects: the truth is the object's exact surface. Real frame: the slambook/NYU Kinect
sequence in ../shared/data (5 frames, colour + depth + reference poses); frame 3 is completed
and the truth is the TSDF fusion of all 5 frames, cropped to the completed object's
neighbourhood (its poses are approximate, a few cm, which bounds the F@1cm any method can get).

    .venv/bin/python bench/mcc.py                # 20 generated objects + the real frame
    .venv/bin/python bench/mcc.py --objects 5 --no-real
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SLAMBOOK = REPO.parent / "shared" / "data" / "slambook-nyu-rgbd-5frames"


def read_pgm16(path: Path) -> np.ndarray:
    data = path.read_bytes()
    parts = data.split(maxsplit=4)  # P5 width height maxval pixels (big-endian 16-bit)
    width, height = int(parts[1]), int(parts[2])
    return np.frombuffer(parts[4][: width * height * 2], ">u2").reshape(height, width).astype(np.float32)


def _pose(line: str) -> np.ndarray:
    tx, ty, tz, qx, qy, qz, qw = (float(v) for v in line.split())
    x, y, z, w = qx, qy, qz, qw
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = rot, (tx, ty, tz)
    return c2w


def load_slambook() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    import cv2

    poses = [_pose(line) for line in (SLAMBOOK / "pose.txt").read_text().split("\n") if line.strip()]
    frames = []
    for i, c2w in enumerate(poses, start=1):
        rgb = cv2.cvtColor(cv2.imread(str(SLAMBOOK / "color" / f"{i}.png")), cv2.COLOR_BGR2RGB)
        depth = read_pgm16(SLAMBOOK / "depth" / f"{i}.pgm") / 1000.0
        frames.append((rgb, depth, c2w))
    return frames


FX, FY, CX, CY = 518.0, 519.0, 325.5, 253.5


def real_frame(model, resolution: int, threshold: float | None) -> dict:
    import open3d as o3d

    from recon.mcc.evaluate import mirrored, sample_mesh, scores
    from recon.mcc.frame import backproject, prepare_view
    from recon.mcc.infer import SeenFrame, complete
    from recon.mcc.mask import mask_from_depth

    frames = load_slambook()
    volume = o3d.pipelines.integration.ScalableTSDFVolume(
        voxel_length=0.01, sdf_trunc=0.04, color_type=o3d.pipelines.integration.TSDFVolumeColorType.NoColor)
    intr = o3d.camera.PinholeCameraIntrinsic(640, 480, FX, FY, CX, CY)
    for rgb, depth, c2w in frames:
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(np.ascontiguousarray(rgb)), o3d.geometry.Image(depth.astype(np.float32)),
            depth_scale=1.0, depth_trunc=4.0, convert_rgb_to_intensity=False)
        volume.integrate(rgbd, intr, np.linalg.inv(c2w))
    fused = volume.extract_triangle_mesh()
    rng = np.random.default_rng(0)
    truth_world = sample_mesh(np.asarray(fused.vertices), np.asarray(fused.triangles), 200_000, rng)

    rgb, depth, c2w = frames[2]
    points = backproject(depth, FX, FY, CX, CY)
    mask = mask_from_depth(points)
    seen = points[mask].astype(np.float64)
    seen_frame = SeenFrame(np.where(np.isfinite(depth), depth, 0), mask, FX, FY, CX, CY)
    view = prepare_view(rgb, points, mask, model.config.rgb_size, model.config.xyz_size)
    started, cpu_started = time.perf_counter(), time.process_time()
    done = complete(model, view, resolution, threshold, seen=seen_frame)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    pred = sample_mesh(done.vertices, done.faces, 20000, rng)
    truth = (truth_world - c2w[:3, 3]) @ c2w[:3, :3]  # into frame 3's camera
    lo, hi = seen.min(0), seen.max(0)
    pad = 0.5 * (hi - lo)
    near = np.all((truth > lo - pad) & (truth < hi + pad), axis=1)
    truth = truth[near]
    mirror = mirrored(seen, seen_frame, margin=0.02)
    return {"mcc": scores(pred, truth), "seen": scores(seen, truth), "mirrored": scores(mirror, truth),
            "seconds_per_frame": round(seconds, 3), "cpu_seconds_per_frame": round(cpu_seconds, 3),
            "object_pixels": int(mask.sum()),
            "truth_points": int(len(truth)), "extent_m": [round(float(v), 3) for v in hi - lo]}


def table(title: str, result: dict) -> str:
    lines = [f"### {title}", "", "| method | F@1cm | F@2cm | Chamfer (mm) |", "|---|---|---|---|"]
    for name, label in (("mcc", "MCC (default model)"), ("seen", "seen points only"),
                        ("mirrored", "seen points + mirror")):
        r = result[name]
        lines.append(f"| {label} | {r['f1cm']:.3f} | {r['f2cm']:.3f} | {1000 * r['chamfer_m']:.1f} |")
    lines.append("")
    lines.append(f"Seconds per frame (median): {result['seconds_per_frame']} wall, "
                 f"{result['cpu_seconds_per_frame']} CPU (process time; the machine was shared)")
    return "\n".join(lines)


def main() -> int:
    import torch

    from recon.mcc.evaluate import evaluate_generated
    from recon.mcc.weights import load_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--objects", type=int, default=20)
    p.add_argument("--resolution", type=int, default=48)
    p.add_argument("--threshold", type=float, default=None, help="default: the model's (0.3 for ours)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-real", action="store_true")
    p.add_argument("--no-carve", action="store_true",
                   help="the raw prediction, without the frame's free space")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.weights).model
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads {args.threads}, grid {args.resolution}^3, threshold {args.threshold}, "
          f"carve {not args.no_carve}\n")
    gen = evaluate_generated(model, args.objects, resolution=args.resolution, threshold=args.threshold,
                             carve=not args.no_carve)
    print(table(f"{args.objects} held-out generated objects", gen) + "\n")
    if not args.no_real:
        real = real_frame(model, args.resolution, args.threshold)
        print(table("Real Kinect frame (slambook/NYU frame 3 vs the 5-frame TSDF fusion)", real))
        print(f"object pixels {real['object_pixels']}, extent {real['extent_m']} m, "
              f"truth points {real['truth_points']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
