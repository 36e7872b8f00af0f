"""Camera-pose conversions into the manifest's convention: OpenCV camera-to-world 4x4.

OpenCV camera axes are x right, y down, z forward. OpenGL / Blender / ARKit cameras use
x right, y up, z backwards; the same pose in OpenCV axes is ``T @ diag(1, -1, -1, 1)``.
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import IngestError

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
MAX_TRANSLATION = 1e7  # in the source's units; beyond this a position is garbage, not a scene


def quaternion_to_matrix(qx: float, qy: float, qz: float, qw: float, where: str) -> np.ndarray:
    """Rotation matrix [3, 3] of a unit quaternion (scalar last). Raises naming ``where`` if zero."""
    n = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    if not math.isfinite(n) or n < 1e-8:
        raise IngestError(f"not a rotation quaternion: {[qx, qy, qz, qw]}", where)
    x, y, z, w = qx / n, qy / n, qz / n, qw / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def pose_from_quaternion(
    q_xyzw: tuple[float, float, float, float], t_xyz: tuple[float, float, float], where: str
) -> np.ndarray:
    """Camera-to-world [4, 4] from a rotation quaternion (x, y, z, w) and a position."""
    if not all(math.isfinite(v) and abs(v) <= MAX_TRANSLATION for v in t_xyz):
        raise IngestError(f"position {list(t_xyz)} is not finite or beyond {MAX_TRANSLATION:g}", where)
    pose = np.eye(4)
    pose[:3, :3] = quaternion_to_matrix(*q_xyzw, where=where)
    pose[:3, 3] = t_xyz
    return pose


def opengl_to_opencv(c2w: np.ndarray) -> np.ndarray:
    """[4, 4] camera-to-world with OpenGL camera axes -> the same pose with OpenCV camera axes."""
    return c2w @ GL_TO_CV


def check_pose(matrix: object, where: str) -> np.ndarray:
    """A finite 4x4 rigid transform [4, 4] (bottom row 0 0 0 1), or IngestError naming ``where``.

    Lists (as JSON gives them) must hold numbers: strings and booleans are refused, not converted.
    """
    if not _is_numeric(matrix):
        raise IngestError("expected a 4x4 matrix of numbers", where)
    try:
        m = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise IngestError("expected a 4x4 matrix of numbers", where) from None
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise IngestError("expected a 4x4 matrix of finite numbers", where)
    if np.abs(m[:3, 3]).max() > MAX_TRANSLATION or np.abs(m[:3, :3]).max() > MAX_TRANSLATION:
        raise IngestError(f"a value is beyond {MAX_TRANSLATION:g}; not a camera pose", where)
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise IngestError("last row must be [0, 0, 0, 1]", where)
    rotation = m[:3, :3]
    # Some exporters bake a uniform scale into the rotation; only reject what is not a rotation.
    scale = np.cbrt(np.linalg.det(rotation))
    if scale <= 1e-9 or not np.allclose(
        rotation.T @ rotation, np.eye(3) * scale * scale, atol=1e-3 * scale**2
    ):
        raise IngestError("the 3x3 part is not a rotation", where)
    if abs(scale - 1.0) > 1e-4:
        m[:3, :3] = rotation / scale
    m[3] = [0.0, 0.0, 0.0, 1.0]
    return m


def _is_numeric(matrix: object) -> bool:
    """A list of lists of int/float (bool excluded), or a real-valued numeric array."""
    if isinstance(matrix, np.ndarray):
        return matrix.dtype.kind in "iuf"
    if not isinstance(matrix, (list, tuple)):
        return False
    return all(
        isinstance(row, (list, tuple))
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in row)
        for row in matrix
    )


def as_pose_tuple(m: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """[4, 4] array -> the manifest's nested tuples, with an exact 0 0 0 1 last row."""
    rows = [tuple(float(x) for x in m[i]) for i in range(3)]
    return (*rows, (0.0, 0.0, 0.0, 1.0))
