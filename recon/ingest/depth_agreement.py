"""Do a dataset's depth maps and its poses share one scale? Measured, not assumed.

A nerfstudio dataset may carry metric depth (``depth_file_path`` with ``depth_unit_scale_factor``,
as nerfstudio's Record3D and Polycam processing write it) with poses that are metric too, or
poses in arbitrary SfM units. A few frames' depth is back-projected, moved by the poses into
partners that see the same surface (up to two each, with differently directed baselines), and
compared with the partners' own depth. If the poses are ``k`` times the depth's scale, the points
agree best (within INLIER_TOLERANCE, near where they land) at that ``k``: a search over ``k``
finds it, and that is the measured ratio. Only points near enough to show parallax, on surfaces
facing along the baseline, can tell (see _informative_rays). Agreement within a few percent of 1
makes the capture metric RGB-D; a clear other ratio stays unscaled with one warning that says it;
no clear answer (too little baseline, or a rival ratio that fits nearly as well, as a symmetric
object on a circular orbit can give) stays unscaled with a warning too. On a ray-cast two-ring
orbit with 1 % depth noise and 2 mm pose noise the ratio comes out within 0.5 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.capture import Camera, Frame
from core.progress import Progress

MAX_ANCHORS = 4
MAX_CANDIDATES = 60
POINTS_PER_ANCHOR = 2000
MIN_OVERLAP = 0.3
PARALLAX_DEPTHS = 3.0  # points compared lie within this many baselines of the anchor camera ...
MIN_FACING = 0.5  # ... on surfaces that face along the baseline at least this much (|cos|)
NORMAL_STEP_PX = 2
MIN_INFORMATIVE_POINTS = 100
MAX_AXIS_ANGLE_DEG = 40.0  # partners look the same way, so they see the same side of things
INLIER_TOLERANCE = 0.02  # a point agrees when the depths differ by less than 2 % ...
SEARCH_WIDTH_DIVISOR = 128  # ... somewhere within (map width / 128) pixels of where it lands
MIN_INLIER_FRACTION = 0.2  # of the points landing on a measurement, at the best ratio
MIN_LANDED_FRACTION = 0.2  # of the sampled points must land on a measurement of the partner
AGREE_RATIO = 0.05  # |k - 1| within 5 %
TOP_BAND = 0.01  # scores this close to the best count as the top
NEAR_BEST = 0.9  # peaks scoring this share of the best are candidates
IDENTIFIABLE_STEP = 1.15  # the agreement must fall when k moves by 15 % either way ...
IDENTIFIABLE_DROP = 0.85  # ... to at most this share of its best, else the baselines are too short


@dataclass(frozen=True)
class DepthCheck:
    verdict: str  # "metric", "disagree" or "unknown"
    ratio: float | None  # poses' units per depth metre, best fit
    agreeing_at_1: float | None  # share of sampled points whose depths agree, poses as given
    agreeing_at_ratio: float | None  # the same at the best ratio
    pairs: int

    def to_json(self) -> dict[str, object]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {"verdict": self.verdict, "ratio": r(self.ratio), "agreeing_at_1": r(self.agreeing_at_1),
                "agreeing_at_ratio": r(self.agreeing_at_ratio), "pairs": self.pairs}


@dataclass(frozen=True)
class _View:
    depth: np.ndarray  # [h, w] metres, 0 = none
    camera: Camera  # at the depth map's size
    c2w: np.ndarray  # [4, 4] OpenCV


def _load(root: Path, frame: Frame) -> _View | None:
    raw = cv2.imread(str(root / frame.depth), cv2.IMREAD_UNCHANGED) if frame.depth else None
    if raw is None or raw.ndim != 2:
        return None
    depth = np.nan_to_num(raw.astype(np.float64) * frame.depth_scale, nan=0.0, posinf=0.0, neginf=0.0)
    depth[depth < 0] = 0.0
    h, w = depth.shape
    return _View(depth, frame.camera.scaled(w, h), np.asarray(frame.pose, dtype=np.float64))


class _LazyViews:
    """The frames' poses and cameras at once; a depth map only when a pair needs it."""

    def __init__(self, root: Path, frames: Sequence[Frame]) -> None:
        self.root, self.frames = root, list(frames)
        self._loaded: dict[int, _View | None] = {}

    def __len__(self) -> int:
        return len(self.frames)

    def c2w(self, i: int) -> np.ndarray:
        return np.asarray(self.frames[i].pose, dtype=np.float64)

    def view(self, i: int) -> _View | None:
        if i not in self._loaded:
            self._loaded[i] = _load(self.root, self.frames[i])
        return self._loaded[i]


def _rays(view: _View, n: int, rng: np.random.Generator, max_depth: float = math.inf
          ) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame rays (z = 1) [m, 3] and their depths [m] at up to ``n`` measured pixels
    nearer than ``max_depth``."""
    v, u = np.nonzero((view.depth > 0) & (view.depth <= max_depth))
    if len(v) > n:
        pick = rng.choice(len(v), n, replace=False)
        v, u = v[pick], u[pick]
    c = view.camera
    rays = np.stack([(u + 0.5 - c.cx) / c.fx, (v + 0.5 - c.cy) / c.fy, np.ones(len(u))], axis=1)
    return rays, view.depth[v, u]


def _informative_rays(a: _View, b_c2w: np.ndarray, n: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Rays and depths [m] of a's pixels that can tell the scale against a partner at ``b_c2w``.

    With the poses k times the depth's scale, a's points seen from b look like the scene shifted
    by (1 - 1/k) times the baseline: a surface whose normal is across the baseline (the ground,
    for cameras side by side) looks the same whatever k is. So only pixels whose surface normal
    (from a smoothed copy of the depth map) has a component along the baseline are kept, and only
    those within PARALLAX_DEPTHS baselines of the camera.
    """
    baseline = b_c2w[:3, 3] - a.c2w[:3, 3]
    length = float(np.linalg.norm(baseline))
    if length < 1e-9:
        return np.zeros((0, 3)), np.zeros(0)
    along = a.c2w[:3, :3].T @ (baseline / length)  # the baseline's direction in a's camera axes
    smooth = cv2.medianBlur(a.depth.astype(np.float32), 5).astype(np.float64)
    h, w = smooth.shape
    c = a.camera
    v, u = np.mgrid[0:h, 0:w]
    pts = np.stack([(u + 0.5 - c.cx) / c.fx * smooth, (v + 0.5 - c.cy) / c.fy * smooth, smooth], axis=-1)
    s = NORMAL_STEP_PX
    du = pts[s:-s, 2 * s:] - pts[s:-s, : -2 * s]  # [h - 2s, w - 2s, 3]
    dv = pts[2 * s:, s:-s] - pts[: -2 * s, s:-s]
    normal = np.cross(du, dv)
    norm = np.linalg.norm(normal, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        facing = np.abs(normal @ along) / norm  # |cos| between the normal and the baseline
    core = (slice(s, h - s), slice(s, w - s))
    neighbours_ok = np.ones_like(facing, bool)
    for dy in (-s, 0, s):
        for dx in (-s, 0, s):
            neighbours_ok &= smooth[s + dy:h - s + dy, s + dx:w - s + dx] > 0
    d = a.depth[core]
    keep = (neighbours_ok & (d > 0) & (d <= PARALLAX_DEPTHS * length) & (norm > 0)
            & (np.nan_to_num(facing) >= MIN_FACING))
    rows, cols = np.nonzero(keep)
    if len(rows) > n:
        pick = rng.choice(len(rows), n, replace=False)
        rows, cols = rows[pick], cols[pick]
    rows, cols = rows + s, cols + s
    rays = np.stack([(cols + 0.5 - c.cx) / c.fx, (rows + 0.5 - c.cy) / c.fy, np.ones(len(cols))], axis=1)
    return rays, a.depth[rows, cols]


def _project(points_world: np.ndarray, c2w: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray,
                                                                                np.ndarray]:
    """Pixel column, row (ints) and z of world points [m, 3] in a camera; only those inside its image."""
    rot, t = c2w[:3, :3], c2w[:3, 3]
    p = (points_world - t) @ rot
    z = p[:, 2]
    front = z > 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.floor(p[:, 0] / z * camera.fx + camera.cx)
        v = np.floor(p[:, 1] / z * camera.fy + camera.cy)
    inside = front & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    return u[inside].astype(int), v[inside].astype(int), np.where(inside, z, np.nan)


def _pair_residuals(a: _View, rays: np.ndarray, d_a: np.ndarray, b: _View, k: float) -> np.ndarray:
    """|d_b seen - d_b predicted| / d_b seen for a's points moved into b with poses k x depth scale;
    the best match within a few pixels counts (small pose errors shift the projections), inf for
    points that land on no measurement."""
    world = (rays * (k * d_a)[:, None]) @ a.c2w[:3, :3].T + a.c2w[:3, 3]
    u, v, z = _project(world, b.c2w, b.camera)
    z = z[np.isfinite(z)] / k  # back in depth metres
    h, w = b.depth.shape
    radius = max(1, round(w / SEARCH_WIDTH_DIVISOR))
    best = np.full(len(z), np.inf)
    for dv in range(-radius, radius + 1):
        vv = np.clip(v + dv, 0, h - 1)
        for du in range(-radius, radius + 1):
            seen = b.depth[vv, np.clip(u + du, 0, w - 1)]
            with np.errstate(divide="ignore", invalid="ignore"):
                diff = np.where(seen > 0, np.abs(seen - z) / seen, np.inf)
            np.minimum(best, diff, out=best)
    return best


def _choose_pairs(views: _LazyViews, rng: np.random.Generator) -> list[tuple[_View, _View]]:
    """For a few anchors spread over the capture, up to two partners that see the same surface
    (at least MIN_OVERLAP of the anchor's points land in their image, optical axes within
    MAX_AXIS_ANGLE_DEG): the widest baseline, and the widest whose direction differs from it."""
    anchors = sorted({round(i * (len(views) - 1) / max(MAX_ANCHORS - 1, 1)) for i in range(MAX_ANCHORS)})
    step = max(1, len(views) // MAX_CANDIDATES)
    pairs = []
    for ai in anchors:
        a = views.view(ai)
        if a is None:
            continue
        rays, d = _rays(a, 400, rng)
        if len(d) < 20:
            continue
        world = (rays * d[:, None]) @ a.c2w[:3, :3].T + a.c2w[:3, 3]
        candidates = []
        for bi in range(0, len(views), step):
            b_c2w = views.c2w(bi)
            if bi == ai or float(a.c2w[:3, 2] @ b_c2w[:3, 2]) < math.cos(math.radians(MAX_AXIS_ANGLE_DEG)):
                continue
            u, _, _ = _project(world, b_c2w, views.frames[bi].camera)
            baseline = b_c2w[:3, 3] - a.c2w[:3, 3]
            if len(u) >= MIN_OVERLAP * len(d) and np.linalg.norm(baseline) > 1e-9:
                candidates.append((float(np.linalg.norm(baseline)), bi, baseline / np.linalg.norm(baseline)))
        candidates.sort(key=lambda c: -c[0])
        chosen = candidates[:1]
        chosen += [c for c in candidates[1:] if chosen and abs(float(c[2] @ chosen[0][2])) <= 0.7][:1]
        for _, bi, _ in chosen:
            partner = views.view(bi)
            if partner is not None:
                pairs.append((a, partner))
    return pairs


def check_depth_scale(root: Path, frames: Sequence[Frame], seed: int = 0) -> DepthCheck:
    """Compare the depth maps of ``frames`` (in the capture at ``root``) with their poses."""
    rng = np.random.default_rng(seed)
    views = _LazyViews(root, [f for f in frames if f.depth and f.pose is not None])
    pairs = _choose_pairs(views, rng) if len(views) >= 2 else []
    if not pairs:
        return DepthCheck("unknown", None, None, None, 0)
    samples = [(a, *_informative_rays(a, b.c2w, POINTS_PER_ANCHOR, rng), b) for a, b in pairs]
    total = sum(len(d) for _, _, d, _ in samples)
    if total < MIN_INFORMATIVE_POINTS:
        return DepthCheck("unknown", None, None, None, len(pairs))

    def agreeing(k: float) -> float:
        """The share of points that agree among those landing on a measurement of their partner
        (not among all: how many land in view changes with k, which must not pull k along)."""
        residuals = np.concatenate([_pair_residuals(a, rays, d, b, k) for a, rays, d, b in samples])
        landed = np.isfinite(residuals)
        if np.count_nonzero(landed) < MIN_LANDED_FRACTION * total:
            return 0.0
        return float(np.count_nonzero(residuals[landed] < INLIER_TOLERANCE) / np.count_nonzero(landed))

    coarse = np.exp(np.linspace(math.log(1 / 8), math.log(8), 211))  # 2 % steps: the peak is that narrow
    coarse_scores = np.array([agreeing(float(k)) for k in coarse])
    best = float(coarse[int(np.argmax(coarse_scores))])
    # A symmetric object on a circular orbit can agree almost as well at a wrong ratio (the scene
    # shifted by about one baseline looks alike): a rival peak elsewhere makes the answer unknown.
    padded = np.concatenate([[-1.0], coarse_scores, [-1.0]])
    peaks = coarse[(coarse_scores >= padded[:-2]) & (coarse_scores >= padded[2:])
                   & (coarse_scores >= NEAR_BEST * coarse_scores.max())]
    rivals = [k for k in peaks if abs(math.log(k / best)) > math.log(IDENTIFIABLE_STEP)]
    if rivals:
        return DepthCheck("unknown", None, agreeing(1.0), None, len(pairs))
    fine = best * np.exp(np.linspace(-0.08, 0.08, 33))  # 0.5 % steps
    scores = np.array([agreeing(float(k)) for k in fine])
    # The middle of the top: the score is flat within a tolerance's width around the answer.
    best = float(np.median(fine[scores >= scores.max() - TOP_BAND]))
    at_best, at_1 = agreeing(best), agreeing(1.0)
    around = max(agreeing(best / IDENTIFIABLE_STEP), agreeing(best * IDENTIFIABLE_STEP))
    if at_best < MIN_INLIER_FRACTION or around > IDENTIFIABLE_DROP * at_best:
        return DepthCheck("unknown", None, at_1, None, len(pairs))
    verdict = "metric" if abs(best - 1.0) <= AGREE_RATIO else "disagree"
    return DepthCheck(verdict, best, at_1, at_best, len(pairs))


def judge_depth_scale(root: Path, frames: Sequence[Frame], progress: Progress) -> tuple[str, str, DepthCheck]:
    """(scale, default mode, the check) for a dataset whose file does not say it is metric."""
    check = check_depth_scale(root, frames)
    if check.verdict == "metric":
        progress.log(f"depth and poses agree (ratio {check.ratio:.3f} over {check.pairs} frame pairs): "
                     "metric RGB-D")
        return "metric", "rgbd", check
    if check.verdict == "disagree":
        progress.warning(
            f"depth maps and poses disagree: the poses are {check.ratio:.3f}x the depth's scale "
            f"({100 * (check.agreeing_at_1 or 0):.0f}% of depth samples agree as given, "
            f"{100 * (check.agreeing_at_ratio or 0):.0f}% at that ratio, over {check.pairs} frame pairs); "
            "the capture stays unscaled and goes to photo stereo")
    else:
        progress.warning("could not check the depth maps against the poses (too little overlap or "
                         "baseline between frames); the capture stays unscaled")
    return "unscaled", "import", check
