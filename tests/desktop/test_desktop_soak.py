"""Soak: the app stays open with jobs running one after another and a phone streaming live
frames (``scanbridge send --live`` of the real Stray recording, paced to last the soak), and the
GUI never stalls: a 10 ms timer on the GUI thread never waits more than 250 ms, and None keeps
its references (PySide6 6.12.0 lost one per Qt call and the app aborted within minutes).

Duration: SCANBRIDGE_SOAK_S seconds (default 120, a couple of minutes on a shared machine).
The release setting is 20 minutes under Xvfb:

    SCANBRIDGE_SOAK_S=1200 xvfb-run -a .venv/bin/python -m pytest -m slow tests/desktop/test_desktop_soak.py

The 250 ms bound is for a machine that runs nothing else: on 2 cores loaded 6-7x by other work
(load average 12-14), 120 s gave a longest gap of 337 ms (3 gaps over 250 ms among 8,202 ticks),
from CPU starvation and the viewer's software rasteriser holding the GIL; with the live fusion
on a thread of the app instead of a child process the same run stalled 2.2 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from server_test_kit import REPO, STRAY
from test_desktop_responsive import GapMeter

from core.jobs import Step

SOAK_S = float(os.environ.get("SCANBRIDGE_SOAK_S", "120"))
MAX_STALL_MS = 250
RECORDING_S = 7.1  # the Stray recording: 425 frames at 60 Hz
PANELS = ("Jobs", "Live capture", "Library", "Capture", "Devices")


@pytest.mark.slow
@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_the_app_stays_responsive_with_jobs_and_a_live_stream(
        sample_workspace, make_app, qtbot, tmp_path, child_pythonpath):
    (capture,) = sample_workspace.captures()
    app = make_app(sample_workspace, start_server=True, start_worker=True)
    window = app.window
    qtbot.waitUntil(lambda: app.services.server_url is not None, timeout=30000)
    window.open_capture(capture.id)
    qtbot.waitUntil(lambda: window.capture_view.details is not None, timeout=60000)

    def submit() -> int:  # about 8 s of work reporting 4 times a second, in a child process
        config = {"ticks": 32, "tick_s": 0.25, "tag": str(time.time())}
        return app.services.submit(capture.id, [Step("stages_for_tests:SLOW", config)]).id

    jobs = [submit()]
    code = app.services.new_pairing().code
    port = app.services.server_url.rsplit(":", 1)[1]
    speed = max(0.004, RECORDING_S / (SOAK_S * 0.8))  # one stream over most of the soak
    env = {**os.environ, "SCANBRIDGE_CLIENT_DIR": str(tmp_path / "client"), "PYTHONPATH": str(REPO)}
    phone = subprocess.Popen(
        [sys.executable, "-m", "capture_server", "send", str(STRAY), "--live", "--speed", f"{speed:.4f}",
         "--code", code, "--server", f"127.0.0.1:{port}", "--name", "Soak stream"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        # warm-up (imports, first fusion, first job) is not measured
        qtbot.waitUntil(lambda: window.live.updates > 0, timeout=120000)
        qtbot.waitUntil(lambda: app.services.job(jobs[0]).ended_state, timeout=120000)
        stop = threading.Event()

        def keep_jobs_coming() -> None:  # off the GUI thread: only the app's own work is measured
            while not stop.wait(0.5):
                if app.services.job(jobs[-1]).ended_state:
                    jobs.append(submit())

        feeder = threading.Thread(target=keep_jobs_coming, daemon=True)
        meter = GapMeter()
        none_refs = sys.getrefcount(None)
        meter.start()
        feeder.start()
        start = time.monotonic()
        switched = 0
        while time.monotonic() - start < SOAK_S:
            qtbot.wait(3000)
            switched += 1  # a user clicking around
            window.show_panel(PANELS[switched % len(PANELS)])
        meter.stop()
        stop.set()
        feeder.join(30)
        lost = none_refs - sys.getrefcount(None)
    finally:
        if phone.poll() is None:
            phone.kill()
        phone.communicate(timeout=30)
    stalls = sorted(g for g in meter.gaps if g > MAX_STALL_MS)
    done = sum(1 for j in jobs if app.services.job(j).state == "done")
    print(f"soak {SOAK_S:.0f} s: ticks {len(meter.gaps)}, longest gap {max(meter.gaps)} ms, "
          f"jobs done {done}, live updates {window.live.updates}, frames fused {window.live.frames}, "
          f"None refs lost {lost}")
    assert len(meter.gaps) > SOAK_S * 20, "the timer hardly ran"
    assert not stalls, f"GUI stalled {len(stalls)} times over {MAX_STALL_MS} ms: {stalls[-10:]}"
    assert done >= max(2, int(SOAK_S / 20)), f"only {done} jobs finished"
    assert window.live.updates > 5 and window.live.frames > 0
    assert lost < 1000  # references to None must not drain away (holding more is fine)
