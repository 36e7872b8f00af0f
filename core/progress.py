"""Progress, ETA and log events, and cancellation: what every long piece of work reports through.

Events are plain data so they can cross process boundaries as JSON lines and reach the GUI,
the CLI's progress bar and the phone's status endpoint alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from core.errors import Cancelled

LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ProgressEvent:
    kind: str  # "progress" | "log"
    stage: str
    fraction: float | None = None  # 0..1 of the stage
    eta_s: float | None = None
    message: str = ""
    level: str = "info"
    time: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProgressEvent:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


Sink = Callable[[ProgressEvent], None]


def _drop(_: ProgressEvent) -> None:
    pass


class Progress:
    """Reports a stage's fraction done, with an ETA extrapolated from the time since start.

    ``sub(a, b)`` gives a child reporter whose 0..1 maps onto a..b of this one, so a stage can
    split itself into steps without knowing how the caller shows it.
    """

    def __init__(
        self,
        stage: str,
        sink: Sink | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        span: tuple[float, float] = (0.0, 1.0),
        started: float | None = None,
    ) -> None:
        self.stage = stage
        self._sink = sink or _drop
        self._clock = clock
        self._span = span
        self._started = clock() if started is None else started
        self.fraction = 0.0

    def _emit(self, event: ProgressEvent) -> None:
        self._sink(event)

    def update(self, fraction: float, message: str = "") -> None:
        """Report that ``fraction`` (0..1) of this reporter's work is done."""
        f = min(1.0, max(0.0, float(fraction)))
        a, b = self._span
        total = a + (b - a) * f
        self.fraction = total
        elapsed = self._clock() - self._started
        eta = elapsed * (1.0 - total) / total if total > 0.01 and elapsed > 0 else None
        self._emit(ProgressEvent("progress", self.stage, total, eta, message, "info", time.time()))

    def log(self, message: str, level: str = "info") -> None:
        self._emit(ProgressEvent("log", self.stage, None, None, message, level, time.time()))

    def warning(self, message: str) -> None:
        self.log(message, "warning")

    def sub(self, start: float, end: float) -> Progress:
        a, b = self._span
        return Progress(
            self.stage, self._sink, clock=self._clock,
            span=(a + (b - a) * start, a + (b - a) * end), started=self._started,
        )


class CancelToken:
    """Set once to ask work to stop; work calls ``check()`` at safe points."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")
