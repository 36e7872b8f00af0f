"""Training of the selected job, as it happens: the PSNR curve from the job's metric events and
the latest preview render a stage wrote into its run folder (neural stages report both)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from core.jobs import JobEvent

CURVE_METRIC = "psnr"
PREVIEW_SIZE = 192  # pixels, the longer side the preview is shown at


class PsnrCurve(QWidget):
    """A line chart of (step, value) points with the value range written at the left."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: list[tuple[int, float]] = []
        self.setMinimumSize(220, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_points(self, points: list[tuple[int, float]]) -> None:
        self.points = points
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), self.palette().base())
            if not self.points:
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No PSNR reported yet")
                return
            steps = [s for s, _ in self.points]
            values = [v for _, v in self.points]
            lo, hi = min(values), max(values)
            if hi - lo < 1e-6:
                lo, hi = lo - 0.5, hi + 0.5
            first, last = min(steps), max(steps)
            span = max(1, last - first)
            left, top, right, bottom = 48.0, 8.0, self.width() - 8.0, self.height() - 20.0
            painter.drawText(QPointF(4, top + 10), f"{hi:.1f}")
            painter.drawText(QPointF(4, bottom), f"{lo:.1f}")
            painter.drawText(QPointF(left, self.height() - 4), f"step {first}")
            painter.drawText(QPointF(right - 70, self.height() - 4), f"step {last}")
            painter.setPen(QPen(QColor(120, 120, 120), 1))
            painter.drawLine(QPointF(left, bottom), QPointF(right, bottom))
            painter.drawLine(QPointF(left, top), QPointF(left, bottom))
            line = QPolygonF([QPointF(left + (right - left) * (s - first) / span,
                                      bottom - (bottom - top) * (v - lo) / (hi - lo))
                              for s, v in self.points])
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor(30, 120, 220), 2))
            painter.drawPolyline(line)
        finally:
            painter.end()


class TrainingPanel(QWidget):
    """Fed the selected job's events (``add_events``); ``clear`` when another job is selected."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stage: str | None = None  # the stage whose curve is shown (the latest to report one)
        self.points: list[tuple[int, float]] = []
        self.preview_step: int | None = None
        self.preview_file: Path | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel()
        layout.addWidget(self.title)
        row = QHBoxLayout()
        self.curve = PsnrCurve()
        row.addWidget(self.curve, 1)
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row.addWidget(self.preview)
        layout.addLayout(row, 1)
        self.clear()

    def clear(self) -> None:
        self.stage, self.points, self.preview_step, self.preview_file = None, [], None, None
        self.curve.set_points([])
        self.preview.clear()
        self.preview.setText("No preview")
        self._update_title()

    def add_events(self, events: Iterable[JobEvent], capture_dir: Path) -> None:
        """Take the metric and preview events among ``events`` (oldest first). Preview paths are
        relative to ``capture_dir``; one that resolves outside it is not shown."""
        changed = False
        for e in events:
            if e.kind == "metric" and e.values and CURVE_METRIC in e.values and e.step is not None:
                value = float(e.values[CURVE_METRIC])
                if not math.isfinite(value):
                    continue
                if e.stage != self.stage:  # a later stage's training starts its own curve
                    self.stage, self.points = e.stage, []
                if self.points and e.step <= self.points[-1][0]:  # a resumed attempt reports again
                    self.points = [p for p in self.points if p[0] < e.step]
                self.points.append((e.step, value))
                changed = True
            elif e.kind == "preview" and e.path:
                self._show_preview(e, capture_dir)
        if changed:
            self.curve.set_points(list(self.points))
            self._update_title()

    def _show_preview(self, event: JobEvent, capture_dir: Path) -> None:
        root = capture_dir.resolve()
        path = (root / str(event.path)).resolve()
        if not path.is_relative_to(root):
            return
        pixmap = QPixmap(str(path))
        if pixmap.isNull():
            return
        self.preview.setPixmap(pixmap.scaled(PREVIEW_SIZE, PREVIEW_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation))
        self.preview.setToolTip(f"[{event.stage}] step {event.step}: {event.path}")
        self.preview_step, self.preview_file = event.step, path
        self._update_title()

    def _update_title(self) -> None:
        if not self.points and self.preview_step is None:
            self.title.setText("Training: nothing reported for this job")
            return
        parts = [f"Training [{self.stage}]" if self.stage else "Training"]
        if self.points:
            step, value = self.points[-1]
            parts.append(f"step {step}, PSNR {value:.2f} dB")
        if self.preview_step is not None:
            parts.append(f"preview at step {self.preview_step}")
        self.title.setText(" · ".join(parts))
