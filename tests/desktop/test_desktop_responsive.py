"""The GUI never blocks: while a job runs in the app's worker and a phone uploads to the app's
server, a 10 ms QTimer on the GUI thread never waits more than 100 ms."""

from __future__ import annotations

import subprocess
import sys
import time

from PySide6.QtCore import QElapsedTimer, QTimer

from core.jobs import Step

UPLOAD_MB = 48
CLIENT = """
import sys
from pathlib import Path
from capture_server.client import ServerSession
url, code, path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
with ServerSession(url) as s:
    s.pair(code, "responsiveness test phone")
    capture = s.create_capture("free", "upload while a job runs")
    upload = s.create_upload(capture["id"], "clip.mp4", path.stat().st_size)
    print(s.upload_file(upload, path), flush=True)
"""


class GapMeter:
    """Records the longest wait between ticks of a 10 ms timer on the GUI thread."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self._tick)
        self.last = 0
        self.gaps: list[int] = []

    def start(self) -> None:
        self.clock.start()
        self.last = 0
        self.timer.start()

    def _tick(self) -> None:
        now = self.clock.elapsed()
        self.gaps.append(now - self.last)
        self.last = now

    def stop(self) -> None:
        self.timer.stop()


def test_no_stall_while_a_job_runs_and_the_server_takes_an_upload(
        sample_workspace, make_app, qtbot, tmp_path, child_pythonpath):
    (capture,) = sample_workspace.captures()
    hold = tmp_path / "hold"
    hold.write_text("x")
    app = make_app(sample_workspace, start_server=True, start_worker=True)
    qtbot.waitUntil(lambda: app.services.server_url is not None, timeout=30000)
    job = app.services.submit(capture.id, [Step("stages_for_tests:SLOW",
                                                {"ticks": 50, "tick_s": 0.01, "hold_file": str(hold)})])
    app.window.show_panel("Jobs")
    qtbot.waitUntil(lambda: app.services.job(job.id).state == "running", timeout=60000)
    payload = tmp_path / "clip.mp4"
    payload.write_bytes(bytes(range(256)) * (UPLOAD_MB * 4096))
    code = app.services.new_pairing().code

    meter = GapMeter()
    meter.start()
    client = subprocess.Popen([sys.executable, "-c", CLIENT, app.services.server_url, code, str(payload)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while client.poll() is None and time.monotonic() < deadline:
        qtbot.wait(20)
    meter.stop()
    out, err = client.communicate(timeout=30)
    assert app.services.job(job.id).state == "running"  # it ran all through the upload
    hold.unlink()
    assert client.returncode == 0, err
    assert int(out.strip()) == payload.stat().st_size
    print(f"ticks {len(meter.gaps)}, longest gap {max(meter.gaps)} ms")
    assert len(meter.gaps) > 20, "the timer hardly ran"
    assert max(meter.gaps) <= 100, f"GUI stalled {max(meter.gaps)} ms (gaps: {sorted(meter.gaps)[-5:]})"
    qtbot.waitUntil(lambda: app.services.job(job.id).state == "done", timeout=60000)
