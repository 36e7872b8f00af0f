"""The live preview of one streaming capture, Qt-free: reads the frames the capture server has
stored so far (capture_server.live's journal), fuses the new ones into a coarse TSDF and extracts
a preview mesh. The app runs it in a child process (desktop.live_process): open3d holds the GIL."""

from __future__ import annotations

import time
from dataclasses import dataclass

from capture_server.live import frames_from_journal
from core.capture import CaptureFolder
from core.errors import ScanBridgeError
from desktop.viewer.scene import ViewMesh
from recon.fusion.frames import read_frame
from recon.fusion.tsdf import TSDFFusion, preset

PREVIEW_VOXEL_M = 0.03  # coarse: a frame of phone LiDAR fuses in about 10 ms on an idle core
MESH_EVERY_S = 0.5  # a preview mesh at most this often while frames keep coming
FRAMES_PER_CALL = 30  # frames fused per call, so the view updates during a long backlog


@dataclass(frozen=True)
class LiveUpdate:
    capture_id: str
    fused: int  # frames fused into the preview so far
    stored: int  # frames the server has stored so far
    mesh: ViewMesh | None  # a new preview mesh, or None when it was not re-extracted this time
    skipped: tuple[str, ...] = ()  # frames that could not be read or fused (named in the view)
    up_to_date: bool = False  # every stored frame is fused and in the last mesh sent


class LiveSession:
    """Fuses a live capture's stored frames as they appear."""

    def __init__(self, capture: CaptureFolder, voxel_size_m: float = PREVIEW_VOXEL_M) -> None:
        self.capture = capture
        self.fusion = TSDFFusion(preset("room", voxel_size_m=voxel_size_m, refine_views=0))
        self._done: set[str] = set()
        self._last_mesh = 0.0
        self._mesh_frames = -1

    @property
    def capture_id(self) -> str:
        return self.capture.id

    def catch_up(self, *, final: bool = False, limit: int = FRAMES_PER_CALL) -> LiveUpdate:
        """Fuse up to ``limit`` stored frames not fused yet; extract a preview mesh when one is
        due, and always once the backlog is fused when ``final`` (the stream has closed)."""
        frames = frames_from_journal(self.capture)
        waiting = [f for f in frames if f.id not in self._done]
        new, rest = waiting[:limit], waiting[limit:]
        skipped = []
        for frame in new:
            self._done.add(frame.id)
            if frame.depth is None or frame.pose is None:
                continue
            try:
                arrays = read_frame(self.capture, frame)
                self.fusion.add_frame(arrays.depth, frame.camera, arrays.c2w, arrays.color,
                                      arrays.confidence, depth_scale=frame.depth_scale, frame=frame.id)
            except ScanBridgeError:
                skipped.append(frame.id)  # a bad frame must not end the preview
        mesh = None
        now = time.monotonic()
        due = (final and not rest) or now - self._last_mesh >= MESH_EVERY_S
        if self.fusion.frame_count != self._mesh_frames and due:
            fused = self.fusion.extract_mesh()
            mesh = ViewMesh(fused.vertices, fused.faces, fused.colors)
            self._last_mesh, self._mesh_frames = now, self.fusion.frame_count
        up_to_date = not rest and self.fusion.frame_count == self._mesh_frames
        return LiveUpdate(self.capture_id, self.fusion.frame_count, len(frames), mesh, tuple(skipped),
                          up_to_date)
