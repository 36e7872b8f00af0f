"""Result view: an interactive viewer of a capture's meshes and point clouds; export as USDZ, GLB,
OBJ or PLY with a detail preset, PNG or JPEG textures and a Y or Z up axis for PLY/OBJ; "Share to
phone" with a QR code and link; "size estimated" when the model had nothing to measure by, and "Set
real size…" (a known longest side) or "Measure" (two points picked on the model and their real
distance) to process it again at a known size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.jobs import Job
from core.model_size import ModelSize
from desktop.capture_info import ResultFile
from desktop.context import AppContext
from desktop.panels.real_size import PickedDistance, RealSizeDialog
from desktop.qr import qr_image
from desktop.services import DETAILS
from desktop.viewer.scene import Scene
from desktop.viewer.widget import ViewerWidget

FORMATS = ("usdz", "glb", "obj", "ply")
TEXTURE_FORMATS = ("png", "jpeg")
UP_AXES = ("y", "z")


def load_scene(result: ResultFile) -> Scene:
    from desktop.geometry_io import load_mesh, load_points

    if result.kind == "points":
        return Scene(points=[load_points(result.path)])
    return Scene(meshes=[load_mesh(result.path)])


def default_choice(results: list[ResultFile]) -> int:
    """What the viewer opens first: the newest textured model (GLB, OBJ), else the newest mesh,
    else the first point cloud. ``results`` are newest first, exports before runs."""
    meshes = [i for i, r in enumerate(results) if r.kind != "points"]
    textured = [i for i in meshes if results[i].path.suffix.lower() in (".glb", ".obj")]
    return (textured or meshes or [0])[0]


class ShareDialog(QDialog):
    def __init__(self, link: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Share to phone")
        self.link = link
        box = QVBoxLayout(self)
        box.addWidget(QLabel("Scan with the phone's camera to open the model in AR Quick Look.\n"
                             "The link is read-only and expires in a week."))
        self.qr_label = QLabel()
        self.qr_label.setPixmap(QPixmap.fromImage(qr_image(link, 280)))
        self.qr_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        box.addWidget(self.qr_label)
        text = QLabel(link)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.setWordWrap(True)
        box.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        box.addWidget(buttons)


class ResultView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.capture_id: str | None = None
        self.results: list[ResultFile] = []
        self.share_dialog: ShareDialog | None = None
        self.size_dialog: RealSizeDialog | None = None
        self.size: ModelSize | None = None
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.title = QLabel("Open a capture's result from the Capture view")
        self.title.setStyleSheet("font-size: 16px; font-weight: 600;")
        top.addWidget(self.title, 1)
        top.addWidget(QLabel("Show"))
        self.choice = QComboBox()
        self.choice.setMinimumWidth(260)
        self.choice.currentIndexChanged.connect(self._show_choice)
        top.addWidget(self.choice)
        layout.addLayout(top)
        self.viewer = ViewerWidget(placeholder="No result yet: process the capture first")
        layout.addWidget(self.viewer, 1)
        hint = QLabel("Drag to orbit · right-drag or Shift+drag to pan · wheel to zoom · "
                      "double-click to reset")
        hint.setStyleSheet("color: #8a93a3;")
        layout.addWidget(hint)
        bottom = QHBoxLayout()
        self.info = QLabel()
        bottom.addWidget(self.info, 1)
        self.size_label = QLabel()
        self.size_label.setStyleSheet("color: #b86e00; font-weight: 600;")
        self.size_label.hide()
        bottom.addWidget(self.size_label)
        self.real_size_button = QPushButton("Set real size…")
        self.real_size_button.setToolTip("Enter the object's longest side; the capture is processed again "
                                         "at that size")
        self.real_size_button.setEnabled(False)
        bottom.addWidget(self.real_size_button)
        self.measure_button = QPushButton("Measure")
        self.measure_button.setCheckable(True)
        self.measure_button.setToolTip("Click two points on the model whose real distance you know")
        self.measure_button.setEnabled(False)
        bottom.addWidget(self.measure_button)
        bottom.addWidget(QLabel("Export as"))
        self.format = QComboBox()
        self.format.addItems(FORMATS)
        bottom.addWidget(self.format)
        self.detail = QComboBox()
        self.detail.addItems(DETAILS)
        self.detail.setCurrentText("medium")
        bottom.addWidget(self.detail)
        self.texture_format = QComboBox()
        self.texture_format.addItems(TEXTURE_FORMATS)
        self.texture_format.setToolTip("How the texture is stored in USDZ, GLB and OBJ")
        bottom.addWidget(self.texture_format)
        self.up_axis = QComboBox()
        self.up_axis.addItems([f"{axis} up" for axis in UP_AXES])
        self.up_axis.setToolTip("The up axis of PLY and OBJ files (USDZ and GLB are always Y up)")
        bottom.addWidget(self.up_axis)
        self.format.currentTextChanged.connect(self._format_changed)
        self._format_changed(self.format.currentText())
        self.export_button = QPushButton("Export")
        self.share_button = QPushButton("Share to phone…")
        self.video_button = QPushButton("Make video")
        self.video_button.setToolTip("Render a 6-second turntable clip (exports/clip.mp4, on the share page)")
        bottom.addWidget(self.video_button)
        bottom.addWidget(self.export_button)
        bottom.addWidget(self.share_button)
        layout.addLayout(bottom)
        self.export_button.clicked.connect(lambda: self.export(self.format.currentText(),
                                                               self.detail.currentText()))
        self.share_button.clicked.connect(self.share)
        self.video_button.clicked.connect(lambda: self.make_video())
        self.real_size_button.clicked.connect(lambda: self.ask_real_size())
        self.measure_button.toggled.connect(self._measure_toggled)
        self.viewer.picked.connect(self._picked)

    def open(self, capture_id: str) -> None:
        self.capture_id = capture_id
        try:
            self.title.setText(self.ctx.services.capture(capture_id).load().name)
        except Exception as e:
            self.ctx.notifier.error(e, "Cannot open the result")
            return
        self.ctx.tasks.run(lambda: self.ctx.services.result_files(capture_id), self._listed,
                           lambda e: self.ctx.notifier.error(e, "Cannot list results"))
        self._show_size(None)
        self.ctx.tasks.run(lambda: (capture_id, self.ctx.services.model_size(capture_id)),
                           lambda found: self._show_size(found[1]) if found[0] == self.capture_id else None,
                           lambda e: self.ctx.notifier.error(e, "Cannot read the model's size"))

    def _show_size(self, size: ModelSize | None) -> None:
        self.size = size
        self.real_size_button.setEnabled(size is not None)
        self._enable_measure()
        if size is None or not size.estimated:
            self.size_label.hide()
            return
        side = f": longest side {size.longest_side_m * 100:.0f} cm" if size.longest_side_m else ""
        self.size_label.setText(f"Size estimated{side}")
        self.size_label.setToolTip("The scan had nothing to measure by (no depth in metres, no marker). "
                                   "Use Set real size… to give its real size.")
        self.size_label.show()

    def _measurable(self) -> bool:
        """Measuring needs the model as exported (placed, in the current size's metres): an export
        or the mesh stage's textured model, not a raw reconstruction in the capture's own units."""
        result = self.current_result()
        placed = result is not None and result.kind != "points" and (
            result.stage == "exports" or result.stage.startswith("mesh-"))
        return placed and self.size is not None and bool(self.viewer.scene.meshes)

    def _enable_measure(self) -> None:
        can = self._measurable()
        self.measure_button.setEnabled(can)
        if not can and self.measure_button.isChecked():
            self.measure_button.setChecked(False)

    def _measure_toggled(self, on: bool) -> None:
        self.viewer.set_measuring(on)
        if on:
            self.info.setText("Click two points on the model whose real distance you know")

    def _picked(self) -> None:
        distance = self.viewer.measured_distance()
        if distance is None:
            self.info.setText("Now click the second point")
            return
        if distance <= 0 or not self.viewer.scene.meshes:
            self.info.setText("Pick two different points")
            return
        mesh = self.viewer.scene.meshes[0]
        longest = float(np.ptp(np.asarray(mesh.vertices, np.float64), axis=0).max())
        self.info.setText(f"Picked points {distance * 100:.1f} cm apart on the model")
        self.ask_real_size(PickedDistance(distance, longest))

    def ask_real_size(self, picked: PickedDistance | None = None) -> RealSizeDialog | None:
        if self.capture_id is None or self.size is None:
            return None
        side = self.size.longest_side_m
        self.size_dialog = RealSizeDialog(side * 100 if side else None, self.size.estimated, self, picked)
        self.size_dialog.accepted.connect(lambda: self.set_real_size(self.size_dialog.longest_side_m()))
        self.size_dialog.open()
        return self.size_dialog

    def set_real_size(self, longest_side_m: float) -> None:
        """Queue the capture again, as Process does, with the mesh stage's ``real_size_m``: the
        same method and detail as last time (the steps before mesh are reused)."""
        capture_id = self.capture_id
        if capture_id is None:
            return
        self.real_size_button.setEnabled(False)  # one job per click

        def queue() -> Job:
            method, detail = self.ctx.services.last_plan(capture_id) or (None, None)
            overrides = {"mesh": {"real_size_m": longest_side_m}}
            return self.ctx.services.process(capture_id, method, detail, overrides)

        def done(job: Job) -> None:
            self.real_size_button.setEnabled(self.size is not None)
            self.ctx.notifier.notify(f"Queued job {job.id}: processing again with the longest side "
                                     f"{longest_side_m * 100:g} cm", "info")
            self.ctx.signals.jobs_changed.emit()

        def failed(error: BaseException) -> None:
            self.real_size_button.setEnabled(self.size is not None)
            self.ctx.notifier.error(error, "Cannot process at the real size")

        self.ctx.tasks.run(queue, done, failed)

    def _listed(self, results: list[ResultFile]) -> None:
        shown = [r for r in results if r.path.suffix.lower() != ".usdz"]
        self.results = shown
        self.choice.blockSignals(True)
        self.choice.clear()
        for r in shown:
            self.choice.addItem(f"{r.kind}: {r.stage}/{r.path.name}")
        self.choice.blockSignals(False)
        if shown:
            self.choice.setCurrentIndex(default_choice(shown))
            self._show_choice(self.choice.currentIndex())
        else:
            self.viewer.set_scene(Scene())
            self.info.setText("No meshes or point clouds in this capture yet")

    def _show_choice(self, index: int) -> None:
        if not 0 <= index < len(self.results):
            return
        result = self.results[index]

        def done(scene: Scene) -> None:
            self.viewer.set_scene(scene)
            self._enable_measure()
            if scene.meshes:
                m = scene.meshes[0]
                look = "textured" if m.textured else "vertex colours"
                self.info.setText(f"{len(m.faces):,} triangles · {len(m.vertices):,} vertices · {look}")
            else:
                self.info.setText(f"{sum(len(p.points) for p in scene.points):,} points")

        self.ctx.tasks.run(lambda: load_scene(result), done,
                           lambda e: self.ctx.notifier.error(e, f"Cannot show {result.path.name}"))

    def _format_changed(self, fmt: str) -> None:
        # PLY has no texture; only PLY and OBJ have a choice of up axis (USDZ and GLB are Y up).
        self.texture_format.setEnabled(fmt != "ply")
        self.up_axis.setEnabled(fmt in ("ply", "obj"))

    def current_result(self) -> ResultFile | None:
        index = self.choice.currentIndex()
        return self.results[index] if 0 <= index < len(self.results) else None

    def export(self, fmt: str, detail: str, dest: Path | None = None, *, texture_format: str | None = None,
               up: str | None = None) -> None:
        """Export the shown mesh; the texture format and up axis default to the menus' choices."""
        result, capture_id = self.current_result(), self.capture_id
        texture_format = texture_format or self.texture_format.currentText()
        up = up or UP_AXES[max(self.up_axis.currentIndex(), 0)]
        if result is None or capture_id is None or result.kind == "points":
            self.ctx.notifier.notify("Choose a mesh to export", "warning")
            return
        self.export_button.setEnabled(False)
        self.info.setText(f"Exporting {fmt} ({detail})…")

        def done(path: Path) -> None:
            self.export_button.setEnabled(True)
            self.ctx.notifier.notify(f"Exported {path}", "success")
            self.open(capture_id)

        def failed(error: BaseException) -> None:
            self.export_button.setEnabled(True)
            self.ctx.notifier.error(error, "Export failed")

        self.ctx.tasks.run(lambda: self.ctx.services.export(capture_id, result.path, fmt, detail, dest,
                                                            texture_format=texture_format, up=up),
                           done, failed)

    def make_video(self, options: dict | None = None) -> None:
        """Queue a turntable clip of this result as a job (progress and Cancel in the Jobs view)."""
        if self.capture_id is None:
            return
        capture_id = self.capture_id

        def done(job: Job) -> None:
            self.ctx.signals.jobs_changed.emit()
            self.ctx.notifier.notify(f"Video job {job.id} queued: see Jobs for progress", "success")

        self.ctx.tasks.run(lambda: self.ctx.services.make_video(capture_id, options), done,
                           lambda e: self.ctx.notifier.error(e, "Could not queue the video"))

    def share(self) -> ShareDialog | None:
        if self.capture_id is None:
            return None
        try:
            link = self.ctx.services.share_link(self.capture_id)
        except Exception as e:
            self.ctx.notifier.error(e, "Cannot share")
            return None
        self.share_dialog = ShareDialog(link, self)
        self.share_dialog.open()
        return self.share_dialog
