"""The main window: a sidebar of panels, notification banners floating over them, server state
below."""

from __future__ import annotations

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.context import AppContext
from desktop.panels.capture_view import CaptureView
from desktop.panels.create import CreatePanel
from desktop.panels.devices import DevicesPanel
from desktop.panels.jobs import JobsPanel
from desktop.panels.library import LibraryPanel
from desktop.panels.live import LiveController, LiveFeed, LivePanel
from desktop.panels.restyle import RestylePanel
from desktop.panels.result_view import ResultView
from desktop.panels.settings import SettingsPanel
from desktop.viewer.widget import ViewerWidget

PANELS = ("Library", "Capture", "Result", "Create", "Restyle", "Jobs", "Devices", "Live capture",
          "Settings")
STYLE = """
QMainWindow, QWidget { background: #23262c; color: #e3e6eb; }
QListWidget#nav { background: #1b1d22; border: none; font-size: 14px; padding-top: 8px; }
QListWidget#nav::item { padding: 10px 16px; border-radius: 6px; margin: 2px 8px; }
QListWidget#nav::item:selected { background: #2f6fbd; color: white; }
QGroupBox { border: 1px solid #3a3e47; border-radius: 6px; margin-top: 14px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #aeb6c3; }
QPushButton { background: #343a44; border: 1px solid #454c58; border-radius: 5px; padding: 5px 12px; }
QPushButton:hover { background: #3d4450; }
QPushButton:default { background: #2f6fbd; border-color: #2f6fbd; }
QPushButton:disabled { color: #6c7380; }
QListWidget, QTableWidget, QPlainTextEdit {
    background: #1e2126; border: 1px solid #3a3e47; border-radius: 6px; }
QHeaderView::section { background: #2a2e35; color: #aeb6c3; border: none; padding: 4px; }
QProgressBar { border: 1px solid #3a3e47; border-radius: 4px; text-align: center; background: #1e2126; }
QProgressBar::chunk { background: #2f9e62; border-radius: 3px; }
QComboBox, QSpinBox, QLineEdit {
    background: #1e2126; border: 1px solid #454c58; border-radius: 4px; padding: 3px; }
"""


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext, live_feed: LiveFeed | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.setWindowTitle(f"ScanBridge — {ctx.services.workspace.root}")
        self.setStyleSheet(STYLE)
        self.live_feed = live_feed or LiveFeed(self)
        self.library = LibraryPanel(ctx)
        self.capture_view = CaptureView(ctx)
        self.result_view = ResultView(ctx)
        self.create = CreatePanel(ctx)
        self.jobs = JobsPanel(ctx)
        self.devices = DevicesPanel(ctx)
        self.live = LivePanel(self.live_feed)
        self.live_controller = LiveController(ctx, self.live_feed, self)
        self.settings = SettingsPanel(ctx)
        self.restyle = RestylePanel(ctx.services, ctx.tasks)
        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.setFixedWidth(180)
        self.nav.addItems(PANELS)
        self.stack = QStackedWidget()
        for panel in (self.library, self.capture_view, self.result_view, self.create, self.restyle, self.jobs,
                      self.devices, self.live, self.settings):
            self.stack.addWidget(panel)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.setCurrentRow(0)

        central = QWidget()
        outer = QHBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.nav)
        right = QVBoxLayout()
        right.setContentsMargins(6, 4, 6, 6)
        right.addWidget(self.stack, 1)
        outer.addLayout(right, 1)
        self.setCentralWidget(central)
        ctx.notifier.attach(central)  # banners float over the panels: nothing moves when they come and go
        self.server_status = QLabel("Capture server: starting…")
        self.statusBar().addPermanentWidget(self.server_status)
        self.statusBar().setStyleSheet("color: #aeb6c3;")

        ctx.signals.open_capture.connect(self.open_capture)
        ctx.signals.open_result.connect(self.open_result)
        ctx.signals.live_started.connect(lambda: self.show_panel("Live capture"))
        ctx.signals.server_ready.connect(lambda url: self.server_status.setText(f"Capture server: {url}"))
        ctx.signals.server_failed.connect(self._server_failed)

    def show_panel(self, name: str) -> None:
        self.nav.setCurrentRow(PANELS.index(name))

    def current_panel(self) -> str:
        return PANELS[self.nav.currentRow()]

    def open_capture(self, capture_id: str) -> None:
        self.capture_view.open(capture_id)
        self.restyle.set_capture(capture_id)
        self.show_panel("Capture")

    def open_result(self, capture_id: str) -> None:
        self.result_view.open(capture_id)
        self.show_panel("Result")

    def _server_failed(self, message: str) -> None:
        self.server_status.setText("Capture server: off")
        self.ctx.notifier.notify(f"Capture server: {message}", "error")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self.live_controller.stop()
        self.ctx.tasks.wait(5000)
        for viewer in self.findChildren(ViewerWidget):
            viewer.wait(5000)
        event.accept()


