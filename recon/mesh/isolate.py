"""Object isolation without masks: find the support plane, cut just above it, keep what the
cameras look at.

A photo or RGB-D orbit of an object reconstructs the table or ground around it too. Gravity
(ARKit's, or the cameras' up) says which planes are horizontal; the support plane is the
best-supported horizontal plane with (almost) nothing below it, so a seat or a shelf inside the
object never passes for it, and a few outliers under the floor do not make one. Everything
within the plane's noise band above it is cut, and of what is left the connected part nearest to
where the cameras look is the object. All lengths are relative to the mesh's own resolution and
the cameras' distance, so SfM meshes in arbitrary units work the same as metric ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from recon.mesh.crop import crop_mesh, look_at_center
from recon.mesh.types import Mesh
from recon.mesh.views import PosedView

MAX_TILT_DEG = 15.0  # a support plane's normal is within this of gravity's up
MAX_BELOW_FRACTION = 0.03  # at most this share of the surface lies clearly below a support plane
MIN_PLANE_FRACTION = 0.05  # a support plane holds at least this share of the surface
RANSAC_SAMPLES = 20_000  # surface points the search looks at
RANSAC_TRIALS = 400
MAX_NOISE_OF_TOLERANCE = 0.4  # a plane's robust spread is at most this share of the tolerance
CUT_SIGMAS = 3.0  # cut this many noise widths above the plane ...
CUT_EDGES = 1.5  # ... and at least this many median edge lengths
KEEP_GAP_EDGES = 3.0  # parts closer than this (in edges) to the object belong to it


@dataclass(frozen=True)
class SupportPlane:
    """The plane {p : normal . p = offset}, normal pointing up; ``noise`` is the inliers' spread
    (a robust standard deviation) in mesh units; ``fraction`` the share of the surface on it."""

    normal: np.ndarray  # (3,)
    offset: float
    noise: float
    fraction: float

    def height(self, points: np.ndarray) -> np.ndarray:
        """Signed height (P,) of points (P, 3) above the plane, in mesh units."""
        return points @ self.normal - self.offset


@dataclass(frozen=True)
class Isolation:
    mesh: Mesh
    plane: SupportPlane | None
    kept_fraction: float  # of the input's triangles
    note: str  # what was done, for the log


def median_edge(mesh: Mesh) -> float:
    """The median edge length: the mesh's resolution, in its units."""
    v, f = mesh.vertices, mesh.faces
    if len(f) == 0:
        return 0.0
    edges = np.linalg.norm(v[f] - v[np.roll(f, 1, axis=1)], axis=2)  # (M, 3)
    return float(np.median(edges))


def _area_samples(mesh: Mesh, n: int, rng: np.random.Generator) -> np.ndarray:
    """About ``n`` points (P, 3) spread over the surface by area (face centroids drawn by area),
    so a finely tessellated patch does not outweigh a coarse one."""
    v, f = mesh.vertices, mesh.faces
    tri = v[f]  # (M, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    total = float(area.sum())
    if total <= 0:
        return tri.mean(axis=1)
    pick = rng.choice(len(f), size=n, p=area / total)
    a, b = rng.random((2, n, 1))
    flip = (a + b) > 1
    a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
    t = tri[pick]
    return t[:, 0] + a * (t[:, 1] - t[:, 0]) + b * (t[:, 2] - t[:, 0])


def find_support_plane(
    mesh: Mesh, up: np.ndarray, scene_size: float, below: np.ndarray | None = None, seed: int = 0
) -> SupportPlane | None:
    """The support plane of ``mesh`` for gravity ``up`` (RANSAC over area samples), or None.

    ``scene_size``: a length for the tolerance floor (the cameras' distance to what they look
    at). ``below``: a point the plane must lie under (where the cameras look)."""
    if mesh.n_faces < 3:
        return None
    up = np.asarray(up, float) / np.linalg.norm(up)
    rng = np.random.default_rng(seed)
    pts = _area_samples(mesh, RANSAC_SAMPLES, rng)  # (P, 3)
    tol = max(2.0 * median_edge(mesh), 0.004 * scene_size)
    cos_tilt = np.cos(np.radians(MAX_TILT_DEG))
    best: tuple[float, np.ndarray, float] | None = None  # (inlier fraction, normal, offset)
    for trial in range(RANSAC_TRIALS):
        if trial % 2 == 0:  # one point and gravity: a floor holding a fifth of the surface is hit at once
            a = pts[rng.integers(len(pts))]
            normal = up
        else:  # three points: a plane a little off gravity (up estimated from the cameras)
            a, b, c = pts[rng.choice(len(pts), 3, replace=False)]
            normal = np.cross(b - a, c - a)
            length = np.linalg.norm(normal)
            if length < 1e-12:
                continue
            normal = normal / length
            if np.dot(normal, up) < 0:
                normal = -normal
            if np.dot(normal, up) < cos_tilt:
                continue
        h = pts @ normal - np.dot(normal, a)
        on = float(np.mean(np.abs(h) <= tol))
        if on < MIN_PLANE_FRACTION or (best is not None and on <= best[0]):
            continue
        if np.mean(h < -3 * tol) > MAX_BELOW_FRACTION:
            continue  # a shelf, a seat, the object's own top: things hang below it
        if below is not None and np.dot(normal, below) - np.dot(normal, a) <= 0:
            continue
        best = (on, normal, float(np.dot(normal, a)))
    if best is None:
        return None
    plane = _refit(pts, best[1], best[2], tol, up)
    # A real plane is thin: its spread is well inside the search tolerance. The foot of an
    # object's walls (a band of vertical surface) fills the tolerance evenly and is no floor.
    return plane if plane.noise <= MAX_NOISE_OF_TOLERANCE * tol else None


def _refit(pts: np.ndarray, normal: np.ndarray, offset: float, tol: float, up: np.ndarray) -> SupportPlane:
    """Least-squares plane through the inliers, its robust noise width and surface share. The
    band narrows to a few noise widths, so the foot of a wall or spikes under the floor that the
    search tolerance let in do not tilt or lift the plane."""
    band = tol
    for _ in range(4):
        inliers = pts[np.abs(pts @ normal - offset) <= band]
        if len(inliers) < 3:
            break
        centre = inliers.mean(axis=0)
        _, _, vt = np.linalg.svd(inliers - centre, full_matrices=False)
        normal = vt[2] if np.dot(vt[2], up) >= 0 else -vt[2]
        offset = float(np.dot(normal, centre))
        noise = 1.4826 * float(np.median(np.abs(inliers @ normal - offset)))
        band = min(tol, max(3.0 * noise, 1e-9 * tol))
    h = pts @ normal - offset
    on = np.abs(h) <= band
    noise = float(1.4826 * np.median(np.abs(h[on]))) if on.any() else 0.0
    return SupportPlane(normal, offset, noise, float(np.mean(np.abs(h) <= tol)))


def _face_components(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """Connected-component label (M,) of each face (faces sharing a vertex are connected)."""
    m = len(faces)
    rows = np.repeat(np.arange(m), 3)
    # faces and vertices as one bipartite graph: a face's label is its component's
    graph = coo_matrix((np.ones(3 * m), (rows, m + faces.reshape(-1))), shape=(m + n_vertices,) * 2)
    _, labels = connected_components(graph, directed=False)
    return labels[:m]


def keep_looked_at(mesh: Mesh, target: np.ndarray, gap: float) -> Mesh:
    """The connected part of ``mesh`` nearest to ``target``, with any part within ``gap`` of it."""
    labels = _face_components(mesh.faces, len(mesh.vertices))
    centroids = mesh.vertices[mesh.faces].mean(axis=1)  # (M, 3)
    nearest = labels[int(np.argmin(np.linalg.norm(centroids - target, axis=1)))]
    keep = labels == nearest
    tree = cKDTree(centroids[keep])
    for label in np.unique(labels[~keep]):
        part = labels == label
        if np.min(tree.query(centroids[part], k=1)[0]) <= gap:
            keep |= part
    keep_vertex = np.zeros(len(mesh.vertices), bool)
    keep_vertex[mesh.faces[keep].reshape(-1)] = True
    return crop_mesh(mesh, keep_vertex)


def isolate_object(
    mesh: Mesh, views: list[PosedView], up: np.ndarray, plane: SupportPlane | None = None
) -> Isolation:
    """The object alone: cut at the support plane (``plane``, else found here), keep the part the
    cameras look at. Without an orbit (no point the cameras look at, as in a room scan) the mesh
    is kept whole."""
    target = look_at_center(views)
    if target is None or mesh.n_faces == 0:
        return Isolation(mesh, None, 1.0, "the cameras do not orbit one point: kept everything")
    edge = median_edge(mesh)
    if plane is None:
        scene_size = float(np.median([np.linalg.norm(v.center - target) for v in views]))
        plane = find_support_plane(mesh, up, scene_size, below=target)
    out, note = mesh, "no support plane found"
    if plane is not None:
        cut = max(CUT_SIGMAS * plane.noise, CUT_EDGES * edge)
        keep_vertex = plane.height(mesh.vertices) > cut
        if np.any(keep_vertex[mesh.faces].all(axis=1)):
            out = crop_mesh(mesh, keep_vertex)
            note = f"cut at the support plane ({plane.fraction:.0%} of the surface)"
    if out.n_faces:
        out = keep_looked_at(out, target, KEEP_GAP_EDGES * edge)
    if out.n_faces == 0:
        return Isolation(mesh, plane, 1.0, "isolation left nothing: kept everything")
    return Isolation(out, plane, out.n_faces / mesh.n_faces, note + ", kept the part the cameras look at")
