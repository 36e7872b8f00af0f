"""The UV unwrap's child process: ``python uv_child.py IN.npz OUT.npz PARENT_PID``. Run as a plain script (it
imports only numpy and xatlas), so the mesh stage can stop it at any time: xatlas has no cancel
and reports no progress to Python, and a call can take minutes on a large mesh."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import numpy as np


def _die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel kills this process when the one that started it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_DEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the parent's cancel still kills us
    if os.getppid() != parent_pid:  # it died before the line above took effect
        sys.exit(3)


def main(argv: list[str]) -> int:
    src, dst, parent_pid = argv[1], argv[2], int(argv[3])
    _die_with_parent(parent_pid)
    import xatlas

    with np.load(src) as data:
        vertices, faces = data["vertices"], data["faces"]
        resolution, padding, max_chart_area = (int(data["resolution"]), int(data["padding"]),
                                               float(data["max_chart_area"]))
    atlas = xatlas.Atlas()
    atlas.add_mesh(vertices, faces)
    chart = xatlas.ChartOptions()
    chart.max_chart_area = max_chart_area
    chart.max_iterations = 1
    pack = xatlas.PackOptions()
    pack.resolution = resolution
    pack.padding = padding
    pack.bilinear = True
    atlas.generate(chart, pack)
    vmapping, indices, uvs = atlas[0]
    with open(dst, "wb") as f:
        np.savez(f, vmapping=vmapping, indices=indices, uvs=uvs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
