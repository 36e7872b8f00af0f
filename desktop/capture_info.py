"""What the app shows about one capture, read from its folder: a summary for the library, per-frame
flags, coverage around the object, camera frusta, and the result files its runs hold. Qt-free."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.capture import CaptureFolder
from core.errors import ScanBridgeError
from core.stages import read_status
from core.workspace import Workspace
from desktop.viewer.scene import ViewFrustum

AZIMUTH_SECTORS = 12  # 30 degrees each
ELEVATION_BANDS = (-90.0, -30.0, 0.0, 20.0, 40.0, 60.0, 90.0)
BLUR_RATIO = 0.25  # as the poses stage: Laplacian variance below this fraction of the median


@dataclass(frozen=True)
class CaptureSummary:
    id: str
    name: str
    mode: str
    frame_count: int
    size_bytes: int
    created: str
    status: str
    scale: str
    first_image: Path | None
    source_kind: str


@dataclass(frozen=True)
class FrameInfo:
    id: str
    image: Path | None
    registered: bool | None  # None: no poses run yet
    reason: str  # why it was not registered, or ""
    blurry: bool = False


@dataclass(frozen=True)
class ResultFile:
    kind: str  # "mesh" | "points" | "export"
    path: Path
    stage: str  # run folder name, or "exports"


def folder_size(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def summarize(capture: CaptureFolder) -> CaptureSummary:
    m = capture.load()
    first = next((capture.path(f.image) for f in m.frames if f.image), None)
    return CaptureSummary(m.id, m.name, m.mode, len(m.frames), folder_size(capture.root), m.created,
                          m.status, m.scale, first, str(m.source.get("kind", "")))


def done_runs(capture: CaptureFolder, stage: str) -> list[Path]:
    """Finished run folders of ``stage``, newest first."""
    runs = []
    if capture.runs_dir.is_dir():
        for run in capture.runs_dir.glob(f"{stage}-*"):
            status = read_status(run)
            if status and status.get("state") == "done":
                runs.append((float(status.get("ended") or 0.0), run))
    return [run for _, run in sorted(runs, reverse=True)]


def latest_poses(capture: CaptureFolder) -> dict | None:
    """The newest finished poses run's poses.json, or None."""
    for run in done_runs(capture, "poses"):
        try:
            return json.loads((run / "poses.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return None


def frame_infos(capture: CaptureFolder, sharpness: dict[str, float | None] | None = None) -> list[FrameInfo]:
    """Every frame with its flags: unregistered (with the poses stage's reason) and blurry
    (``sharpness`` by frame id, far below the capture's median)."""
    m = capture.load()
    poses = latest_poses(capture)
    registered = {f["id"] for f in poses.get("frames", [])} if poses else None
    reasons = poses.get("unregistered", {}) if poses else {}
    values = [v for v in (sharpness or {}).values() if v is not None]
    median = float(np.median(values)) if values else 0.0
    out = []
    for f in m.frames:
        s = (sharpness or {}).get(f.id)
        blurry = s is not None and median > 0 and s < BLUR_RATIO * median
        reason = reasons.get(f.id, "")
        blurry = blurry or reason.startswith("blurry")
        out.append(FrameInfo(f.id, capture.path(f.image) if f.image else None,
                             None if registered is None else f.id in registered, reason, blurry))
    return out


def frame_sharpness(frames: list[FrameInfo]) -> dict[str, float | None]:
    """Variance of the Laplacian per frame (slow-ish: run it off the GUI thread)."""
    from recon.poses.diagnose import sharpness

    return {f.id: sharpness(f.image) if f.image else None for f in frames}


def camera_poses(capture: CaptureFolder) -> list[tuple[str, np.ndarray, dict]]:
    """(frame id, c2w (4, 4), camera dict with width/height/fx/fy) from the newest poses run,
    else from the manifest's own poses."""
    poses = latest_poses(capture)
    if poses:
        out = []
        for f in poses.get("frames", []):
            cam = f.get("camera") or {}
            out.append((f["id"], np.array(f["c2w"], np.float64),
                        {"width": cam.get("width", 0), "height": cam.get("height", 0),
                         "fx": cam.get("fx", 0.0), "fy": cam.get("fy", 0.0)}))
        return out
    return [(f.id, np.array(f.pose, np.float64),
             {"width": f.camera.width, "height": f.camera.height, "fx": f.camera.fx, "fy": f.camera.fy})
            for f in capture.load().frames if f.pose is not None]


def frusta(capture: CaptureFolder, flagged: set[str] = frozenset()) -> list[ViewFrustum]:
    out = []
    for fid, c2w, cam in camera_poses(capture):
        if cam["width"] and cam["fx"]:
            out.append(ViewFrustum(c2w, int(cam["width"]), int(cam["height"]), float(cam["fx"]),
                                   float(cam["fy"] or cam["fx"]), fid in flagged))
    return out


def look_at_point(c2w: np.ndarray) -> np.ndarray:
    """The point nearest to every camera's optical axis (least squares). c2w (F, 4, 4) -> (3,)."""
    centres = c2w[:, :3, 3]  # (F, 3)
    axes = c2w[:, :3, 2]  # (F, 3) OpenCV z forward
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    proj = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]  # (F, 3, 3)
    a, b = proj.sum(axis=0), np.einsum("fij,fj->i", proj, centres)
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return centres.mean(axis=0)


def _up_direction(c2w: np.ndarray) -> np.ndarray:
    """World up from cameras held without roll: perpendicular to every camera's x axis (needs
    views in two or more directions), pointing like the cameras' mean up (-y); else that mean."""
    mean_up = -c2w[:, :3, 1].mean(axis=0)
    mean_up /= max(np.linalg.norm(mean_up), 1e-12)
    _, s, vt = np.linalg.svd(c2w[:, :3, 0])
    if len(s) < 2 or s[1] < 0.2 * s[0]:
        return mean_up
    up = vt[-1]
    return up if up @ mean_up >= 0 else -up


def coverage(c2w: np.ndarray) -> np.ndarray:
    """(len(ELEVATION_BANDS) - 1, AZIMUTH_SECTORS) int: views per direction around the object.

    Up is found from the cameras (see _up_direction); azimuth is measured around it from the first
    camera, so the picture does not depend on the world frame SfM happened to choose.
    """
    grid = np.zeros((len(ELEVATION_BANDS) - 1, AZIMUTH_SECTORS), np.int64)
    c2w = np.asarray(c2w, np.float64).reshape(-1, 4, 4)
    if len(c2w) == 0:
        return grid
    centre = look_at_point(c2w) if len(c2w) >= 2 else c2w[0, :3, 3] + c2w[0, :3, 2]
    up = _up_direction(c2w)
    d = c2w[:, :3, 3] - centre  # (F, 3)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    elevation = np.degrees(np.arcsin(np.clip(d @ up, -1.0, 1.0)))  # (F,)
    flat = d - (d @ up)[:, None] * up  # (F, 3)
    ref = flat[0] if np.linalg.norm(flat[0]) > 1e-6 else np.cross(up, [1.0, 0.0, 0.0])
    ref = ref / max(np.linalg.norm(ref), 1e-12)
    side = np.cross(up, ref)
    azimuth = np.degrees(np.arctan2(flat @ side, flat @ ref)) % 360.0  # (F,)
    sector = 360.0 / AZIMUTH_SECTORS
    az_bin = np.floor((azimuth + sector / 2) / sector).astype(int) % AZIMUTH_SECTORS  # first view centred
    el_bin = np.clip(np.searchsorted(ELEVATION_BANDS, elevation, side="right") - 1, 0, len(grid) - 1)
    np.add.at(grid, (el_bin, az_bin), 1)
    return grid


def coverage_fraction(grid: np.ndarray, bands: slice = slice(2, 5)) -> float:
    """Share of the sectors at the usual orbit heights (0 to 60 degrees) that have a view."""
    part = grid[bands]
    return float((part > 0).mean()) if part.size else 0.0


def result_files(capture: CaptureFolder) -> list[ResultFile]:
    """Viewable outputs of finished runs (meshes, point clouds) and the exports, newest runs first."""
    out: list[ResultFile] = []
    if capture.exports_dir.is_dir():
        for p in sorted(capture.exports_dir.iterdir()):
            if p.suffix.lower() in (".usdz", ".glb", ".obj", ".ply") and not p.name.startswith("."):
                out.append(ResultFile("export", p, "exports"))
    runs = []
    if capture.runs_dir.is_dir():
        for run in capture.runs_dir.iterdir():
            status = read_status(run)
            if status and status.get("state") == "done":
                runs.append((float(status.get("ended") or 0.0), run))
    for _, run in sorted(runs, reverse=True):
        for p in sorted(run.glob("*.ply")) + sorted(run.glob("*.glb")) + sorted(run.glob("*.obj")):
            kind = "mesh" if p.suffix.lower() != ".ply" or _ply_has_faces(p) else "points"
            out.append(ResultFile(kind, p, run.name))
    return out


def _ply_has_faces(path: Path) -> bool:
    from desktop.geometry_io import ply_has_faces

    return ply_has_faces(path)


def human_size(n: int) -> str:
    if n <= 0:
        return "0 B"
    units = ("B", "KB", "MB", "GB", "TB")
    i = min(int(math.log(n, 1024)), len(units) - 1)
    return f"{n / 1024 ** i:.0f} {units[i]}" if i == 0 else f"{n / 1024 ** i:.1f} {units[i]}"


class CaptureNames:
    """Capture id -> its name, for lists that show many jobs: each manifest is read again only
    when it changed (a rename); a capture that is gone or unreadable shows its id."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._seen: dict[str, tuple[int, str]] = {}  # id -> (manifest mtime_ns, name)

    def name(self, capture_id: str) -> str:
        try:
            capture = self.workspace.capture(capture_id)
            stamp = capture.manifest_path.stat().st_mtime_ns
            known = self._seen.get(capture_id)
            if known is None or known[0] != stamp:
                known = (stamp, capture.load().name or capture_id)
                self._seen[capture_id] = known
            return known[1]
        except (ScanBridgeError, OSError):
            return capture_id
