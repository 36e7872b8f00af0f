"""Notifications the user sees: a stack of banners floating over the bottom right of the window
(kept as a history that tests read), for job results, server problems and import errors. They
overlay the panels instead of taking layout space, so nothing moves under the mouse when one
appears or vanishes."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.errors import ScanBridgeError

COLOURS = {"info": ("#1f3b57", "#cfe6ff"), "success": ("#1e4a2c", "#d4f5dc"),
           "warning": ("#5a4713", "#fff1c9"), "error": ("#5c1f22", "#ffd9dc")}
HIDE_AFTER_MS = {"info": 6000, "success": 8000, "warning": 12000, "error": 0}  # 0: until closed
OVERLAY_WIDTH = 520  # px at most; narrower hosts get their width less the margins
OVERLAY_MARGIN = 12


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
    closed = Signal()

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
        close.clicked.connect(self.closed.emit)
        row.addWidget(self.label, 1)
        row.addWidget(close)


class Notifier(QWidget):
    """Banners stacked over the bottom right of ``attach``'s host widget (newest at the bottom);
    ``history`` keeps every notice shown."""

    notified = Signal(object)  # Notice

    def __init__(self, parent: QWidget | None = None, max_visible: int = 4) -> None:
        super().__init__(parent)
        self.history: list[Notice] = []
        self.max_visible = max_visible
        self._host: QWidget | None = None
        self._box = QVBoxLayout(self)
        self._box.setContentsMargins(0, 0, 0, 0)
        self._box.setSpacing(6)
        self.hide()

    def attach(self, host: QWidget) -> None:
        """Float over ``host`` (following its size) instead of sitting in a layout."""
        self._host = host
        self.setParent(host)
        host.installEventFilter(self)
        self._place()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if watched is self._host and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        banners = [self._box.itemAt(i).widget() for i in range(self._box.count())]
        if self._host is None or not banners:
            self.hide()
            return
        width = min(OVERLAY_WIDTH, self._host.width() - 2 * OVERLAY_MARGIN)
        self.setFixedWidth(max(width, 1))
        box = self._box
        height = box.heightForWidth(width) if box.hasHeightForWidth() else box.sizeHint().height()
        height = min(height, self._host.height() - 2 * OVERLAY_MARGIN)
        self.setGeometry(self._host.width() - width - OVERLAY_MARGIN,
                         self._host.height() - height - OVERLAY_MARGIN, width, max(height, 1))
        self.show()
        self.raise_()

    def _remove(self, banner: QWidget) -> None:
        self._box.removeWidget(banner)
        banner.hide()
        banner.deleteLater()
        self._place()

    def notify(self, text: str, level: str = "info") -> None:
        notice = Notice(level, text)
        self.history.append(notice)
        banner = _Banner(notice, self)
        banner.closed.connect(lambda: self._remove(banner))
        self._box.addWidget(banner)
        while self._box.count() > self.max_visible:
            old = self._box.itemAt(0).widget()
            if old is not None:
                self._remove(old)
        if HIDE_AFTER_MS.get(level):
            QTimer.singleShot(HIDE_AFTER_MS[level], banner, lambda: self._remove(banner))
        self._place()
        self.notified.emit(notice)

    def clear(self) -> None:
        """Take every banner off the screen (the history stays)."""
        for banner in self.banners():
            self._remove(banner)

    def banners(self) -> list[QWidget]:
        """The banners on screen now, oldest first."""
        return [self._box.itemAt(i).widget() for i in range(self._box.count())]

    def error(self, error: BaseException | str, context: str = "") -> None:
        text = error if isinstance(error, str) else error_text(error)
        self.notify(f"{context}: {text}" if context else text, "error")

    def texts(self, level: str | None = None) -> list[str]:
        return [n.text for n in self.history if level is None or n.level == level]
