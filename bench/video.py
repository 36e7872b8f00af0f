"""Video benchmark: frames per second of `scanbridge video`'s renderer and encoder on a
250k-triangle textured mesh at 1080p along a turntable path, against the goal of 30 frames/s
on 2 CPU cores. Prints render-only and render+encode rates (wall and CPU).

    .venv/bin/python bench/video.py [--frames 12] [--size 1920x1080] [--rows 250 --cols 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from generation.video.encode import write_mp4
from generation.video.paths import Intrinsics, turntable
from generation.video.render import FrameRenderer
from recon.export.samples import checker_texture, uv_sphere

GOAL_FPS = 30.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--rows", type=int, default=250)
    ap.add_argument("--cols", type=int, default=500)
    args = ap.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    sphere = uv_sphere(rows=args.rows, cols=args.cols)
    mesh = type(sphere)(sphere.vertices, sphere.faces, sphere.uvs, checker_texture(2048, 2048, noise=0.15))
    intrinsics = Intrinsics.from_fov(width, height, 40.0)
    path = turntable(np.zeros(3), 1.0, intrinsics, args.frames, elevation_deg=20.0)
    renderer = FrameRenderer(mesh)
    print(f"{mesh.face_count} triangles, {width}x{height}, {args.frames} frames (turntable)")

    wall, cpu = time.perf_counter(), time.process_time()
    frames = [renderer.render(pose, intrinsics) for pose in path.poses]
    render_wall, render_cpu = time.perf_counter() - wall, time.process_time() - cpu
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        write_mp4(frames, Path(tmp) / "clip.mp4", width, height, 30.0)
        encode_wall, encode_cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = args.frames
    rows = [("render", render_wall, render_cpu),
            ("encode (H.264, ffmpeg child process)", encode_wall, encode_cpu),
            ("render + encode", render_wall + encode_wall, render_cpu + encode_cpu)]
    print("| step | frames/s (wall) | ms/frame (wall) | ms/frame (CPU, this process) |")
    print("|---|---:|---:|---:|")
    for name, w, c in rows:
        print(f"| {name} | {n / w:.2f} | {1000 * w / n:.0f} | {1000 * c / n:.0f} |")
    total = n / (render_wall + encode_wall)
    verdict = "met" if total >= GOAL_FPS else f"missed by {GOAL_FPS / total:.1f}x"
    print(f"goal {GOAL_FPS:g} frames/s: {verdict}")


if __name__ == "__main__":
    main()
