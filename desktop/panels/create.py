"""The Create panel: a model from a text prompt or one photo (Shap-E on this computer), queued as a job
with progress and Cancel; when it is done the Result view shows it turning, with Export and Share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.jobs import Job
from desktop.context import AppContext

POLL_MS = 500
DETAILS = ("preview", "reduced", "medium", "full")


class CreatePanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.photo: Path | None = None
        self.job_id: int | None = None
        self.capture_id: str | None = None
        layout = QVBoxLayout(self)
        title = QLabel("Create a model from words or a photo")
        title.setStyleSheet("font-size: 16px; font-weight: 600;")
        layout.addWidget(title)
        form = QFormLayout()
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("a small wooden chair")
        form.addRow("Prompt", self.prompt)
        photo_row = QHBoxLayout()
        self.photo_label = QLabel("no photo")
        self.photo_button = QPushButton("Choose photo…")
        self.photo_button.clicked.connect(self.choose_photo)
        photo_row.addWidget(self.photo_label, 1)
        photo_row.addWidget(self.photo_button)
        form.addRow("or a photo", photo_row)
        self.size = QDoubleSpinBox()
        self.size.setRange(0.01, 10.0)
        self.size.setDecimals(2)
        self.size.setSingleStep(0.05)
        self.size.setValue(0.30)
        self.size.setSuffix(" m tall")
        form.addRow("Size", self.size)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(64)
        form.addRow("Shap-E steps", self.steps)
        self.grid = QSpinBox()
        self.grid.setRange(16, 256)
        self.grid.setValue(128)
        form.addRow("Shape grid", self.grid)
        self.refine = QSpinBox()
        self.refine.setRange(0, 10_000)
        self.refine.setToolTip("score-distillation steps against Stable Diffusion (needs a GPU to be useful)")
        form.addRow("Refine steps", self.refine)
        self.detail = QComboBox()
        self.detail.addItems(DETAILS)
        self.detail.setCurrentText("medium")
        form.addRow("Detail", self.detail)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.create_button = QPushButton("Create")
        self.create_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.create_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.create_button.clicked.connect(self.create)
        self.cancel_button.clicked.connect(self.cancel)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)

    def choose_photo(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Photo of one object", "",
                                              "Photos (*.jpg *.jpeg *.png *.webp)")
        if name:
            self.set_photo(Path(name))

    def set_photo(self, photo: Path | None) -> None:
        self.photo = photo
        self.photo_label.setText(photo.name if photo else "no photo")

    def options(self) -> dict[str, Any]:
        return {"height_m": round(self.size.value(), 4), "steps": self.steps.value(),
                "grid_size": self.grid.value(), "refine_steps": self.refine.value()}

    def create(self) -> None:
        prompt = self.prompt.text().strip()
        if not prompt and self.photo is None:
            self.status.setText("Type a prompt or choose a photo.")
            return
        photo = None if prompt else self.photo
        options, detail = self.options(), self.detail.currentText()
        self.create_button.setEnabled(False)
        self.status.setText("Queueing…")
        self.ctx.tasks.run(lambda: self.ctx.services.create(prompt, photo, options, detail), self._queued,
                           self._failed)

    def _queued(self, queued: tuple[str, Job]) -> None:
        self.capture_id, job = queued
        self.job_id = job.id
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText(f"Job {job.id} queued")
        self.ctx.signals.captures_changed.emit()
        self.ctx.signals.jobs_changed.emit()
        self.timer.start()

    def _failed(self, error: BaseException) -> None:
        self.create_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.timer.stop()
        self.status.setText(f"Could not create: {error}")
        self.ctx.notifier.error(error, "Create failed")

    def cancel(self) -> None:
        if self.job_id is not None:
            job_id = self.job_id
            self.ctx.tasks.run(lambda: self.ctx.services.cancel_job(job_id), lambda job: self._show(job),
                               self._failed)

    def _poll(self) -> None:
        if self.job_id is not None:
            job_id = self.job_id
            self.ctx.tasks.run(lambda: self.ctx.services.job(job_id), self._show, self._failed)

    def _show(self, job: Job) -> None:
        p = job.progress
        done = sum(1 for s in job.steps if s.state == "done")
        overall = (done + (p.fraction or 0.0)) / max(len(job.steps), 1)
        self.progress.setValue(int(100 * min(overall, 1.0)) if job.state != "done" else 100)
        self.status.setText(f"{job.state}: {p.stage or ''} {p.message or ''}".strip())
        if job.state in ("done", "failed", "cancelled"):
            self.timer.stop()
            self.create_button.setEnabled(True)
            self.cancel_button.setEnabled(False)
            if job.state == "failed":
                self.status.setText(f"failed: {job.error}")
            if job.state == "done" and self.capture_id is not None:
                self.ctx.signals.open_result.emit(self.capture_id)
