"""A coarse look at a live RGB-D stream for the phone web page: which captures are streaming now,
and a top-down preview image of what their frames have seen so far.

The preview back-projects a sample of the stored depth maps (every few pixels of at most
MAX_FRAMES frames) with their poses into the gravity-aligned world (+y up) and draws the points
from above: brighter is higher; the cameras' positions are red. numpy and Pillow only: the
server never imports recon, and this is a hint while the phone moves, not a reconstruction.
"""

from __future__ import annotations

import io
import time
from typing import Any

import anyio
import numpy as np
from PIL import Image
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from capture_server.live import JOURNAL, frames_from_journal, read_journal
from core.capture import CaptureFolder, Frame
from core.errors import NotFoundError
from core.workspace import Workspace

STREAMING_WITHIN_S = 10.0  # a capture whose journal grew this recently is streaming
MAX_FRAMES = 48  # frames sampled for a preview, evenly over the stream
PIXEL_STEP = 4  # every PIXEL_STEP-th depth pixel in each direction
MAX_DEPTH_M = 4.0  # farther readings are noise for a hand-held LiDAR
PREVIEW_PX = 256
BACKGROUND = (24, 26, 30)
CAMERA_RGB = (230, 60, 50)


def streaming_captures(workspace: Workspace, now: float | None = None) -> list[dict[str, Any]]:
    """Captures whose live journal was written in the last STREAMING_WITHIN_S seconds, newest first."""
    now = time.time() if now is None else now
    out = []
    for capture in workspace.captures():
        try:
            updated = (capture.raw_dir / JOURNAL).stat().st_mtime
        except OSError:
            continue
        if now - updated > STREAMING_WITHIN_S:
            continue
        out.append({"id": capture.id, "name": capture.load().name,
                    "frames": len(read_journal(capture.raw_dir / JOURNAL)), "updated": updated})
    return sorted(out, key=lambda c: -c["updated"])


def _frame_points(capture: CaptureFolder, frame: Frame) -> np.ndarray:
    """(N, 3) world points of every PIXEL_STEP-th valid depth pixel of ``frame``."""
    if frame.depth is None or frame.pose is None:
        return np.zeros((0, 3))
    with Image.open(capture.path(frame.depth)) as image:
        full = np.asarray(image, dtype=np.float64)  # (H, W) raw units
    full_h, full_w = full.shape[:2]
    first = PIXEL_STEP // 2  # the middle pixel of each block, so the samples are centred
    depth = full[first::PIXEL_STEP, first::PIXEL_STEP] * frame.depth_scale  # (h, w) metres
    cam = frame.camera
    sx, sy = full_w / cam.width, full_h / cam.height  # colour intrinsics to depth pixels
    rows, cols = np.mgrid[0:depth.shape[0], 0:depth.shape[1]]  # (h, w) each
    u = (cols * PIXEL_STEP + first + 0.5) / sx  # pixel centres at the colour resolution
    v = (rows * PIXEL_STEP + first + 0.5) / sy
    ok = np.isfinite(depth) & (depth > 0) & (depth < MAX_DEPTH_M)
    z = depth[ok]
    camera_points = np.stack([(u[ok] - cam.cx) / cam.fx * z, (v[ok] - cam.cy) / cam.fy * z, z], axis=1)
    c2w = np.asarray(frame.pose, dtype=np.float64)  # (4, 4), OpenCV camera axes
    return camera_points @ c2w[:3, :3].T + c2w[:3, 3]


def top_down_preview(capture: CaptureFolder, size: int = PREVIEW_PX) -> tuple[bytes, int]:
    """A PNG of the stream's points seen from above and the number of frames it used."""
    frames = [f for f in frames_from_journal(capture) if f.depth is not None and f.pose is not None]
    if not frames:
        raise NotFoundError("no live frames with depth and a pose yet", capture.id)
    chosen = np.unique(np.linspace(0, len(frames) - 1, min(MAX_FRAMES, len(frames))).astype(int))
    picked = [frames[i] for i in chosen]
    points = np.concatenate([_frame_points(capture, f) for f in picked])  # (N, 3)
    cameras = np.array([np.asarray(f.pose)[:3, 3] for f in picked])  # (F, 3)
    if len(points) == 0:
        raise NotFoundError("the live frames have no usable depth yet", capture.id)
    # the ground plane (x right, z towards the bottom of the image): most points and every camera
    floor_xz, camera_xz = points[:, [0, 2]], cameras[:, [0, 2]]
    low = np.minimum(np.percentile(floor_xz, 1, axis=0), camera_xz.min(axis=0))
    high = np.maximum(np.percentile(floor_xz, 99, axis=0), camera_xz.max(axis=0))
    span = float(max(high - low)) * 1.1 or 1.0
    centre = (low + high) / 2.0

    def pixels(xz: np.ndarray) -> np.ndarray:  # (K, 2) world x, z -> (K, 2) column, row
        return np.floor(((xz - centre) / span + 0.5) * size).astype(int)

    px = pixels(floor_xz)
    inside = np.all((px >= 0) & (px < size), axis=1)
    px, heights = px[inside], points[inside, 1]
    top = np.full((size, size), -np.inf)
    np.maximum.at(top, (px[:, 1], px[:, 0]), heights)
    seen = np.isfinite(top)
    image = np.empty((size, size, 3), dtype=np.uint8)  # (H, W, RGB)
    image[:] = BACKGROUND
    if seen.any():
        h_low, h_high = np.percentile(top[seen], 2), np.percentile(top[seen], 98)
        shade = np.clip((top[seen] - h_low) / max(h_high - h_low, 1e-6), 0.0, 1.0)
        image[seen] = (70 + 185 * shade)[:, None].astype(np.uint8)
    for col, row in pixels(camera_xz):
        image[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3] = CAMERA_RGB
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue(), len(picked)


def live_preview_routes(workspace: Workspace) -> list[Route]:
    """``GET /v1/live`` (captures streaming now) and ``GET /v1/captures/{id}/live/preview.png``."""

    async def streaming(request: Request) -> Response:
        return JSONResponse({"captures": await anyio.to_thread.run_sync(streaming_captures, workspace),
                             "streaming_within_s": STREAMING_WITHIN_S})

    async def preview(request: Request) -> Response:
        capture = await anyio.to_thread.run_sync(workspace.capture, request.path_params["capture_id"])
        png, used = await anyio.to_thread.run_sync(top_down_preview, capture)
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "no-store", "X-Preview-Frames": str(used)})

    return [
        Route("/v1/live", streaming, methods=["GET"], name="live_captures"),
        Route("/v1/captures/{capture_id}/live/preview.png", preview, methods=["GET"], name="live_preview"),
    ]
