"""Jobs: the queue with capture name, stage, progress bar, whole-job ETA and log; cancel, retry,
resume, delete. It reads the SQLite queue (off the GUI thread), so it shows the same jobs after a
restart, and it tells the user when a job finishes or fails. The bar and the ETA are for the
whole job (core.eta: steps weighted by their stage's typical duration); a running job that has
been quiet for a while says whether its worker is still alive."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.eta import QUIET_AFTER_S, JobEstimate, estimate, liveness, typical_durations
from core.jobs import Job, JobEvent
from core.jobs_cli import format_eta
from desktop.capture_info import CaptureNames
from desktop.context import AppContext
from desktop.panels.training import TrainingPanel

COLUMNS = ("Job", "Capture", "State", "Stage", "Progress", "ETA", "Message", "Node")
MESSAGE_COLUMN = COLUMNS.index("Message")


def stage_label(job: Job) -> str:
    index = job.progress.step_index
    if job.state == "queued" or index is None:
        index = job.next_step
    if index is None:
        return "all steps done"
    step = job.steps[index]
    return f"{index + 1}/{len(job.steps)} {step.name or job.progress.stage or step.stage}"


class JobsPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None, poll_ms: int = 400) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.jobs: list[Job] = []
        self.names: dict[str, str] = {}  # capture id -> name, for the jobs shown
        self.quiet_after_s = QUIET_AFTER_S
        self._capture_names = CaptureNames(ctx.services.workspace)
        self._typical: dict[str, float] | None = None
        self._states: dict[int, str] | None = None  # None until the first poll (no notices for old jobs)
        self._polling = False
        self._log_job: int | None = None
        self._log_after = 0
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.summary = QLabel()
        bar.addWidget(self.summary, 1)
        self.cancel_button = QPushButton("Cancel")
        self.resume_button = QPushButton("Resume")
        self.retry_button = QPushButton("Retry")
        self.delete_button = QPushButton("Delete")
        for button, action in ((self.cancel_button, "cancel"), (self.resume_button, "resume"),
                               (self.retry_button, "retry"), (self.delete_button, "delete")):
            button.clicked.connect(lambda _=False, a=action: self.act(a))
            bar.addWidget(button)
        layout.addLayout(bar)
        split = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(MESSAGE_COLUMN, QHeaderView.ResizeMode.Stretch)
        for col, width in ((0, 50), (1, 330), (2, 90), (3, 150), (4, 160), (5, 70), (7, 170)):
            self.table.setColumnWidth(col, width)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        split.addWidget(self.table)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setPlaceholderText("Select a job to see its log")
        self.log.setMaximumBlockCount(5000)
        split.addWidget(self.log)
        self.training = TrainingPanel()  # the selected job's PSNR curve and latest preview
        split.addWidget(self.training)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setStretchFactor(2, 2)
        layout.addWidget(split, 1)
        ctx.signals.jobs_changed.connect(self.poll)
        self._timer = QTimer(self, interval=poll_ms)
        self._timer.timeout.connect(self.poll)
        self._timer.start()
        self.poll()

    # -- polling -------------------------------------------------------------------------------

    def poll(self) -> None:
        if self._polling:
            return
        self._polling = True
        log_job, after = self._log_job, self._log_after

        def read() -> tuple[list[Job], list[JobEvent], dict[str, str], dict[str, float]]:
            jobs = self.ctx.services.jobs()
            events = self.ctx.services.job_events(log_job, after) if log_job is not None else []
            names = {cid: self._capture_names.name(cid) for cid in {j.capture_id for j in jobs}}
            return jobs, events, names, typical_durations(jobs)

        self.ctx.tasks.run(read, self._polled, self._poll_failed)

    def _poll_failed(self, error: BaseException) -> None:
        self._polling = False
        self._timer.stop()
        self.ctx.notifier.error(error, "Cannot read the job queue")

    def _polled(self, result: tuple[list[Job], list[JobEvent], dict[str, str], dict[str, float]]) -> None:
        self._polling = False
        jobs, events, self.names, self._typical = result
        self._notify_changes(jobs)
        self.jobs = jobs
        self._fill(jobs)
        self._append_log(events)
        self.ctx.signals.jobs_updated.emit(jobs)

    def _notify_changes(self, jobs: list[Job]) -> None:
        states = {j.id: j.state for j in jobs}
        if self._states is not None:
            for job in jobs:
                before = self._states.get(job.id)
                if before == job.state or before is None and job.state in ("queued", "running"):
                    continue
                if job.state == "done":
                    self.ctx.notifier.notify(f"Job {job.id} finished: {self.capture_name(job)}", "success")
                    self.ctx.signals.captures_changed.emit()
                elif job.state == "failed":
                    self.ctx.notifier.notify(f"Job {job.id} failed: {job.error}", "error")
                elif job.state == "cancelled":
                    self.ctx.notifier.notify(f"Job {job.id} cancelled", "warning")
        self._states = states

    def _fill(self, jobs: list[Job]) -> None:
        selected = self.selected_job_id()
        now = time.time()
        self.table.setRowCount(len(jobs))
        for row, job in enumerate(jobs):
            est = estimate(job, now, self._typical)
            cells = (str(job.id), self.capture_name(job), job.state, stage_label(job), None,
                     format_eta(est.eta_s) if job.state == "running" else "", self._message(job, est),
                     self._node(job))
            for col, text in enumerate(cells):
                if text is None:
                    continue
                item = self.table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(row, col, item)
                item.setText(text)
                item.setData(Qt.ItemDataRole.UserRole, job.id)
            self.table.item(row, 1).setToolTip(job.capture_id)
            bar = self.table.cellWidget(row, 4)
            if not isinstance(bar, QProgressBar):
                bar = QProgressBar()
                bar.setRange(0, 1000)
                self.table.setCellWidget(row, 4, bar)
            bar.setValue(int(est.fraction * 1000))
            bar.setFormat(f"{est.fraction:.0%}")
            if job.id == selected and self.table.currentRow() != row:
                self.table.selectRow(row)
        running = sum(1 for j in jobs if j.state == "running")
        queued = sum(1 for j in jobs if j.state == "queued")
        worker = "worker running" if self.ctx.services.worker_running else "no worker in this app"
        self.summary.setText(f"{running} running · {queued} queued · {len(jobs)} jobs · {worker}")
        self._update_buttons()

    def capture_name(self, job: Job) -> str:
        return self.names.get(job.capture_id, job.capture_id)

    @staticmethod
    def _node(job: Job) -> str:
        """Where the running step is; for an ended job, where its steps ran."""
        if job.node:
            return job.node
        return ", ".join(sorted({s.node for s in job.steps if s.node}))

    def _message(self, job: Job, est: JobEstimate) -> str:
        if job.state == "failed":
            return job.error or ""
        quiet = liveness(est, self.quiet_after_s) if job.state == "running" else ""
        message = job.progress.message or ""
        return f"{quiet} · {message}" if quiet and message else quiet or message

    # -- log -----------------------------------------------------------------------------------

    def _selection_changed(self) -> None:
        job_id = self.selected_job_id()
        if job_id != self._log_job:
            self._log_job, self._log_after = job_id, 0
            self.log.clear()
            self.training.clear()
            self.poll()
        self._update_buttons()

    def _append_log(self, events: list[JobEvent]) -> None:
        lines = []
        last_metric: JobEvent | None = None  # one line per poll, not one per training step
        for e in events:
            if e.job_id != self._log_job:
                continue
            self._log_after = max(self._log_after, e.id or 0)
            if e.kind == "log" and e.level != "debug":
                stamp = time.strftime("%H:%M:%S", time.localtime(e.time))
                lines.append(f"{stamp} {e.level.upper():7s} [{e.stage}] {e.message}")
            elif e.kind == "state":
                lines.append(f"— job is {e.message} —")
            elif e.kind == "metric":
                last_metric = e
            elif e.kind == "preview":
                lines.append(f"preview [{e.stage}] step {e.step}: {e.path}")
        if last_metric is not None:
            values = "  ".join(f"{k}={v:.6g}" for k, v in (last_metric.values or {}).items())
            lines.append(f"[{last_metric.stage}] step {last_metric.step}  {values}")
        if lines:
            self.log.appendPlainText("\n".join(lines))
        job = next((j for j in self.jobs if j.id == self._log_job), None)
        if job is not None:
            self.training.add_events([e for e in events if e.job_id == job.id],
                                     self.ctx.services.workspace.captures_dir / job.capture_id)

    # -- actions -------------------------------------------------------------------------------

    def selected_job_id(self) -> int | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select_job(self, job_id: int) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == job_id:
                self.table.selectRow(row)

    def _update_buttons(self) -> None:
        job = next((j for j in self.jobs if j.id == self.selected_job_id()), None)
        state = job.state if job else None
        self.cancel_button.setEnabled(state in ("queued", "running") and not (job and job.cancel_requested))
        self.resume_button.setEnabled(state in ("failed", "cancelled"))
        self.retry_button.setEnabled(state in ("failed", "cancelled", "done"))
        self.delete_button.setEnabled(state in ("failed", "cancelled", "done", "queued"))

    def act(self, action: str, job_id: int | None = None) -> None:
        job_id = job_id if job_id is not None else self.selected_job_id()
        if job_id is None:
            return
        calls = {"cancel": self.ctx.services.cancel_job, "resume": self.ctx.services.resume_job,
                 "retry": self.ctx.services.retry_job, "delete": self.ctx.services.delete_job}
        self.ctx.tasks.run(lambda: calls[action](job_id), lambda _r: self.poll(),
                           lambda e: self.ctx.notifier.error(e, f"Cannot {action} job {job_id}"))
