"""UV unwrapping with xatlas: charts packed for a square texture of a given size, with padding.

xatlas runs in a child process (recon/mesh/uv_child.py): it cannot be interrupted and says
nothing while it works, which on a large mesh is minutes. The parent reports how long it has
been running and kills the child at once when the stage is cancelled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import ReconstructionError
from core.progress import CancelToken, Progress
from recon.mesh.types import Mesh

CHILD_SCRIPT = Path(__file__).with_name("uv_child.py")
POLL_S = 0.1
REPORT_EVERY_S = 1.0
# Rough unwrap time per 1000 triangles on one slow core, for the progress bar only; the message
# says the real elapsed time.
EXPECTED_S_PER_1K_FACES = 0.25


@dataclass(frozen=True)
class UVMesh:
    """A mesh split along UV seams: vertices (N, 3), faces (M, 3), uvs (N, 2) in 0..1 (v up),
    and for each vertex the index of the input vertex it came from (N,)."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    source_vertex: np.ndarray


def unwrap(mesh: Mesh, texture_size: int = 2048, padding_px: int = 4, max_charts_hint: int = 200,
           progress: Progress | None = None, cancel: CancelToken | None = None) -> UVMesh:
    """Segment ``mesh`` into charts and pack them into a ``texture_size``² atlas.

    Charts are capped at 1/``max_charts_hint`` of the surface area: large smooth charts make
    xatlas's packer very slow, and small ones cost little texture space. ``cancel`` stops the
    child process within a moment (Cancelled); ``progress`` hears about it every second.
    """
    progress = progress or Progress("mesh")
    tri = mesh.vertices[mesh.faces]  # (M, 3, 3)
    area = 0.5 * float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())
    with tempfile.TemporaryDirectory(prefix="scanbridge-uv-") as tmp:
        src, dst = Path(tmp) / "mesh.npz", Path(tmp) / "atlas.npz"
        np.savez(src, vertices=np.ascontiguousarray(mesh.vertices, dtype=np.float32),
                 faces=np.ascontiguousarray(mesh.faces, dtype=np.uint32), resolution=int(texture_size),
                 padding=int(padding_px), max_chart_area=area / max_charts_hint)
        _run_child(src, dst, mesh.n_faces, progress, cancel)
        with np.load(dst) as atlas:  # (N,), (M, 3), (N, 2); uvs normalised by the atlas size
            vmapping = np.asarray(atlas["vmapping"], dtype=np.int64)
            indices = np.asarray(atlas["indices"], dtype=np.int64)
            uvs = np.asarray(atlas["uvs"], dtype=np.float32).copy()
    # xatlas's atlas is only approximately texture_size wide; its uvs are 0..1 either way.
    uvs[:, 1] = 1.0 - uvs[:, 1]  # xatlas rows go down; ours (OBJ/USD) go up
    return UVMesh(mesh.vertices[vmapping], indices, uvs, vmapping)


def _run_child(src: Path, dst: Path, n_faces: int, progress: Progress, cancel: CancelToken | None) -> None:
    started = time.monotonic()
    log = dst.with_name("stderr.txt")  # a file, not a pipe: a chatty child can never block on it
    with open(log, "wb") as stderr:
        child = subprocess.Popen([sys.executable, str(CHILD_SCRIPT), str(src), str(dst), str(os.getpid())],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    progress.log(f"UV unwrap of {n_faces} triangles in process {child.pid}", level="debug")
    expected_s = max(2.0, n_faces / 1000 * EXPECTED_S_PER_1K_FACES)
    reported = started
    try:
        while child.poll() is None:
            if cancel is not None:
                cancel.check()
            now = time.monotonic()
            if now - reported >= REPORT_EVERY_S:
                elapsed = now - started
                # an estimate that slows down instead of stopping at a wrong 100%
                progress.update(1.0 - np.exp(-elapsed / expected_s),
                                f"unwrapping UVs of {n_faces} triangles ({elapsed:.0f} s)")
                reported = now
            time.sleep(POLL_S)
    finally:
        if child.poll() is None:  # cancelled, or the parent is leaving on an error
            child.kill()
            child.wait()
    if child.returncode != 0 or not dst.is_file():
        how = f"killed by signal {-child.returncode}" if child.returncode < 0 else f"exit {child.returncode}"
        last = log.read_text("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise ReconstructionError(f"UV unwrap failed ({how}: {last[0][:200]})", "mesh")
    progress.update(1.0, f"unwrapped {n_faces} triangles in {time.monotonic() - started:.0f} s")
