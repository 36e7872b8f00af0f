"""Do a dataset's depth maps and its poses share one scale? Measured, not assumed.

A nerfstudio dataset may carry metric depth (``depth_file_path`` with ``depth_unit_scale_factor``,
as nerfstudio's Record3D and Polycam processing write it) with poses that are metric too, or
poses in arbitrary SfM units. Depth of a few frames is back-projected, moved by the poses into a
neighbour that sees the same surface, and compared with the neighbour's own depth. With the
poses ``k`` times the depth's scale, most points agree (within INLIER_TOLERANCE) at that ``k``:
found by a search over ``k``, it is the measured ratio. Agreement (k within a few percent of 1)
makes the capture metric RGB-D; anything else stays unscaled with one warning that says the ratio.
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
MAX_AXIS_ANGLE_DEG = 40.0  # partners look the same way, so they see the same side of things
INLIER_TOLERANCE = 0.02  # a point agrees when the depths differ by less than 2 %
MIN_INLIER_FRACTION = 0.2  # of the sampled points, at the best ratio
AGREE_RATIO = 0.05  # |k - 1| within 5 %
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


def _rays(view: _View, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame rays (z = 1) [m, 3] and their depths [m] at up to ``n`` measured pixels."""
    v, u = np.nonzero(view.depth > 0)
    if len(v) > n:
        pick = rng.choice(len(v), n, replace=False)
        v, u = v[pick], u[pick]
    c = view.camera
    rays = np.stack([(u + 0.5 - c.cx) / c.fx, (v + 0.5 - c.cy) / c.fy, np.ones(len(u))], axis=1)
    return rays, view.depth[v, u]


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
    """|d_b seen - d_b predicted| / d_b seen for a's points moved into b with poses k x depth scale."""
    world = (rays * (k * d_a)[:, None]) @ a.c2w[:3, :3].T + a.c2w[:3, 3]
    u, v, z = _project(world, b.c2w, b.camera)
    z = z[np.isfinite(z)] / k  # back in depth metres
    seen = b.depth[v, u]
    ok = seen > 0
    return np.abs(seen[ok] - z[ok]) / seen[ok]


def _choose_pairs(views: _LazyViews, rng: np.random.Generator) -> list[tuple[_View, _View]]:
    """For a few anchors spread over the capture, the partner seeing the same surface from the
    widest baseline (at least MIN_OVERLAP of the anchor's points land in its image)."""
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
        best, best_baseline = None, 0.0
        for bi in range(0, len(views), step):
            b_c2w = views.c2w(bi)
            if bi == ai or float(a.c2w[:3, 2] @ b_c2w[:3, 2]) < math.cos(math.radians(MAX_AXIS_ANGLE_DEG)):
                continue
            u, _, _ = _project(world, b_c2w, views.frames[bi].camera)
            baseline = float(np.linalg.norm(a.c2w[:3, 3] - b_c2w[:3, 3]))
            if len(u) >= MIN_OVERLAP * len(d) and baseline > best_baseline:
                best, best_baseline = bi, baseline
        partner = views.view(best) if best is not None else None
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
    samples = [(a, *_rays(a, POINTS_PER_ANCHOR, rng), b) for a, b in pairs]
    total = sum(len(d) for _, _, d, _ in samples)

    def agreeing(k: float) -> float:
        hits = sum(int(np.count_nonzero(_pair_residuals(a, rays, d, b, k) < INLIER_TOLERANCE))
                   for a, rays, d, b in samples)
        return hits / max(total, 1)

    coarse = np.exp(np.linspace(math.log(1 / 8), math.log(8), 121))
    best = float(max(coarse, key=agreeing))
    fine = best * np.exp(np.linspace(-0.04, 0.04, 41))
    best = float(max(fine, key=agreeing))
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
