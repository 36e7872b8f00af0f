"""Capture view: the strip of frames with per-frame flags, the coverage picture, a 3D view of the
camera frusta and the sparse or dense points, and "Process" with a method and a detail preset.
It reloads when a job on its capture finishes a step (new poses, points), and "Process" stays
off while a job on the capture is queued or running (a double click queues one job)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.jobs import Job
from desktop import capture_info
from desktop.capture_info import CaptureSummary, FrameInfo
from desktop.context import AppContext
from desktop.panels.coverage import CoverageWidget
from desktop.services import DETAILS, METHODS, MethodChoice
from desktop.thumbnails import load_thumbnail
from desktop.viewer.scene import Scene
from desktop.viewer.widget import ViewerWidget

FRAME_THUMB = QSize(132, 99)
QUEUE_SHOWS_JOB_S = 5.0  # a job queued here is taken as active this long even before a read lists it


@dataclass
class CaptureDetails:
    summary: CaptureSummary
    frames: list[FrameInfo]
    thumbnails: dict[str, object]  # frame id -> QImage
    coverage: np.ndarray
    scene: Scene
    points_source: str
    methods: tuple[MethodChoice, ...] = ()  # the Method menu, with why a method does not apply


def load_details(ctx: AppContext, capture_id: str) -> CaptureDetails:
    """Everything the view shows, read off the GUI thread."""
    capture = ctx.services.capture(capture_id)
    summary = capture_info.summarize(capture)
    frames = capture_info.frame_infos(capture)
    frames = capture_info.frame_infos(capture, capture_info.frame_sharpness(frames))
    thumbs = {f.id: load_thumbnail(f.image, FRAME_THUMB) for f in frames}
    poses = capture_info.camera_poses(capture)
    grid = capture_info.coverage(np.array([c2w for _, c2w, _ in poses]) if poses else np.zeros((0, 4, 4)))
    flagged = {f.id for f in frames if f.blurry}
    scene = Scene(frusta=capture_info.frusta(capture, flagged))
    source = ""
    results = capture_info.result_files(capture)
    points = [r for r in results if r.kind == "points"]
    if points:
        from desktop.geometry_io import load_points

        scene.points.append(load_points(points[0].path, max_points=150_000))
        source = f"{points[0].stage}/{points[0].path.name}"
    methods = tuple(ctx.services.method_choices(capture_id))
    return CaptureDetails(summary, frames, thumbs, grid, scene, source, methods)


def _flag_icon(image: object, frame: FrameInfo) -> QIcon:
    pixmap = QPixmap.fromImage(image)
    painter = QPainter(pixmap)
    badges = []
    if frame.registered is False:
        badges.append(("✗", QColor(220, 70, 70)))
    if frame.blurry:
        badges.append(("≈", QColor(235, 160, 40)))
    for i, (mark, colour) in enumerate(badges):
        painter.setBrush(colour)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(4 + i * 24, 4, 20, 20)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(4 + i * 24, 4, 20, 20, Qt.AlignmentFlag.AlignCenter, mark)
    painter.end()
    return QIcon(pixmap)


def frame_label(frame: FrameInfo) -> str:
    flags = []
    if frame.registered is False:
        flags.append("unregistered")
    if frame.blurry:
        flags.append("blurry")
    return f"{frame.id}\n{', '.join(flags) if flags else 'ok'}"


class CaptureView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.capture_id: str | None = None
        self.details: CaptureDetails | None = None
        self.loads = 0  # details loaded (the first open and every refresh)
        self._submitting = False
        self._active_jobs: list[int] = []  # queued or running jobs on this capture
        self._queued_here: dict[int, float] = {}  # job id -> when queued, until the queue shows it
        self._finished_steps: set[tuple[int, int]] | None = None  # (job, step) seen finished
        layout = QVBoxLayout(self)
        self.title = QLabel("Open a capture from the Library")
        self.title.setStyleSheet("font-size: 16px; font-weight: 600;")
        self.subtitle = QLabel()
        self.subtitle.setStyleSheet("color: #8a93a3;")
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)

        self.strip = QListWidget()
        self.strip.setViewMode(QListView.ViewMode.IconMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setIconSize(FRAME_THUMB)
        self.strip.setGridSize(QSize(FRAME_THUMB.width() + 16, FRAME_THUMB.height() + 44))
        self.strip.setFixedHeight(FRAME_THUMB.height() + 64)
        self.strip.setMovement(QListView.Movement.Static)
        layout.addWidget(self.strip)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.viewer = ViewerWidget(placeholder="No camera poses yet: process the capture")
        split.addWidget(self.viewer)
        side = QWidget()
        side_box = QVBoxLayout(side)
        side_box.setContentsMargins(0, 0, 0, 0)
        cov = QGroupBox("Coverage")
        cov_box = QVBoxLayout(cov)
        self.coverage = CoverageWidget()
        cov_box.addWidget(self.coverage)
        side_box.addWidget(cov, 1)
        proc = QGroupBox("Process")
        proc_box = QVBoxLayout(proc)
        row = QHBoxLayout()
        self.method = QComboBox()
        self.method.addItems(METHODS)
        self.detail = QComboBox()
        self.detail.addItems(DETAILS)
        self.method.setCurrentText(self.ctx.services.process_defaults()[0])
        self.detail.setCurrentText(self.ctx.services.process_defaults()[1])
        row.addWidget(QLabel("Method"))
        row.addWidget(self.method, 1)
        row.addWidget(QLabel("Detail"))
        row.addWidget(self.detail, 1)
        proc_box.addLayout(row)
        self.expected = QLabel()  # what the chosen method takes on this machine at this detail
        self.expected.setWordWrap(True)
        proc_box.addWidget(self.expected)
        self.method.currentTextChanged.connect(self._show_expected)
        self.detail.currentTextChanged.connect(self._show_expected)
        buttons = QHBoxLayout()
        self.process_button = QPushButton("Process")
        self.process_button.setDefault(True)
        self.result_button = QPushButton("View result")
        buttons.addWidget(self.process_button)
        buttons.addWidget(self.result_button)
        proc_box.addLayout(buttons)
        self.complete_button = QPushButton("Complete from this frame")
        self.complete_button.setToolTip("Complete the object from the frame selected in the strip "
                                        "(mcc: one RGB-D frame to a whole model)")
        proc_box.addWidget(self.complete_button)
        side_box.addWidget(proc)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout.addWidget(split, 1)
        self.process_button.clicked.connect(self.process)
        self.complete_button.clicked.connect(self.complete_from_frame)
        self.strip.currentRowChanged.connect(lambda _row: self._update_process_button())
        self.result_button.clicked.connect(
            lambda: self.capture_id and self.ctx.signals.open_result.emit(self.capture_id))
        self.process_button.setEnabled(False)
        self.complete_button.setEnabled(False)
        self.result_button.setEnabled(False)
        ctx.signals.jobs_updated.connect(self.jobs_updated)

    def open(self, capture_id: str) -> None:
        if capture_id != self.capture_id:
            self.capture_id, self.details = capture_id, None
            self._finished_steps, self._active_jobs, self._queued_here = None, [], {}
            self.title.setText(f"Loading {capture_id}…")
        self._reload()

    def _reload(self) -> None:
        capture_id = self.capture_id
        if capture_id is None:
            return
        self.ctx.tasks.run(lambda: load_details(self.ctx, capture_id), self._loaded,
                           lambda e: self.ctx.notifier.error(e, f"Cannot open {capture_id}"))

    def jobs_updated(self, jobs: list[Job]) -> None:
        """The queue as the Jobs view read it: reload when a job on this capture finished a step
        since the last look; "Process" is off while one is queued or running."""
        if self.capture_id is None:
            return
        mine = [j for j in jobs if j.capture_id == self.capture_id]
        listed = {j.id for j in jobs}
        now = time.monotonic()  # a read that began before a job was queued may not list it yet
        self._queued_here = {jid: t for jid, t in self._queued_here.items()
                             if jid not in listed and now - t < QUEUE_SHOWS_JOB_S}
        self._active_jobs = [j.id for j in mine if j.state in ("queued", "running")] + list(self._queued_here)
        finished = {(j.id, s.index) for j in mine for s in j.steps if s.finished}
        if self._finished_steps is not None and finished - self._finished_steps:
            self._reload()
        self._finished_steps = finished
        self._update_process_button()

    def _update_process_button(self) -> None:
        busy = self._submitting or bool(self._active_jobs)
        self.process_button.setEnabled(self.details is not None and not busy)
        self.process_button.setText(f"Processing (job {self._active_jobs[0]})…" if self._active_jobs
                                    else "Queuing…" if self._submitting else "Process")
        mcc = next((m for m in self.details.methods if m.name == "mcc"), None) if self.details else None
        self.complete_button.setEnabled(mcc is not None and mcc.why_not is None and not busy
                                        and self.strip.currentRow() >= 0)
        if mcc is not None and mcc.why_not:
            self.complete_button.setToolTip(f"Not for this capture: {mcc.why_not}")

    def _loaded(self, details: CaptureDetails) -> None:
        if details.summary.id != self.capture_id:
            return
        before = self.details  # on a refresh of the capture on screen, keep the user's view
        self.details = details
        self.loads += 1
        s = details.summary
        self.title.setText(s.name)
        unregistered = sum(1 for f in details.frames if f.registered is False)
        blurry = sum(1 for f in details.frames if f.blurry)
        facts = [f"{s.mode}", f"{s.frame_count} frames", capture_info.human_size(s.size_bytes), s.status,
                 f"scale {s.scale}"]
        if unregistered:
            facts.append(f"{unregistered} unregistered")
        if blurry:
            facts.append(f"{blurry} blurry")
        if details.points_source:
            facts.append(f"points from {details.points_source}")
        self.subtitle.setText(" · ".join(facts))
        if before is not None and before.frames == details.frames \
                and before.points_source == details.points_source \
                and np.array_equal(before.coverage, details.coverage):
            self.result_button.setEnabled(True)
            self._update_process_button()
            return  # a job ended without changing what this view shows: keep it as it is
        self.strip.clear()
        for frame in details.frames:
            item = QListWidgetItem(frame_label(frame))
            item.setIcon(_flag_icon(details.thumbnails[frame.id], frame))
            tips = [frame.id]
            if frame.reason:
                tips.append(f"not registered: {frame.reason}")
            if frame.blurry:
                tips.append("blurry: far less sharp than the capture's median")
            item.setToolTip("\n".join(tips))
            item.setData(Qt.ItemDataRole.UserRole, frame.id)
            self.strip.addItem(item)
        self.coverage.set_grid(details.coverage)
        self.viewer.set_scene(details.scene, reset_camera=before is None)
        for choice in details.methods:
            tip = choice.description + (f"\nNot for this capture: {choice.why_not}" if choice.why_not else "")
            tip += "".join(f"\n{detail}: {line}" for detail, line in choice.expected)
            self.method.setItemData(self.method.findText(choice.name), tip, Qt.ItemDataRole.ToolTipRole)
        self._show_expected()
        self.result_button.setEnabled(True)
        self._update_process_button()

    def _show_expected(self) -> None:
        choice = next((c for c in (self.details.methods if self.details else ())
                       if c.name == self.method.currentText()), None)
        line = choice.expected_at(self.detail.currentText()) if choice is not None else None
        self.expected.setText(f"Expected: {line}" if line else "")
        self.expected.setVisible(bool(line))

    def process(self) -> None:
        self._queue(self.method.currentText(), None)

    def complete_from_frame(self) -> None:
        """Queue the mcc method on the frame selected in the strip (its index in the capture)."""
        row = self.strip.currentRow()
        if row >= 0:
            self._queue("mcc", {"mcc": {"frame": row}}, f"frame {row}")

    def _queue(self, method: str, overrides: dict | None, what: str = "") -> None:
        if self.capture_id is None or self._submitting or self._active_jobs:
            return  # a second click while the first one's job is queued or running
        capture_id, detail = self.capture_id, self.detail.currentText()
        name = self.details.summary.name if self.details else capture_id
        self._submitting = True
        self._update_process_button()

        def done(job: Job) -> None:
            self._submitting = False
            if capture_id == self.capture_id:
                self._active_jobs.append(job.id)
                self._queued_here[job.id] = time.monotonic()
            self._update_process_button()
            self.ctx.notifier.notify(f"Queued job {job.id} for {name} "
                                     f"({', '.join(filter(None, (method, what, detail)))})", "info")
            self.ctx.signals.jobs_changed.emit()

        def failed(error: BaseException) -> None:
            self._submitting = False
            self._update_process_button()
            self.ctx.notifier.error(error, "Cannot process")

        self.ctx.tasks.run(lambda: self.ctx.services.process(capture_id, method, detail, overrides), done,
                           failed)
