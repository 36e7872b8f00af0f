"""Live capture: while a phone streams RGB-D frames to the app's server, the fused model grows on
screen. LiveController watches the server's open streams; a child process (desktop.live_process,
started at the first stream and kept for the next ones, waited on from a pool thread) fuses the
stored frames and the controller feeds the view through LiveFeed's signals; the view takes mesh
or point updates from any thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.context import AppContext
from desktop.live_process import LiveFusionProcess
from desktop.live_session import LiveUpdate
from desktop.viewer.scene import Scene, ViewMesh, ViewPoints
from desktop.viewer.widget import ViewerWidget


class LiveFeed(QObject):
    """Emit from the fusion side (any thread); the view follows on the GUI thread."""

    started = Signal(str, str)  # capture id, capture name: a new stream, the view starts over
    mesh_updated = Signal(object, int)  # ViewMesh, frames fused so far
    points_updated = Signal(object, int)  # ViewPoints, frames fused so far
    ended = Signal(str)  # a closing message


class LiveController(QObject):
    """Follows the live streams of the app's capture server: a new stream switches the window to
    the Live view, its frames are fused off the GUI thread and each preview goes to ``feed``."""

    def __init__(self, ctx: AppContext, feed: LiveFeed, parent: QObject | None = None,
                 poll_ms: int = 100) -> None:
        super().__init__(parent)
        self.ctx, self.feed = ctx, feed
        self.process: LiveFusionProcess | None = None  # started at the first stream, kept
        self.following = False  # a stream's preview is open in the process
        self.capture_id: str | None = None  # the stream followed now (its session may be loading)
        self._busy = False
        self._stopped = False
        self._failed_ids: set[str] = set()  # streams whose preview failed: not retried
        self._timer = QTimer(self, interval=poll_ms)
        self._timer.timeout.connect(self.tick)
        self._timer.start()

    def tick(self) -> None:
        streams = self.ctx.services.live_streams()  # cheap: a set held by the server
        if self._busy:
            return
        if self.following:  # follow this stream to its end before taking another
            self._step(final=self.capture_id not in streams)
            return
        fresh = sorted(cid for cid in streams if cid not in self._failed_ids)
        if fresh:
            self._open(fresh[0])

    def _open(self, capture_id: str) -> None:
        self.capture_id, self._busy = capture_id, True

        process = self.process

        def load() -> tuple[LiveFusionProcess, str]:
            capture = self.ctx.services.capture(capture_id)
            nonlocal process
            if process is None or not process.alive:
                process = LiveFusionProcess()
            process.open(capture.root)
            return process, capture.load().name

        def opened(result: tuple[LiveFusionProcess, str]) -> None:
            self._busy = False
            self.process, name = result
            if self._stopped:
                self.process.kill()
                return
            self.following = True
            self.feed.started.emit(capture_id, name)
            self.ctx.signals.live_started.emit()

        self.ctx.tasks.run(load, opened, lambda e: self._failed(e, capture_id))

    def _step(self, final: bool) -> None:
        process, capture_id = self.process, self.capture_id
        assert process is not None and capture_id is not None
        self._busy = True

        def work() -> tuple[LiveUpdate, bool]:
            update = process.step(final=final)
            return update, final and update.up_to_date

        self.ctx.tasks.run(work, self._stepped, lambda e: self._failed(e, capture_id))

    def _stepped(self, result: tuple[LiveUpdate, bool]) -> None:
        self._busy = False
        if self._stopped:
            return
        update, finished = result
        if update.mesh is not None:
            self.feed.mesh_updated.emit(update.mesh, update.fused)
        for frame in update.skipped:
            self.ctx.notifier.notify(f"Live preview skipped {frame} of {update.capture_id}", "warning")
        if finished:
            self.feed.ended.emit(f"Stream ended: {update.fused} of {update.stored} frames fused")
            self._close()

    def _failed(self, error: BaseException, capture_id: str) -> None:
        self._busy = False
        if self._stopped:
            return
        if self.process is not None:
            self.process.kill()  # a fresh one starts with the next stream
            self.process = None
        self._failed_ids.add(capture_id)
        self.ctx.notifier.error(error, f"Live preview of {capture_id}")
        self.feed.ended.emit("The live preview stopped (see the message above)")
        self._close()

    def _close(self) -> None:
        self.following, self.capture_id = False, None

    def stop(self) -> None:
        """The app is closing: no more polls, and the preview process ends now."""
        self._stopped = True
        self._timer.stop()
        if self.process is not None:
            self.process.kill()


class LivePanel(QWidget):
    def __init__(self, feed: LiveFeed, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.feed = feed
        self.frames = 0
        self.updates = 0
        self.capture_name = ""
        self._framed = False
        layout = QVBoxLayout(self)
        self.status = QLabel("Waiting for a phone to stream RGB-D frames…")
        self.status.setStyleSheet("font-size: 15px;")
        layout.addWidget(self.status)
        self.viewer = ViewerWidget(placeholder="The model appears here as frames arrive")
        layout.addWidget(self.viewer, 1)
        feed.started.connect(self.start)
        feed.mesh_updated.connect(self.show_mesh)
        feed.points_updated.connect(self.show_points)
        feed.ended.connect(self.status.setText)

    def start(self, capture_id: str, name: str) -> None:
        self.capture_name, self.frames, self._framed = name, 0, False
        self.viewer.set_scene(Scene())
        self.status.setText(f"Live: {name} · waiting for the first frames…")

    def _show(self, scene: Scene, frames: int, what: str) -> None:
        has_geometry = len(scene.all_points()) > 0
        self.updates += 1
        self.frames = frames
        # Frame the model once, when it first has geometry; after that the user's view stays.
        self.viewer.set_scene(scene, reset_camera=has_geometry and not self._framed)
        self._framed = self._framed or has_geometry
        named = f"{self.capture_name} · " if self.capture_name else ""
        self.status.setText(f"Live: {named}{frames} frames fused · {what}")

    def show_mesh(self, mesh: ViewMesh, frames: int) -> None:
        self._show(Scene(meshes=[mesh]), frames, f"{len(mesh.faces):,} triangles")

    def show_points(self, points: ViewPoints, frames: int) -> None:
        self._show(Scene(points=[points]), frames, f"{len(points.points):,} points")
