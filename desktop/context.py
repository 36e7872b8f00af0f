"""What every panel gets: the services facade, the task runner and the notifier."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from desktop.notify import Notifier
from desktop.services import Services
from desktop.tasks import TaskRunner


class AppSignals(QObject):
    """Cross-panel events (emitted on the GUI thread, or queued to it from server threads)."""

    captures_changed = Signal()
    open_capture = Signal(str)  # capture id
    open_result = Signal(str)  # capture id
    jobs_changed = Signal()  # ask the Jobs view to read the queue now
    jobs_updated = Signal(object)  # list[core.jobs.Job]: the queue as the Jobs view just read it
    server_ready = Signal(str)  # url
    server_failed = Signal(str)
    phone_event = Signal(object)  # capture_server.discovery.PhoneEvent
    live_started = Signal()


@dataclass
class AppContext:
    services: Services
    tasks: TaskRunner
    notifier: Notifier
    signals: AppSignals
