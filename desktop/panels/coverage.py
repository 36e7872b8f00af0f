"""The coverage picture: azimuth sectors (around) by elevation bands (rings, horizon outside,
top-down view in the middle), each shaded by how many views look from there, with a word-wrapped
summary under it (never cut, however narrow the side panel)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from desktop.capture_info import AZIMUTH_SECTORS, ELEVATION_BANDS, coverage_fraction

EMPTY = QColor(58, 62, 70)
FULL = QColor(72, 190, 120)


def _shade(count: int, most: int) -> QColor:
    if count <= 0:
        return EMPTY
    t = 0.35 + 0.65 * min(1.0, count / max(most, 1))
    return QColor(int(EMPTY.red() + (FULL.red() - EMPTY.red()) * t),
                  int(EMPTY.green() + (FULL.green() - EMPTY.green()) * t),
                  int(EMPTY.blue() + (FULL.blue() - EMPTY.blue()) * t))


def coverage_text(grid: np.ndarray) -> str:
    below = int(grid[[b for b in range(grid.shape[0]) if ELEVATION_BANDS[b] < 0.0]].sum())
    text = f"{coverage_fraction(grid):.0%} of directions covered · {int(grid.sum())} views"
    return text + (f" · {below} from below" if below else "")


class CoverageWidget(QWidget):
    """The rings and, under them, the summary line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.rings = CoverageRings()
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setStyleSheet("color: #969ba5;")
        box.addWidget(self.rings, 1)
        box.addWidget(self.label)
        self.set_grid(self.rings.grid)

    @property
    def grid(self) -> np.ndarray:
        return self.rings.grid

    def set_grid(self, grid: np.ndarray) -> None:
        self.rings.set_grid(grid)
        self.label.setText(coverage_text(self.rings.grid))


class CoverageRings(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = np.zeros((len(ELEVATION_BANDS) - 1, AZIMUTH_SECTORS), np.int64)
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

    def set_grid(self, grid: np.ndarray) -> None:
        self.grid = np.asarray(grid)
        self.update()

    def paintEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(34, 37, 43))
        side = min(self.width(), self.height()) - 16
        cx, cy = self.width() / 2, 8 + side / 2
        bands = self.grid.shape[0]
        # Only bands at or above the horizon are drawn as rings; the outermost ring is the horizon.
        rings = [b for b in range(bands) if ELEVATION_BANDS[b] >= 0.0]
        most = int(self.grid.max()) if self.grid.size else 0
        step = (side / 2) / max(len(rings), 1)
        for ring_index, band in enumerate(rings):  # outermost ring: the horizon band
            outer = side / 2 - ring_index * step
            inner = outer - step
            for sector in range(self.grid.shape[1]):
                a0 = 360.0 * sector / self.grid.shape[1]
                span = 360.0 / self.grid.shape[1]
                path = QPainterPath()
                path.arcMoveTo(QRectF(cx - outer, cy - outer, 2 * outer, 2 * outer), a0)
                path.arcTo(QRectF(cx - outer, cy - outer, 2 * outer, 2 * outer), a0, span)
                if inner > 0:
                    path.arcTo(QRectF(cx - inner, cy - inner, 2 * inner, 2 * inner), a0 + span, -span)
                else:
                    path.lineTo(QPointF(cx, cy))
                path.closeSubpath()
                p.setPen(QPen(QColor(28, 30, 35), 1.5))
                p.setBrush(_shade(int(self.grid[band, sector]), most))
                p.drawPath(path)
        p.end()
