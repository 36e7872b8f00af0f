"""RGB-D fusion speed: recon.fusion.TSDFFusion vs open3d's ScalableTSDFVolume driven directly.

Both fuse the same Stray Scanner LiDAR frames (256x192 depth, ARKit poses, confidence >= 1,
depth 0.2-5 m) at the same voxel size and truncation, one after the other in this process, and
the table shows frames per second of integration (frames decoded beforehand), the process CPU
time per frame (less sensitive to other jobs on a shared machine), extraction time and mesh size.
PNG decoding is timed on its own, so IO/decode and integration can be told apart.

    .venv/bin/python bench/fusion.py                     # all 942 frames, 2 cm voxels
    .venv/bin/python bench/fusion.py --voxels 0.02,0.01 --frames 300
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d

from core.capture import Camera
from recon.fusion import TSDFFusion, preset
from recon.ingest.strayscanner import read_camera_matrix, read_odometry

STRAY = Path(__file__).resolve().parents[2] / "shared" / "data" / "strayscanner-iphone-lidar-depthonly"


def load_frames(root: Path, count: int, step: int):
    """Decoded frames [(depth uint16 (H, W), confidence uint8 (H, W), c2w (4, 4))] and decode seconds."""
    rows = read_odometry(root / "odometry.csv")[::step][:count]
    t0 = time.perf_counter()
    frames = []
    for row in rows:
        name = f"{row.frame:06d}.png"
        depth = cv2.imread(str(root / "depth" / name), cv2.IMREAD_UNCHANGED)
        conf = cv2.imread(str(root / "confidence" / name), cv2.IMREAD_UNCHANGED)
        frames.append((depth, conf, row.pose))
    return frames, time.perf_counter() - t0


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run_ours(frames, camera: Camera, voxel: float):
    cfg = preset("room", voxel_size_m=voxel, color=False)
    fusion = TSDFFusion(cfg)

    def integrate() -> None:
        for depth, conf, c2w in frames:
            fusion.add_frame(depth, camera, c2w, confidence=conf)

    _, wall, cpu = timed(integrate)
    mesh, ext, _ = timed(fusion.extract_mesh)
    return wall, cpu, ext, mesh.vertex_count, mesh.triangle_count


def run_baseline(frames, camera: Camera, voxel: float):
    cfg = preset("room", voxel_size_m=voxel)
    h, w = frames[0][0].shape
    c = camera.scaled(w, h)
    intrinsic = o3d.camera.PinholeCameraIntrinsic(w, h, c.fx, c.fy, c.cx, c.cy)
    volume = o3d.pipelines.integration.ScalableTSDFVolume(
        voxel_length=voxel, sdf_trunc=cfg.trunc_m,
        color_type=o3d.pipelines.integration.TSDFVolumeColorType.NoColor,
    )
    no_color = o3d.geometry.Image(np.zeros((h, w, 3), np.uint8))
    lo, hi = round(cfg.min_depth_m * 1000), round(cfg.max_depth_m * 1000)

    def integrate() -> None:
        for depth, conf, c2w in frames:
            keep = (conf >= cfg.min_confidence) & (depth >= lo) & (depth <= hi)  # the same filtering
            masked = np.where(keep, depth, 0).astype(np.uint16)
            rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
                no_color, o3d.geometry.Image(masked), depth_scale=1000.0, depth_trunc=cfg.max_depth_m,
                convert_rgb_to_intensity=False,
            )
            volume.integrate(rgbd, intrinsic, np.linalg.inv(c2w))

    _, wall, cpu = timed(integrate)
    mesh, ext, _ = timed(volume.extract_triangle_mesh)
    return wall, cpu, ext, len(mesh.vertices), len(mesh.triangles)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=STRAY)
    ap.add_argument("--frames", type=int, default=942)
    ap.add_argument("--step", type=int, default=1, help="use every n-th frame of the capture")
    ap.add_argument("--voxels", default="0.02", help="comma-separated voxel sizes in metres")
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()

    k = read_camera_matrix(args.data / "camera_matrix.csv")
    camera = Camera(width=1920, height=1440, fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2])
    frames, decode_s = load_frames(args.data, args.frames, args.step)
    n = len(frames)
    load = os.getloadavg()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, open3d {o3d.__version__}, "
          f"load average {load[0]:.1f} at start, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')}")
    h, w = frames[0][0].shape
    print(f"# {n} Stray Scanner frames ({w}x{h} depth, step {args.step}); "
          f"PNG decode (depth + confidence): {n / decode_s:.0f} frames/s")
    print()
    print("| voxel | frames | ours fps | open3d Scalable fps | ratio | ours CPU ms/frame "
          "| baseline CPU ms/frame | extract s ours / base | vertices ours / base |")
    print("|---|---|---|---|---|---|---|---|---|")
    for voxel in (float(v) for v in args.voxels.split(",")):
        ours = run_ours(frames, camera, voxel)
        base = None if args.skip_baseline else run_baseline(frames, camera, voxel)
        fps_o = n / ours[0]
        if base is None:
            print(f"| {voxel * 100:g} cm | {n} | {fps_o:.1f} | - | - | {1000 * ours[1] / n:.1f} | - "
                  f"| {ours[2]:.2f} / - | {ours[3]} / - |")
            continue
        fps_b = n / base[0]
        print(f"| {voxel * 100:g} cm | {n} | {fps_o:.1f} | {fps_b:.1f} | {fps_o / fps_b:.2f}x "
              f"| {1000 * ours[1] / n:.1f} | {1000 * base[1] / n:.1f} | {ours[2]:.2f} / {base[2]:.2f} "
              f"| {ours[3]} / {base[3]} |", flush=True)


if __name__ == "__main__":
    main()
