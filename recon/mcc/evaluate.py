"""Scores of a completion against the truth: occupancy IoU, F-score at a distance, Chamfer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from recon.mcc.infer import SeenFrame
    from recon.mcc.model import MCC


def f_score(pred: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    """Harmonic mean of precision (predicted points within ``threshold`` of the truth) and recall
    (truth points within ``threshold`` of the prediction); 0 for an empty prediction."""
    if len(pred) == 0 or len(truth) == 0:
        return 0.0
    precision = float((cKDTree(truth).query(pred)[0] <= threshold).mean())
    recall = float((cKDTree(pred).query(truth)[0] <= threshold).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def chamfer(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean of the two mean nearest-neighbour distances (inf for an empty prediction)."""
    if len(pred) == 0 or len(truth) == 0:
        return float("inf")
    return 0.5 * float(cKDTree(truth).query(pred)[0].mean() + cKDTree(pred).query(truth)[0].mean())


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def sample_mesh(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform over a triangle mesh's area."""
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if len(faces) == 0 or area.sum() <= 0:
        return np.zeros((0, 3))
    pick = rng.choice(len(faces), n, p=area / area.sum())
    a, b = rng.random((2, n, 1))
    flip = (a + b) > 1
    a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
    t = tri[pick]
    return t[:, 0] + a * (t[:, 1] - t[:, 0]) + b * (t[:, 2] - t[:, 0])


def mirrored(points: np.ndarray, frame: SeenFrame, margin: float = 0.01, directions: int = 64,
             offsets: int = 21) -> np.ndarray:
    """The seen points (camera frame) plus their mirror image about their best symmetry plane: among
    planes (normals over a hemisphere, offsets around the points' centre), the one whose mirror
    image lands most behind the seen surface (where the object's hidden side is) and least where
    the frame sees empty space, then closest to the seen points where they overlap."""
    from scipy.spatial import cKDTree

    sample = points[np.random.default_rng(0).choice(len(points), min(len(points), 1500), replace=False)]
    tree = cKDTree(sample)
    centre = sample.mean(axis=0)
    spread = float(np.linalg.norm(sample.std(axis=0)))
    i = np.arange(directions) + 0.5
    polar, azimuth = np.arccos(1 - i / directions), np.pi * (1 + 5**0.5) * i  # golden-spiral hemisphere
    normals = np.stack([np.sin(polar) * np.cos(azimuth), np.cos(polar), np.sin(polar) * np.sin(azimuth)], 1)
    tau = 0.25 * spread
    best, best_score = None, np.inf
    for n in normals:
        for shift in np.linspace(-spread, spread, offsets):
            d = float(n @ centre) + shift
            reflected = sample - 2 * ((sample @ n) - d)[:, None] * n
            violation = float(frame.known_empty(reflected, margin).mean())
            hidden = float(frame.hidden(reflected, margin).mean())
            overlap = float(np.minimum(tree.query(reflected)[0], tau).mean() / tau)
            score = 10 * violation - hidden + 0.5 * overlap
            if score < best_score:
                best, best_score = (n, d), score
    assert best is not None
    n, d = best
    return np.concatenate([points, points - 2 * ((points @ n) - d)[:, None] * n])


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"f1cm": f_score(pred, truth, 0.01), "f2cm": f_score(pred, truth, 0.02),
            "chamfer_m": chamfer(pred, truth)}


def evaluate_generated(model: MCC, count: int, seed: int = 10_000, resolution: int = 48,
                       threshold: float | None = None, carve: bool = True, image_size: int = 192) -> dict:
    """Mean scores on ``count`` held-out generated objects (seeds ``seed``..): the model's completion,
    the seen points alone, and the seen points mirrored; plus seconds per completion."""
    import time

    from recon.mcc.data import surface_points
    from recon.mcc.frame import backproject, prepare_view
    from recon.mcc.infer import SeenFrame, complete
    from recon.mcc.sample import generated_view_images

    rows: dict[str, list[dict[str, float]]] = {"mcc": [], "seen": [], "mirrored": []}
    seconds, cpu_seconds = [], []
    rng = np.random.default_rng(seed)
    for k in range(count):
        gv = generated_view_images(seed + k, image_size)
        cam = gv.camera
        mask = gv.depth > 0
        points = backproject(gv.depth, cam.fx, cam.fy, cam.cx, cam.cy)
        up = cam.c2w[:3, :3].T @ np.array([0.0, 1.0, 0.0])  # gravity, as an ARKit capture knows it
        floor = float(np.percentile(points[mask] @ up, 0.5))
        seen_frame = SeenFrame(gv.depth, mask, cam.fx, cam.fy, cam.cx, cam.cy, up, floor)
        truth_world = surface_points(gv.obj, 8000, rng).numpy().astype(np.float64)
        truth = (truth_world - cam.c2w[:3, 3]) @ cam.c2w[:3, :3]  # camera frame
        seen = points[mask].astype(np.float64)
        view = prepare_view(gv.rgb, points, mask, model.config.rgb_size, model.config.xyz_size)
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            done = complete(model, view, resolution, threshold, seen=seen_frame if carve else None)
            pred = sample_mesh(done.vertices, done.faces, 8000, rng)
        except Exception:  # noqa: BLE001 - an empty prediction scores 0
            pred = np.zeros((0, 3))
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
        rows["mcc"].append(scores(pred, truth))
        rows["seen"].append(scores(seen, truth))
        rows["mirrored"].append(scores(mirrored(seen, seen_frame), truth))
    out: dict = {name: {k: round(float(np.mean([r[k] for r in rs])), 4) for k in rs[0]}
                 for name, rs in rows.items()}
    out["objects"] = count
    out["seconds_per_frame"] = round(float(np.median(seconds)), 3)
    out["cpu_seconds_per_frame"] = round(float(np.median(cpu_seconds)), 3)
    out["resolution"], out["threshold"], out["carve"] = resolution, threshold, carve
    return out
