"""core.runner: one stage in a real child process; errors, crashes and cancel cross back."""

import os
import threading
import time

import pytest
from stages_for_tests import child_env, make_workspace

from core.errors import Cancelled, StageError
from core.jobs import pid_alive
from core.progress import CancelToken
from core.runner import Runner, error_from_record
from core.stages import read_status


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


@pytest.fixture
def capture(tmp_path):
    return make_workspace(tmp_path / "ws").capture("cap")


def test_stage_runs_in_a_child_and_reports_progress_with_eta(capture, tmp_path):
    events, spawned = [], []
    outcome = Runner().run_stage(
        capture.root, "stages_for_tests:SLOW", {"ticks": 5, "tick_s": 0.02, "counter": str(tmp_path / "n")},
        sink=events.append, on_spawn=spawned.append,
    )
    assert outcome.stage == "slow" and not outcome.reused
    assert outcome.run_dir.parent == capture.runs_dir and read_status(outcome.run_dir)["state"] == "done"
    assert outcome.result == {"ticks": 5, "inputs": {}}
    started_pid = int((tmp_path / "n").read_text().split()[1])
    assert spawned == [started_pid] and started_pid != os.getpid()
    progress = [e for e in events if e.kind == "progress"]
    fractions = [e.fraction for e in progress]
    assert fractions[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0]) and fractions[-1] == 1.0
    assert all(e.stage == "slow" for e in events)
    assert any(e.eta_s is not None and e.eta_s > 0 for e in progress[:4])
    assert any("slow finished" in e.message for e in events if e.kind == "log")

    again = Runner().run_stage(capture.root, "stages_for_tests:SLOW",
                               {"ticks": 5, "tick_s": 0.02, "counter": str(tmp_path / "n")})
    assert again.reused and again.run_dir == outcome.run_dir


def test_stage_error_comes_back_as_the_same_class_and_message(capture):
    with pytest.raises(StageError) as info:
        Runner().run_stage(capture.root, "stages_for_tests:SLOW",
                           {"fail": "too few frames registered (2 of 50)"})
    assert type(info.value) is StageError
    assert str(info.value) == "frames: too few frames registered (2 of 50)" and info.value.where == "frames"
    (run_dir,) = capture.runs_dir.iterdir()
    assert read_status(run_dir)["state"] == "failed"


def test_a_bug_in_a_stage_is_a_stage_error_naming_it_and_output_becomes_log_lines(capture):
    events = []
    with pytest.raises(StageError, match="stage buggy failed: ValueError: division by zero in the matcher"):
        Runner().run_stage(capture.root, "stages_for_tests:BUGGY", sink=events.append)
    assert any(e.level == "debug" and "native library chatter" in e.message for e in events)


def test_config_errors_from_the_child_keep_their_class():
    record = {"classes": ["ConfigError", "ScanBridgeError", "Exception"], "reason": "unknown option",
              "where": "slow.colour"}
    err = error_from_record(record, "slow")
    assert type(err).__name__ == "ConfigError" and str(err) == "slow.colour: unknown option"
    subclass = {"classes": ["RegistrationFailed", "StageError", "ScanBridgeError"], "reason": "r",
                "where": None}
    assert type(error_from_record(subclass, "poses")) is StageError


def test_a_child_killed_by_a_signal_is_a_readable_crash(capture):
    with pytest.raises(StageError, match=r"^stage crash crashed: killed by signal 9$"):
        Runner().run_stage(capture.root, "stages_for_tests:CRASH")
    (run_dir,) = capture.runs_dir.iterdir()
    assert read_status(run_dir)["state"] == "running"  # never mistaken for a finished run


def _cancel_when(token, events, predicate):
    def watch():
        while not any(predicate(e) for e in list(events)):
            time.sleep(0.01)
        token.cancel()
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_cancel_reaches_the_child_which_stops_cleanly(capture, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    token, events, spawned = CancelToken(), [], []
    _cancel_when(token, events, lambda e: e.kind == "progress")
    with pytest.raises(Cancelled):
        Runner().run_stage(capture.root, "stages_for_tests:SLOW", {"hold_file": str(hold)},
                           sink=events.append, cancel=token, on_spawn=spawned.append)
    (run_dir,) = capture.runs_dir.iterdir()
    assert read_status(run_dir)["state"] == "cancelled"  # the child ran its own cancel path
    assert not pid_alive(spawned[0])


def test_a_child_that_ignores_cancel_is_killed_after_the_grace_period(capture, tmp_path):
    token, events, spawned = CancelToken(), [], []
    _cancel_when(token, events, lambda e: e.kind == "progress")
    with pytest.raises(Cancelled, match="stage deaf was stopped"):
        Runner(grace_s=0.5).run_stage(capture.root, "stages_for_tests:DEAF", {"ticks": 500, "tick_s": 0.02},
                                      sink=events.append, cancel=token, on_spawn=spawned.append)
    assert not pid_alive(spawned[0])
    (run_dir,) = capture.runs_dir.iterdir()
    assert read_status(run_dir)["state"] == "running"  # killed: not done, will restart clean
