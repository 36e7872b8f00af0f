"""The Restyle panel: a prompt, an optional reference image and a fidelity slider; a before/after view.

Restyle queues the same job the CLI and the server queue (core.submit.restyle_job: the restyle
stage for a video, restyle-asset + publish for a new AR asset), so the job worker runs it in a
child process; the panel follows its progress from the queue with a timer and Cancel asks the
queue to stop it. Copying the reference image into the capture runs off the GUI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from core.errors import ScanBridgeError
from desktop.tasks import TaskRunner

POLL_MS = 250
VIEW_SIDE = 256
ENDED = ("done", "failed", "cancelled", "interrupted")


class RestylePanel(QWidget):
    """Restyle one capture. ``extra_options``: further restyle options sent with each job."""

    job_ended = Signal(str)  # the job's final state

    def __init__(self, services: Any, tasks: TaskRunner, parent: QWidget | None = None,
                 extra_options: dict[str, Any] | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.tasks = tasks
        self.extra_options = dict(extra_options or {})
        self.capture_id: str | None = None
        self.reference: Path | None = None
        self.job_id: int | None = None
        self.prompt = QLineEdit(placeholderText="the look to give the capture, e.g. 'a bronze statue'")
        self.output = QComboBox()
        self.output.addItem("Video (MP4)", "video")
        self.output.addItem("New AR asset (USDZ)", "asset")
        self.fidelity = QSlider(Qt.Orientation.Horizontal)
        self.fidelity.setRange(0, 100)
        self.fidelity.setValue(70)
        self.fidelity.setToolTip("structure kept: loose (left) .. strict (right)")
        self.reference_label = QLabel("no reference image")
        self.choose_reference = QPushButton("Reference image…")
        self.clear_reference = QPushButton("Clear")
        self.start = QPushButton("Restyle")
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.before = QLabel("before")
        self.after = QLabel("after")
        for view in (self.before, self.after):
            view.setFixedSize(VIEW_SIDE, VIEW_SIDE)
            view.setAlignment(Qt.AlignmentFlag.AlignCenter)

        form = QFormLayout()
        form.addRow("Prompt", self.prompt)
        reference_row = QHBoxLayout()
        for w in (self.reference_label, self.choose_reference, self.clear_reference):
            reference_row.addWidget(w)
        form.addRow("Reference", reference_row)
        form.addRow("Fidelity", self.fidelity)
        form.addRow("Output", self.output)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start)
        buttons.addWidget(self.cancel)
        views = QHBoxLayout()
        views.addWidget(self.before)
        views.addWidget(self.after)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(views)

        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        self.start.clicked.connect(self.restyle)
        self.cancel.clicked.connect(self.cancel_job)
        self.choose_reference.clicked.connect(self._ask_reference)
        self.clear_reference.clicked.connect(lambda: self.set_reference(None))

    # -- inputs --------------------------------------------------------------------------------

    def set_capture(self, capture_id: str) -> None:
        self.capture_id = capture_id
        self.after.clear()
        self.after.setText("after")
        try:
            capture = self.services.capture(capture_id)
            frames = [f for f in capture.load().frames if f.image]
        except ScanBridgeError as e:
            self.status.setText(f"cannot read this capture: {e}")
            return
        if frames:
            self._show(self.before, capture.path(frames[0].image))

    def set_reference(self, path: Path | None) -> None:
        self.reference = Path(path) if path is not None else None
        self.reference_label.setText(self.reference.name if self.reference else "no reference image")

    def _ask_reference(self) -> None:
        images = "Images (*.png *.jpg *.jpeg *.webp)"
        name, _ = QFileDialog.getOpenFileName(self, "Reference image", "", images)
        if name:
            self.set_reference(Path(name))

    # -- the job ---------------------------------------------------------------------------------

    def restyle(self) -> None:
        if self.capture_id is None:
            self.status.setText("choose a capture first")
            return
        prompt = self.prompt.text().strip()
        if not prompt:
            self.status.setText("write a prompt: the look to give the capture")
            return
        capture_id, reference, output = self.capture_id, self.reference, self.output.currentData()
        options = {"prompt": prompt, "fidelity": self.fidelity.value() / 100.0, **self.extra_options}
        self.start.setEnabled(False)
        self.status.setText("queuing…")
        self.tasks.run(lambda: self._submit(capture_id, output, options, reference), self._started,
                       self._failed)

    def _submit(self, capture_id: str, output: str, options: dict[str, Any], reference: Path | None) -> int:
        """On a pool thread: copy the reference into the capture, queue the job; its id."""
        from core.submit import restyle_job
        from generation.restyle.asset_stage import asset_name
        from generation.restyle.stage import store_reference

        capture = self.services.capture(capture_id)
        if reference is not None:
            options = {**options, "image": store_reference(capture, reference)}
        if output == "asset":
            options.setdefault("name", asset_name(options["prompt"]))
        return self.services.submit(capture_id, restyle_job(capture, output, options)).id

    def _started(self, job_id: int) -> None:
        self.job_id = job_id
        self.cancel.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText(f"job {job_id} queued")
        self.timer.start()

    def _failed(self, error: BaseException) -> None:
        self.start.setEnabled(True)
        self.status.setText(f"could not restyle: {error}")

    def cancel_job(self) -> None:
        if self.job_id is not None:
            self.services.cancel_job(self.job_id)
            self.status.setText("cancelling…")

    def _poll(self) -> None:
        if self.job_id is None:
            return
        job = self.services.job(self.job_id)
        self.progress.setValue(int(round(100 * job.progress.overall)))
        if job.progress.message:
            self.status.setText(job.progress.message)
        if job.state not in ENDED:
            return
        self.timer.stop()
        self.start.setEnabled(True)
        self.cancel.setEnabled(False)
        if job.state == "done":
            self.progress.setValue(100)
            after = self._after_image(job)
            if after is not None:
                self._show(self.after, after)
            self.status.setText("done")
        else:
            self.status.setText(f"{job.state}: {job.error or ''}".strip(": "))
        self.job_ended.emit(job.state)

    def _after_image(self, job: Any) -> Path | None:
        """The first restyled frame, or the new asset's poster."""
        for step in job.steps:
            if step.run_dir is None:
                continue
            files = step.result.get("files") if isinstance(step.result, dict) else None
            if step.stage == "restyle":
                frames = sorted((Path(step.run_dir) / "frames").glob("*.png"))
                return frames[0] if frames else None
            if step.stage == "restyle-asset" and isinstance(files, dict) and "poster" in files:
                return Path(step.run_dir) / str(files["poster"])
        return None

    def _show(self, label: QLabel, path: Path) -> None:
        pixmap = QPixmap(str(path))
        if not pixmap.isNull():
            label.setPixmap(pixmap.scaled(VIEW_SIDE, VIEW_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
