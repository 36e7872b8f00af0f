"""Progress, ETA, log, metric and preview events, and cancellation: what long work reports through.

A metric event is a training step and named finite scalars (``progress.metric(120, loss=0.3)``);
a preview event names a small image file the stage wrote in its own run folder
(``progress.preview(path, step=120)``; core.stages keeps only those inside the run folder).

Events are plain data so they can cross process boundaries as JSON lines and reach the GUI,
the CLI's progress bar and the phone's status endpoint alike.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import Cancelled, ConfigError

LEVELS = ("debug", "info", "warning", "error")
MAX_METRIC_NAMES = 32


@dataclass(frozen=True)
class ProgressEvent:
    kind: str  # "progress" | "log" | "metric" | "preview"
    stage: str
    fraction: float | None = None  # 0..1 of the stage
    eta_s: float | None = None
    message: str = ""
    level: str = "info"
    time: float = 0.0
    step: int | None = None  # metric and preview: the stage's own step (iteration) number
    values: dict[str, float] | None = None  # metric: name -> finite scalar
    path: str = ""  # preview: the image file (relative to the capture folder once recorded)

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

    def metric(self, step: int, values: Mapping[str, float] | None = None, **named: float) -> None:
        """Report named scalars at ``step`` (``metric(100, loss=0.2, psnr=21.5)``).

        A NaN or infinite value (a diverged loss) is left out with a warning, not an error, so a
        long training is not stopped by its own report; a non-number or a bad name is an error.
        """
        finite, dropped = checked_metrics({**(values or {}), **named})
        if dropped:
            self.warning(f"step {step}: not finite, not reported: {', '.join(dropped)}")
        if finite:
            self._emit(ProgressEvent("metric", self.stage, None, None, "", "info", time.time(),
                                     _step(step), finite))

    def preview(self, path: str | Path, step: int | None = None, caption: str = "") -> None:
        """Report a small image the stage wrote in its run folder (a render at ``step``)."""
        self._emit(ProgressEvent("preview", self.stage, None, None, caption, "info", time.time(),
                                 None if step is None else _step(step), None, str(path)))

    def sub(self, start: float, end: float) -> Progress:
        a, b = self._span
        return Progress(
            self.stage, self._sink, clock=self._clock,
            span=(a + (b - a) * start, a + (b - a) * end), started=self._started,
        )


def _step(step: int) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < 2**62:
        raise ConfigError(f"a metric step must be a non-negative integer, got {step!r}", "metric.step")
    return step


def checked_metrics(values: Mapping[str, float]) -> tuple[dict[str, float], list[str]]:
    """The finite named scalars, and the names whose value was NaN, infinite or too large;
    a non-number or a bad name is an error naming it."""
    if not values or len(values) > MAX_METRIC_NAMES:
        raise ConfigError(f"expected 1..{MAX_METRIC_NAMES} named scalars, got {len(values)}", "metric")
    out: dict[str, float] = {}
    dropped = []
    for name, value in values.items():
        if not isinstance(name, str) or not name or len(name) > 64:
            raise ConfigError(f"a metric name must be a short string, got {name!r}", "metric")
        if isinstance(value, bool | str | bytes):
            raise ConfigError(f"expected a number, got {value!r}", f"metric.{name}")
        try:  # numpy and 1-element torch scalars convert too
            number = float(value)
        except OverflowError:
            number = math.inf
        except (TypeError, ValueError):
            raise ConfigError(f"expected a number, got {value!r}", f"metric.{name}") from None
        if math.isfinite(number):
            out[name] = number
        else:
            dropped.append(name)
    return out, dropped


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
