"""Work off the GUI thread: callables on a thread pool whose results come back as Qt signals."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from shiboken6 import isValid


class _Relay(QObject):
    """Lives in the GUI thread; signals emitted from a pool thread are queued to it."""

    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay
        self.setAutoDelete(True)

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as e:  # every error reaches the GUI as a notification
            e.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self._emit(self.relay.failed, e)
            return
        self._emit(self.relay.done, result)

    def _emit(self, signal: Any, value: Any) -> None:
        if not isValid(self.relay):
            return  # the app closed while this ran: nobody is left to tell
        try:
            signal.emit(value)
        except RuntimeError:  # deleted between the check and the emit
            pass


class TaskRunner(QObject):
    """``run(fn, on_done, on_error)``: fn runs on a pool thread, the callbacks on the GUI thread."""

    busy_changed = Signal(int)

    def __init__(self, parent: QObject | None = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._relays: set[_Relay] = set()

    @property
    def pending(self) -> int:
        return len(self._relays)

    def run(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
            on_error: Callable[[BaseException], None] | None = None) -> None:
        relay = _Relay()
        self._relays.add(relay)

        def finish(value: Any, callback: Callable[[Any], None] | None) -> None:
            self._relays.discard(relay)
            relay.deleteLater()
            if not isValid(self):  # the window (and this runner) went away while the task ran
                return
            self.busy_changed.emit(len(self._relays))
            if callback is not None:
                callback(value)

        relay.done.connect(lambda value: finish(value, on_done))
        relay.failed.connect(lambda error: finish(error, on_error))
        self.busy_changed.emit(len(self._relays))
        self.pool.start(_Job(fn, relay))

    def wait(self, timeout_ms: int = 30000) -> bool:
        return self.pool.waitForDone(timeout_ms)
