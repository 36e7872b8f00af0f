"""Generate the bundled sample capture: ``python -m recon.sample.build``.

Renders the procedural scene from a guided-360 orbit and writes it as a nerfstudio dataset
(JPEG photos, 16-bit mm depth, masks) into resources/sample/textured-object/. An existing sample
is replaced only once the new one is completely written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from core.fsio import fsync_dir
from recon.sample.dataset import write_capture_folder
from recon.sample.paths import bundled_sample_dir
from recon.sample.scene import render_orbit

DEFAULT_VIEWS = 24
DEFAULT_SIZE = (480, 360)
DEFAULT_ELEVATIONS = (15.0, 35.0)
JPEG_QUALITY = 90


def build_sample(
    out_dir: Path,
    n_views: int = DEFAULT_VIEWS,
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    seed: int = 0,
) -> Path:
    """Render the sample and put it at ``out_dir``, replacing what is there; returns ``out_dir``."""
    out_dir = Path(out_dir)
    views = render_orbit(n_views, size, elevations_deg=DEFAULT_ELEVATIONS, seed=seed)
    fresh = out_dir.parent / f".{out_dir.name}.new"
    old = out_dir.parent / f".{out_dir.name}.old"
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    write_capture_folder(views, fresh, with_depth=True, image_format="jpg", jpeg_quality=JPEG_QUALITY)
    if out_dir.exists():
        os.rename(out_dir, old)
    os.rename(fresh, out_dir)
    fsync_dir(out_dir.parent)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recon.sample.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the bundled sample)")
    parser.add_argument("--views", type=int, default=DEFAULT_VIEWS)
    parser.add_argument("--width", type=int, default=DEFAULT_SIZE[0])
    parser.add_argument("--height", type=int, default=DEFAULT_SIZE[1])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out or bundled_sample_dir(must_exist=False)
    path = build_sample(out, args.views, (args.width, args.height), seed=args.seed)
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"wrote {args.views} views ({args.width}x{args.height}) to {path} ({total / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
