"""The whole job's share done and ETA are the same in ``scanbridge jobs`` (list and show) and in
the server's job JSON (capture_server.jobs_link, what the phone page shows), and both are the
whole job's (core.eta, as in the desktop's Jobs view), not the step's or equal shares of steps."""

from __future__ import annotations

import re
import time

import pytest

from capture_server.jobs_link import JobLink
from core.capture import Manifest, utc_now
from core.cli import main
from core.jobs import JobQueue, Step
from core.progress import ProgressEvent
from core.stages import StageOutcome
from core.workspace import Workspace

ADDED = ["poses", "mvs", "export", "publish"]


def test_cli_and_server_report_the_same_whole_job_progress(tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    with ws.staged_capture("cap") as cap:
        cap.save(Manifest(id="cap", name="a mug", created=utc_now(), mode="free"))
    queue = JobQueue(ws)
    job = queue.submit("cap", [Step("ingest"), Step("plan", {"method": "auto"})], validate=False)
    lease = queue.claim()
    assert lease is not None
    for index, stage in enumerate(["ingest", "plan"]):
        queue.start_step(lease, index)
        queue.finish_step(lease, index, StageOutcome(stage, tmp_path / stage),
                          [Step(s) for s in ADDED] if stage == "plan" else None)
    queue.start_step(lease, 2)
    queue.finish_step(lease, 2, StageOutcome("poses", tmp_path / "poses"))
    queue.start_step(lease, 3)
    event = ProgressEvent("progress", "mvs", 0.5, 9.0, "depth maps", "info", time.time())
    queue.record_event(job.id, 3, event)

    # By hand, from the default typical seconds: ingest 5 and plan 0.5 done; the plan's steps
    # weigh what a plan stands for (poses 10 + mvs 107 + fusion 20 + mesh 40 + texture 30 +
    # export 3 + publish 1 = 211), of which poses and half of mvs are done: 63.5 of its 121.
    whole = (5.5 + 211 * 63.5 / 121) / (5.5 + 211)
    assert round(100 * whole) == 54  # the step-count share would say 4.5 of 6 steps, 75%

    served = JobLink(ws).latest("cap")
    assert served is not None
    assert served["progress"]["overall"] == pytest.approx(whole)
    assert served["progress"]["step_eta_s"] == 9.0  # the step's own estimate is kept apart
    served_eta = served["progress"]["eta_s"]
    assert served_eta is not None  # the whole job's, from its own pace (fast here)

    assert main(["--workspace", str(ws.root), "jobs"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert re.search(r"\s54%\s", row), row
    minutes, seconds = re.search(r"(\d\d):(\d\d)", row).groups()
    assert int(minutes) * 60 + int(seconds) == pytest.approx(served_eta, abs=2.0)

    assert main(["--workspace", str(ws.root), "jobs", "show", str(job.id)]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "54% done, ETA" in head, head
