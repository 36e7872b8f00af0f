"""Live capture: while a phone streams RGB-D frames, the fused model grows on screen. The view
takes mesh or point updates through LiveFeed's signals, from any thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.viewer.scene import Scene, ViewMesh, ViewPoints
from desktop.viewer.widget import ViewerWidget


class LiveFeed(QObject):
    """Emit from the fusion side (any thread); the view follows on the GUI thread."""

    mesh_updated = Signal(object, int)  # ViewMesh, frames fused so far
    points_updated = Signal(object, int)  # ViewPoints, frames fused so far
    ended = Signal(str)  # a closing message


class LivePanel(QWidget):
    def __init__(self, feed: LiveFeed, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.feed = feed
        self.frames = 0
        self.updates = 0
        self._framed = False
        layout = QVBoxLayout(self)
        self.status = QLabel("Waiting for a phone to stream RGB-D frames…")
        self.status.setStyleSheet("font-size: 15px;")
        layout.addWidget(self.status)
        self.viewer = ViewerWidget(placeholder="The model appears here as frames arrive")
        layout.addWidget(self.viewer, 1)
        feed.mesh_updated.connect(self.show_mesh)
        feed.points_updated.connect(self.show_points)
        feed.ended.connect(self.status.setText)

    def _show(self, scene: Scene, frames: int, what: str) -> None:
        has_geometry = len(scene.all_points()) > 0
        self.updates += 1
        self.frames = frames
        # Frame the model once, when it first has geometry; after that the user's view stays.
        self.viewer.set_scene(scene, reset_camera=has_geometry and not self._framed)
        self._framed = self._framed or has_geometry
        self.status.setText(f"Live: {frames} frames fused · {what}")

    def show_mesh(self, mesh: ViewMesh, frames: int) -> None:
        self._show(Scene(meshes=[mesh]), frames, f"{len(mesh.faces):,} triangles")

    def show_points(self, points: ViewPoints, frames: int) -> None:
        self._show(Scene(points=[points]), frames, f"{len(points.points):,} points")
