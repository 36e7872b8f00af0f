"""``scanbridge jobs`` through core.cli.main, on a real workspace."""

import signal
import subprocess
import sys
import time

import pytest
from stages_for_tests import child_env, count_lines, make_workspace

from core.cli import main
from core.jobs import JobQueue, Step, pid_alive

FIRST, SLOW = "stages_for_tests:FIRST", "stages_for_tests:SLOW"


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANBRIDGE_WORKSPACE", str(tmp_path / "elsewhere"))  # --workspace must win
    return make_workspace(tmp_path / "ws")


def test_list_show_and_run(ws, tmp_path, capsys):
    queue = JobQueue(ws)
    ok = queue.submit("cap", [Step(FIRST, {"counter": str(tmp_path / "first.txt")}), Step(SLOW)])
    bad = queue.submit("cap", [Step(SLOW, {"fail": "too few frames registered"})])

    assert main(["--workspace", str(ws.root), "jobs"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:]}
    assert rows == {str(ok.id): ["queued", "cap"], str(bad.id): ["queued", "cap"]}

    assert main(["jobs", "run", "--workspace", str(ws.root)]) == 1  # one job failed
    captured = capsys.readouterr()
    assert "2 job(s) run" in captured.out and f"{ok.id} done" in captured.out
    assert f"{bad.id} failed" in captured.out
    assert "step 2 slow" in captured.err and "100%" in captured.err  # the progress bars
    assert "too few frames registered" in captured.err
    assert count_lines(tmp_path / "first.txt") == 1

    assert main(["--workspace", str(ws.root), "jobs", "list", "--state", "failed"]) == 0
    out = capsys.readouterr().out
    assert "frames: too few frames registered" in out and "done" not in out

    assert main(["--workspace", str(ws.root), "jobs", "show", str(ok.id)]) == 0
    out = capsys.readouterr().out
    assert f"job {ok.id}: done" in out
    assert "1. done      first" in out and "2. done      slow" in out
    assert "slow finished" in out

    assert main(["--workspace", str(ws.root), "jobs", "show", str(bad.id)]) == 0
    assert "error: frames: too few frames registered" in capsys.readouterr().out


def test_cancel_resume_retry_delete_and_errors(ws, capsys):
    root = str(ws.root)
    job = JobQueue(ws).submit("cap", [Step(FIRST)])
    assert main(["--workspace", root, "jobs", "cancel", str(job.id)]) == 0
    assert f"job {job.id}: cancelled" in capsys.readouterr().out
    assert main(["--workspace", root, "jobs", "cancel", str(job.id)]) == 2
    assert f"error: job {job.id}: cannot cancel a job that is cancelled" in capsys.readouterr().err
    assert main(["--workspace", root, "jobs", "resume", str(job.id)]) == 0
    assert f"job {job.id}: queued" in capsys.readouterr().out
    assert main(["--workspace", root, "jobs", "run"]) == 0
    assert main(["--workspace", root, "jobs", "retry", str(job.id)]) == 0
    assert JobQueue(ws).get(job.id).state == "queued"
    main(["--workspace", root, "jobs", "cancel", str(job.id)])
    assert main(["--workspace", root, "jobs", "delete", str(job.id)]) == 0
    capsys.readouterr()
    assert main(["--workspace", root, "jobs", "show", str(job.id)]) == 2
    assert f"error: job {job.id}: no such job" in capsys.readouterr().err
    assert main(["--workspace", root, "jobs"]) == 0
    assert "no jobs" in capsys.readouterr().out


def test_ctrl_c_in_jobs_run_cancels_the_job_and_stops_its_child(ws, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    queue = JobQueue(ws)
    job = queue.submit("cap", [Step(FIRST), Step(SLOW, {"hold_file": str(hold),
                                                        "counter": str(tmp_path / "slow.txt")})])
    # Ctrl-C reaches the command as it does in a terminal even where this test runs in the
    # background (a shell starts background jobs with SIGINT ignored, and children inherit that).
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "--workspace", str(ws.root), "jobs", "run"],
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not (count_lines(tmp_path / "slow.txt") and queue.get(job.id).child_pid):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        child = queue.get(job.id).child_pid
        proc.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends to the foreground process
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130 and b"interrupted" in err
    ended = queue.get(job.id)
    assert ended.state == "cancelled" and [s.state for s in ended.steps] == ["done", "cancelled"]
    assert not pid_alive(child)


def test_submit_queues_the_method_job_with_the_settings_defaults(ws, capsys):
    from core.settings import Settings, save_settings

    save_settings(ws.settings_path, Settings(default_method="mvs", default_detail="reduced"))
    assert main(["jobs", "submit", "cap", "--workspace", str(ws.root)]) == 0
    assert main(["jobs", "submit", "cap", "--workspace", str(ws.root), "--method", "fusion",
                 "--detail", "preview"]) == 0
    assert "method fusion, detail preview" in capsys.readouterr().out
    defaults, chosen = reversed(JobQueue(ws).list())
    assert [s.stage for s in defaults.steps] == ["plan"] and defaults.state == "queued"
    assert defaults.steps[0].config == {"method": "mvs", "detail": "reduced", "overrides": {}}
    assert chosen.steps[0].config == {"method": "fusion", "detail": "preview", "overrides": {}}
    assert main(["jobs", "submit", "cap", "--workspace", str(ws.root), "--method", "no-such-method"]) != 0
    assert "unknown method 'no-such-method'" in capsys.readouterr().err
