"""The 3D viewer widget: orbit (left drag), pan (right/middle drag or Shift+left), zoom (wheel),
reset (double click); in measuring mode a click picks a point on the surface (two points give a
distance). Renders in software on a pool thread, so it works without OpenGL (offscreen,
remote desktops) and never blocks the GUI; a quick point preview follows the mouse while dragging."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.tasks import TaskRunner
from desktop.viewer.camera import OrbitCamera, framing
from desktop.viewer.render import Rendered, render
from desktop.viewer.scene import Scene, ViewPoints
from recon.export.texture_io import sample_texture

PREVIEW_POINTS = 60_000
FRUSTUM = QColor(120, 200, 255)
FRUSTUM_FLAGGED = QColor(255, 170, 60)
MEASURE = QColor(255, 220, 60)
CLICK_SLOP_PX = 4.0  # a press and release closer than this is a click, not a drag
PICK_RADIUS_PX = 3  # a click this close to the surface still picks it


def _preview_of(scene: Scene) -> Scene:
    """The scene as a light point cloud: mesh vertices with their colours, subsampled."""
    clouds = list(scene.points)
    for mesh in scene.meshes:
        colors = mesh.vertex_colors
        if mesh.textured:
            colors = np.zeros((len(mesh.vertices), 3), np.uint8)
            corner = sample_texture(mesh.texture, mesh.corner_uvs.reshape(-1, 2))  # (3M, 3)
            colors[mesh.faces.reshape(-1)] = np.clip(corner, 0, 255).astype(np.uint8)
        clouds.append(ViewPoints(mesh.vertices, colors))
    out = []
    total = sum(len(c.points) for c in clouds) or 1
    rng = np.random.default_rng(0)
    for c in clouds:
        n = max(1, int(PREVIEW_POINTS * len(c.points) / total))
        if len(c.points) > n:
            keep = rng.choice(len(c.points), n, replace=False)
            c = ViewPoints(c.points[keep], None if c.colors is None else c.colors[keep])
        out.append(c)
    return Scene(points=out, frusta=scene.frusta)


def to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ViewerWidget(QWidget):
    """Shows a Scene. ``rendered`` fires after each full-quality frame (tests and screenshots wait on it)."""

    rendered = Signal()
    picked = Signal()  # a measuring point was added (see measure_points)

    def __init__(self, parent: QWidget | None = None, *, placeholder: str = "Nothing to show yet") -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.placeholder = placeholder
        self.scene = Scene()
        self.camera = OrbitCamera()
        self._preview = Scene()
        self._image: QImage | None = None
        self._lines = np.zeros((0, 2, 2))
        self._line_flags = np.zeros(0, bool)
        self._image_size = (1, 1)
        self._generation = 0
        self._drag_start: QPointF | None = None
        self._drag_button = Qt.MouseButton.NoButton
        self._drag_camera = self.camera
        self.last_render: Rendered | None = None
        self._render_camera = self.camera  # the camera of last_render
        self.measuring = False
        self.measure_points: list[np.ndarray] = []  # world points (3,), at most two
        self._tasks = TaskRunner(self, max_threads=1)
        self._preview_tasks = TaskRunner(self, max_threads=1)
        self._in_flight: set[str] = set()
        self._pending: set[str] = set()
        self._shown = 0  # generation of the picture on screen
        self._full = QTimer(self, singleShot=True, interval=120)
        self._full.timeout.connect(self._render_full)

    # -- content -------------------------------------------------------------------------------

    def set_scene(self, scene: Scene, *, reset_camera: bool = True) -> None:
        self.scene = scene
        self._preview = _preview_of(scene)
        if reset_camera or self.scene.empty:
            self.reset_camera()
        else:
            self.request_render()

    def reset_camera(self) -> None:
        self.camera = framing(self.scene.all_points())
        self.request_render()

    def set_measuring(self, on: bool) -> None:
        """Clicks pick surface points (orbit and zoom still work); turning it on or off clears them."""
        self.measuring = on
        self.measure_points = []
        self.update()

    def measured_distance(self) -> float | None:
        """The distance between the two picked points, in the scene's units."""
        if len(self.measure_points) < 2:
            return None
        return float(np.linalg.norm(self.measure_points[1] - self.measure_points[0]))

    def pick(self, x: float, y: float) -> np.ndarray | None:
        """The surface point (3,) under widget position (x, y) in the last full render, or None."""
        result = self.last_render
        if result is None:
            return None
        h, w = result.depth.shape
        px = int(x * w / max(1, self.width()))
        py = int(y * h / max(1, self.height()))
        r = PICK_RADIUS_PX
        y0, y1, x0, x1 = max(0, py - r), min(h, py + r + 1), max(0, px - r), min(w, px + r + 1)
        window = result.depth[y0:y1, x0:x1]
        if window.size == 0 or not np.isfinite(window).any():
            return None
        yy, xx = np.mgrid[y0:y1, x0:x1]
        far = np.where(np.isfinite(window), (yy - py) ** 2 + (xx - px) ** 2, np.inf)
        k = int(np.argmin(far))  # the nearest covered pixel to the click
        qy, qx = int(yy.flat[k]), int(xx.flat[k])
        depth = float(result.depth[qy, qx])
        return self._render_camera.unproject(qx + 0.5, qy + 0.5, depth, w, h)

    def set_camera(self, camera: OrbitCamera) -> None:
        self.camera = camera
        self.request_render()

    def wait(self, timeout_ms: int = 10000) -> bool:
        """Let the renders in flight end (the window calls it before it goes)."""
        return self._tasks.wait(timeout_ms) and self._preview_tasks.wait(timeout_ms)

    @property
    def busy(self) -> bool:
        return bool(self._in_flight) or self._full.isActive() or bool(self._pending)

    # -- rendering: both kinds on pool threads, the newest request wins ------------------------

    def request_render(self, preview: bool = False) -> None:
        self._generation += 1
        if preview and not self._preview.empty:
            self._start("preview")
            self._full.start()  # the full-quality frame once the mouse rests
        else:
            self._full.start(0)

    def _render_full(self) -> None:
        self._start("full")

    def _start(self, kind: str) -> None:
        if kind in self._in_flight:
            self._pending.add(kind)  # render again with the newest camera when this one ends
            return
        generation, camera = self._generation, self.camera
        w, h = max(1, self.width()), max(1, self.height())
        if kind == "preview":
            scene, w, h, radius = self._preview, max(1, w // 2), max(1, h // 2), 1
        else:
            scene, radius = self.scene, 2
        if scene.empty:
            self._image = None
            self.update()
            if kind == "full":
                self.rendered.emit()
            return
        self._in_flight.add(kind)

        def done(result: Rendered) -> None:
            self._finished(kind)
            if generation > self._shown or (kind == "full" and generation == self._shown):
                self._shown = generation
                if kind == "full":
                    self.last_render, self._render_camera = result, camera
                self._show(result, (w, h))
                if kind == "full" and generation == self._generation:
                    self.rendered.emit()

        def failed(error: BaseException) -> None:
            self._finished(kind)
            self._failed(error)

        runner = self._tasks if kind == "full" else self._preview_tasks
        runner.run(lambda: render(scene, camera, w, h, point_radius=radius), done, failed)

    def _finished(self, kind: str) -> None:
        self._in_flight.discard(kind)
        if kind in self._pending:
            self._pending.discard(kind)
            self._start(kind)

    def _failed(self, error: BaseException) -> None:
        self.placeholder = f"Cannot draw this: {error}"
        self._image = None
        self.update()
        self.rendered.emit()

    def _show(self, result: Rendered, size: tuple[int, int]) -> None:
        self._image = to_qimage(result.rgb)
        self._lines, self._line_flags, self._image_size = result.lines, result.line_flags, size
        self.update()

    def current_image(self) -> QImage | None:
        return self._image

    def paintEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self._image is None:
            painter.fillRect(self.rect(), QColor(34, 37, 43))
            painter.setPen(QColor(150, 155, 165))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        painter.drawImage(self.rect(), self._image)
        sx = self.width() / self._image_size[0]
        sy = self.height() / self._image_size[1]
        for flagged in (False, True):
            painter.setPen(QPen(FRUSTUM_FLAGGED if flagged else FRUSTUM, 1.2))
            for (x0, y0), (x1, y1) in self._lines[self._line_flags == flagged]:
                painter.drawLine(QPointF(x0 * sx, y0 * sy), QPointF(x1 * sx, y1 * sy))
        if self.measure_points:
            screen, z = self.camera.project(np.stack(self.measure_points), self.width(), self.height())
            painter.setPen(QPen(MEASURE, 2.0))
            dots = [QPointF(float(u), float(v)) for (u, v), depth in zip(screen, z, strict=True) if depth > 0]
            for dot in dots:
                painter.drawEllipse(dot, 4.0, 4.0)
            if len(dots) == 2:
                painter.drawLine(dots[0], dots[1])

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        self.request_render()

    # -- mouse ---------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._drag_start = event.position()
        self._drag_button = event.button()
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._drag_button = Qt.MouseButton.RightButton
        self._drag_camera = self.camera

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag_start is None:
            return
        d = event.position() - self._drag_start
        if self._drag_button == Qt.MouseButton.LeftButton:
            self.camera = self._drag_camera.orbited(-d.x() * 0.4, d.y() * 0.4)
        else:
            self.camera = self._drag_camera.panned(d.x(), d.y(), max(1, self.height()))
        self.request_render(preview=True)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        start, self._drag_start = self._drag_start, None
        moved = (event.position() - start).manhattanLength() if start is not None else 0.0
        if (self.measuring and event.button() == Qt.MouseButton.LeftButton and moved < CLICK_SLOP_PX
                and self._drag_button == Qt.MouseButton.LeftButton):
            self.camera = self._drag_camera  # a click does not orbit
            point = self.pick(event.position().x(), event.position().y())
            if point is not None:
                kept = self.measure_points if len(self.measure_points) < 2 else []  # a third click: anew
                self.measure_points = [*kept, point]
                self.update()
                self.picked.emit()
            return
        self.request_render()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.reset_camera()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        self.camera = self.camera.zoomed(1.15 ** steps)
        self.request_render(preview=True)
