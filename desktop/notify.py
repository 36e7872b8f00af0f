"""Notifications the user sees: a stack of banners at the top of the window (kept as a history
that tests read), for job results, server problems and import errors."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.errors import ScanBridgeError

COLOURS = {"info": ("#1f3b57", "#cfe6ff"), "success": ("#1e4a2c", "#d4f5dc"),
           "warning": ("#5a4713", "#fff1c9"), "error": ("#5c1f22", "#ffd9dc")}
HIDE_AFTER_MS = {"info": 6000, "success": 8000, "warning": 12000, "error": 0}  # 0: until closed


@dataclass(frozen=True)
class Notice:
    level: str  # info | success | warning | error
    text: str


def error_text(error: BaseException) -> str:
    """One readable line for an error: ours carry their own; others get their type name."""
    if isinstance(error, ScanBridgeError):
        return str(error)
    return f"{type(error).__name__}: {error}"


class _Banner(QWidget):
    def __init__(self, notice: Notice, parent: QWidget) -> None:
        super().__init__(parent)
        bg, fg = COLOURS.get(notice.level, COLOURS["info"])
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setObjectName("banner")
        self.setStyleSheet(f"#banner {{ background: {bg}; border-radius: 6px; }} "
                           f"#banner QLabel {{ color: {fg}; background: transparent; }} "
                           f"#banner QPushButton {{ color: {fg}; background: transparent; border: none; }}")
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 6, 6)
        self.label = QLabel(notice.text)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("×")
        close.setFlat(True)
        close.setFixedWidth(28)
        close.clicked.connect(self.deleteLater)
        row.addWidget(self.label, 1)
        row.addWidget(close)


class Notifier(QWidget):
    """Banners stacked at the top of the main window; ``history`` keeps every notice shown."""

    notified = Signal(object)  # Notice

    def __init__(self, parent: QWidget | None = None, max_visible: int = 4) -> None:
        super().__init__(parent)
        self.history: list[Notice] = []
        self.max_visible = max_visible
        self._box = QVBoxLayout(self)
        self._box.setContentsMargins(8, 4, 8, 0)
        self._box.setSpacing(4)

    def notify(self, text: str, level: str = "info") -> None:
        notice = Notice(level, text)
        self.history.append(notice)
        banner = _Banner(notice, self)
        self._box.addWidget(banner)
        while self._box.count() > self.max_visible:
            old = self._box.takeAt(0).widget()
            if old is not None:
                old.deleteLater()
        if HIDE_AFTER_MS.get(level):
            QTimer.singleShot(HIDE_AFTER_MS[level], banner.deleteLater)
        self.notified.emit(notice)

    def error(self, error: BaseException | str, context: str = "") -> None:
        text = error if isinstance(error, str) else error_text(error)
        self.notify(f"{context}: {text}" if context else text, "error")

    def texts(self, level: str | None = None) -> list[str]:
        return [n.text for n in self.history if level is None or n.level == level]
