"""PySide6 must not drop references to None: 6.12.0 loses one on every Qt call that returns
nothing, and the app aborts ("Fatal Python error: none_dealloc") once the Jobs view's 400 ms
refresh has used them all up. The pinned PySide6 keeps None's count steady."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QProgressBar

CALLS = 1200


def test_qt_calls_that_return_nothing_keep_none_alive(qtbot):
    label, bar, timer = QLabel(), QProgressBar(), QTimer()
    qtbot.addWidget(label)
    qtbot.addWidget(bar)
    calls = (lambda: label.setText("x"), label.update, lambda: bar.setValue(3), timer.stop)
    for call in calls:  # warm up: first calls may cache method wrappers
        call()
    before = sys.getrefcount(None)
    for i in range(CALLS):
        calls[i % len(calls)]()
    lost = before - sys.getrefcount(None)
    # A few references may come and go with the interpreter's own caches; one per call may not.
    assert abs(lost) < CALLS // 20, f"{lost} references to None lost over {CALLS} Qt calls"
