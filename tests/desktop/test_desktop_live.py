"""Live capture: frames fused one at a time by recon.fusion on another thread reach the view
through LiveFeed's signals, and the model on screen grows."""

from __future__ import annotations

import threading

import numpy as np

from desktop.panels.live import LiveFeed, LivePanel
from desktop.viewer.scene import ViewMesh
from recon.fusion.frames import read_frame
from recon.fusion.tsdf import TSDFFusion, preset


def test_fused_model_grows_on_screen(sample_workspace, qtbot):
    (capture,) = sample_workspace.captures()
    frames = [f for f in capture.load().frames if f.depth and f.pose][::4]  # 6 views around
    feed = LiveFeed()
    panel = LivePanel(feed)
    qtbot.addWidget(panel)
    panel.resize(640, 480)
    panel.show()
    seen: list[int] = []
    panel.viewer.rendered.connect(lambda: seen.append(panel.viewer.last_render.covered
                                                      if panel.viewer.last_render else 0))

    def stream() -> None:  # what the live stream's fusion side does
        fusion = TSDFFusion(preset("object", voxel_size_m=0.01))
        for i, frame in enumerate(frames):
            arrays = read_frame(capture, frame)
            fusion.add_frame(arrays.depth, frame.camera, arrays.c2w, arrays.color, frame=frame.id)
            mesh = fusion.extract_mesh()
            feed.mesh_updated.emit(ViewMesh(mesh.vertices, mesh.faces, mesh.colors), i + 1)
        feed.ended.emit("Stream ended")

    sizes = []
    feed.mesh_updated.connect(lambda mesh, n: sizes.append(len(mesh.faces)))
    worker = threading.Thread(target=stream)
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=120000)
    worker.join()
    qtbot.waitUntil(lambda: panel.status.text() == "Stream ended", timeout=10000)
    qtbot.waitUntil(lambda: not panel.viewer.busy, timeout=30000)
    assert panel.updates == len(frames) and panel.frames == len(frames)
    assert 0 < sizes[2] < sizes[-1]  # more views, more surface (the first ones are below min_weight)
    assert np.all(np.diff(sizes) >= -0.05 * sizes[-1])
    assert panel.viewer.scene.meshes[0].faces.shape[0] == sizes[-1]
    assert panel.viewer.last_render is not None and panel.viewer.last_render.covered > 2000
