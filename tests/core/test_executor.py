"""The executor seam: the worker runs steps through an Executor, the queue keeps its opaque
handle, another executor plugs in; run folders are stored relative to the workspace."""

import queue as queue_module
import socket
import sqlite3
import threading

import pytest
from stages_for_tests import child_env, make_workspace

from core.capture import CaptureFolder
from core.executor import LocalExecutor, StageRequest, local_handle, parse_local_handle
from core.jobs import JobQueue, Step
from core.runner import Runner
from core.stages import execute_stage
from core.worker import Worker
from core.workspace import Workspace

FIRST, SLOW, LAST = "stages_for_tests:FIRST", "stages_for_tests:SLOW", "stages_for_tests:LAST"


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


def test_the_queue_keeps_the_local_executors_handle_while_a_step_runs(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    queue = JobQueue(ws)
    hold = tmp_path / "hold"
    hold.touch()
    job = queue.submit("cap", [Step(SLOW, {"hold_file": str(hold), "tick_s": 0.01})])
    worker = Worker(queue, executor=LocalExecutor(Runner()), heartbeat_s=0.05, progress_interval_s=0.0)
    thread = threading.Thread(target=worker.run_job, args=(job.id,))
    thread.start()
    try:
        while queue.get(job.id).handle is None:
            assert thread.is_alive(), queue.get(job.id).error
            thread.join(0.02)
        running = queue.get(job.id)
        assert running.handle == local_handle(running.child_pid, socket.gethostname())
        assert parse_local_handle(running.handle) == (socket.gethostname(), running.child_pid)
    finally:
        hold.unlink()
        thread.join(60)
    ended = queue.get(job.id)
    assert ended.state == "done" and ended.handle is None and ended.child_pid is None
    assert parse_local_handle("cluster:job-17") is None and parse_local_handle("local:host:x") is None


class InlineExecutor:
    """Another executor: runs each stage in a thread of this process (no child)."""

    def __init__(self):
        self.count = 0

    def submit(self, request: StageRequest, on_handle=None):
        self.count += 1
        return _InlineExecution(request, f"inline:{self.count}", on_handle)


class _InlineExecution:
    def __init__(self, request, handle, on_handle):
        self.handle, self._events, self._box = handle, queue_module.Queue(), {}
        if on_handle:
            on_handle(handle)
        self._thread = threading.Thread(target=self._run, args=(request,))
        self._thread.start()

    def _run(self, request):
        try:
            self._box["outcome"] = execute_stage(CaptureFolder(request.capture_root), request.stage,
                                                 request.config, request.inputs, sink=self._events.put,
                                                 wiring=request.wiring)
        except BaseException as e:
            self._box["error"] = e

    def events(self, timeout_s):
        out = []
        while not self._events.empty():
            out.append(self._events.get())
        return out

    def done(self):
        return not self._thread.is_alive()

    def cancel(self):
        pass

    def result(self):
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box["outcome"]


def test_another_executor_runs_the_same_job(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    queue = JobQueue(ws)
    handles = []
    real_set_handle = queue.set_handle
    queue.set_handle = lambda lease, handle: (handles.append(handle), real_set_handle(lease, handle))
    executor = InlineExecutor()
    run = Worker(queue, executor=executor, heartbeat_s=0.05, progress_interval_s=0.0).run_job(
        queue.submit("cap", [Step(FIRST), Step(LAST)]).id)
    assert run.job.state == "done", run.job.error
    assert handles == ["inline:1", "inline:2"]
    assert run.outcomes[1].result["inputs"] == {"first": run.outcomes[0].run_dir.name}
    assert any(e.kind == "progress" and e.step_index == 1 for e in queue.events(run.job.id))


def test_run_folders_are_stored_relative_to_the_workspace(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    queue = JobQueue(ws)
    worker = Worker(queue, heartbeat_s=0.05, progress_interval_s=0.0)
    run = worker.run_job(queue.submit("cap", [Step(FIRST)]).id)
    assert run.job.state == "done"
    stored = sqlite3.connect(ws.jobs_db).execute("SELECT run_dir FROM steps").fetchone()[0]
    assert stored == f"captures/cap/runs/{run.outcomes[0].run_dir.name}"
    queue.close()
    (tmp_path / "ws").rename(tmp_path / "moved")
    moved = JobQueue(Workspace(tmp_path / "moved")).get(run.job.id)
    assert moved.steps[0].run_dir == (tmp_path / "moved").resolve() / stored
    assert moved.steps[0].run_dir.is_dir()
