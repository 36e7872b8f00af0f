"""Building and running the app: services, context, main window; the server and the job worker
start in the background and stop when the window closes."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import QApplication

from core.errors import ConfigError
from core.runner import Runner
from core.workspace import Workspace
from desktop.context import AppContext, AppSignals
from desktop.main_window import MainWindow
from desktop.notify import Notifier
from desktop.services import Services
from desktop.tasks import TaskRunner


@dataclass
class DesktopApp:
    """One running app: its window and what it started (``close()`` stops them)."""

    ctx: AppContext
    window: MainWindow

    @property
    def services(self) -> Services:
        return self.ctx.services

    def close(self) -> None:
        self.window.close()
        self.ctx.tasks.wait(10000)
        self.ctx.services.close()


def build_app(
    workspace: Workspace | Path | str | None,
    *,
    start_server: bool = True,
    start_worker: bool = True,
    server_host: str = "0.0.0.0",
    server_port: int | None = None,
    mdns: bool = True,
    mdns_interfaces: list[str] | None = None,
    runner: Runner | None = None,
) -> DesktopApp:
    """The main window over ``workspace`` (needs a QApplication already made)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.clean_stale_staging()
    services = Services(ws, runner=runner)
    signals = AppSignals()
    ctx = AppContext(services, TaskRunner(), Notifier(), signals)
    window = MainWindow(ctx)
    signals.setParent(window)
    ctx.tasks.setParent(window)
    if start_worker:
        services.start_worker()
    if start_server:
        services.start_server(signals.server_ready.emit, signals.server_failed.emit, host=server_host,
                              port=server_port, mdns=mdns, mdns_interfaces=mdns_interfaces,
                              on_phone=signals.phone_event.emit)
    else:
        window.server_status.setText("Capture server: off")
        window.devices.server_off("not started")
    return DesktopApp(ctx, window)


def has_display() -> bool:
    """Whether Qt can open windows here (an X or Wayland display, or a platform set explicitly)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def open_app(workspace: str | None = None, *, host: str = "0.0.0.0", mdns: bool = True) -> DesktopApp:
    """The shown main window over ``workspace`` at its default size, its capture server listening
    on ``host`` and advertised over mDNS when ``mdns`` (needs a QApplication already made)."""
    desktop = build_app(workspace, server_host=host, mdns=mdns)
    desktop.window.resize(1280, 800)
    desktop.window.show()
    return desktop


def run_app(workspace: str | None = None, *, host: str = "0.0.0.0", mdns: bool = True) -> int:
    """``scanbridge app``: show the window until it is closed."""
    if not has_display():
        raise ConfigError("no display to show the app on; run it in a desktop session, or use "
                          "`scanbridge demo` / `scanbridge serve` without one", "DISPLAY")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ScanBridge")
    desktop = open_app(workspace, host=host, mdns=mdns)
    try:
        return app.exec()
    finally:
        desktop.close()
