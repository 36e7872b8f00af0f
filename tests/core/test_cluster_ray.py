"""The job queue's stages on a real local Ray cluster (a head and a second node on 127.0.0.1,
tests/core/cluster_kit.py): a whole `process` job of the bundled sample to a checked USDZ, a
Ray worker killed mid-stage (the job still finishes once, with the same files), no shared
storage (inputs and run folders shipped), and a node that cannot see the workspace."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import threading
import time
import zipfile

import pytest
from cluster_kit import start_or_skip
from stages_for_tests import child_env, make_workspace

from core.executor_ray import RayExecutor
from core.jobs import JobQueue, Step
from core.stages import make_config, run_dir_for
from core.submit import method_job
from core.worker import Worker

pytestmark = pytest.mark.cluster

# Small enough for a busy 2-core machine: coarse voxels, every other frame, a small texture.
TINY = {"fusion": {"voxel_size_m": 0.012, "frame_step": 2}, "mesh": {"texture_size": 128, "max_views": 8}}


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


@pytest.fixture(scope="module")
def cluster():
    c = start_or_skip(nodes=2)
    try:
        yield c
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        c.stop()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from recon.ingest import ingest
    from recon.sample.paths import bundled_sample_dir

    ws_root = tmp_path_factory.mktemp("cluster") / "ws"
    from core.workspace import Workspace

    ws = Workspace(ws_root)
    return ws, ingest(bundled_sample_dir(), ws, name="sample")


@pytest.fixture(scope="module")
def executor(cluster, sample):
    ws, _ = sample
    ex = RayExecutor(cluster.address, ws.root)
    yield ex
    ex.close()


def _exports(capture) -> dict[str, str]:
    """The published files' content hashes; a USDZ by its members (its zip headers hold times)."""
    out = {}
    for path in sorted(capture.exports_dir.iterdir()):
        if path.suffix == ".usdz":
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    out[f"{path.name}:{name}"] = hashlib.sha256(z.read(name)).hexdigest()
        else:
            out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _run(queue, executor, capture, live=None):
    job = queue.submit(capture.id, method_job(capture, "fusion", "preview", TINY))
    if live is not None:
        queue.add_listener(live.append)  # every event as it comes (the queue keeps only the latest progress)
    try:
        return Worker(queue, executor=executor, heartbeat_s=0.5, progress_interval_s=0.2).run_job(job.id)
    finally:
        if live is not None:
            queue.remove_listener(live.append)


@pytest.fixture(scope="module")
def first_run(executor, sample):
    ws, capture = sample
    queue, live = JobQueue(ws), []
    return queue, _run(queue, executor, capture, live), _exports(capture), live


def test_a_process_job_of_the_sample_runs_on_the_cluster_to_a_checked_usdz(first_run, sample, executor):
    from recon.export.check import check_usdz

    _, capture = sample
    queue, run, _, live = first_run
    assert executor.shared and executor.unseen == {}  # both nodes see this machine's workspace
    assert run.job.state == "done", run.job.error
    assert [s.stage for s in run.job.steps] == ["plan", "fusion", "mesh", "export", "publish"]
    report = check_usdz(capture.exports_dir / "model.usdz")
    assert report.passed, (report.errors, report.failed_checks)
    nodes = {s.node for s in run.job.steps}
    assert all(n and "/" in n for n in nodes), nodes  # Ray nodes: host/node-id
    assert any(e.kind == "progress" and e.stage == "mesh" and 0 < (e.fraction or 0) < 1 for e in live)
    assert any(e.kind == "log" and "fusion started in" in e.message for e in queue.events(run.job.id))


def test_a_killed_ray_worker_retries_the_stage_and_the_job_finishes_once(first_run, sample, executor):
    ws, capture = sample
    queue, _, reference, _ = first_run
    shutil.rmtree(capture.runs_dir)  # the same work again, from scratch, into the same hashed folders
    shutil.rmtree(capture.exports_dir)
    killer = _KillOnce(executor, "mesh")
    run = _run(queue, killer, capture)
    assert killer.killed is not None, "the mesh stage was never seen running"
    assert run.job.state == "done", run.job.error
    assert killer.execution.starts == 2  # Ray ran it again on a fresh worker
    states = [e.message for e in queue.events(run.job.id) if e.kind == "state"]
    assert states.count("done") == 1 and "failed" not in states
    assert all(s.runs == 1 for s in run.job.steps)  # the queue started each step once
    assert _exports(capture) == reference  # byte-identical files
    assert not [p for p in capture.runs_dir.iterdir() if p.name.startswith(".")]


class _KillOnce:
    """Wraps the executor: SIGKILLs the Ray worker running ``stage`` once it has started."""

    def __init__(self, inner, stage):
        self.inner, self.stage = inner, stage
        self.killed = None
        self.execution = None

    def submit(self, request, on_handle=None):
        execution = self.inner.submit(request, on_handle)
        if request.stage == self.stage and self.killed is None:
            self.execution = execution
            threading.Thread(target=self._kill_when_started, args=(execution,), daemon=True).start()
        return execution

    def _kill_when_started(self, execution):
        deadline = time.monotonic() + 300
        while execution.worker_pid is None and time.monotonic() < deadline and not execution.done():
            time.sleep(0.05)
        if execution.worker_pid is None:
            return
        time.sleep(1.0)  # mid-stage
        self.killed = execution.worker_pid
        os.kill(execution.worker_pid, signal.SIGKILL)


def test_without_shared_storage_inputs_and_outputs_are_shipped(cluster, tmp_path):
    from stages_for_tests import DENSE, SFM

    ws = make_workspace(tmp_path / "ws")
    capture = ws.capture("cap")
    ex = RayExecutor(cluster.address, ws.root, shared_storage=False)
    try:
        queue = JobQueue(ws)
        job = queue.submit("cap", [Step("stages_for_tests:FIRST"), Step("stages_for_tests:SFM", {"ticks": 2}),
                                   Step("stages_for_tests:DENSE", {"ticks": 2})])
        run = Worker(queue, executor=ex, heartbeat_s=0.5, progress_interval_s=0.0).run_job(job.id)
    finally:
        ex.close()
    assert run.job.state == "done", run.job.error
    first, sfm, dense = run.outcomes
    assert run.job.steps[0].node == socket.gethostname()  # works on the capture itself: on the head
    assert "/" in run.job.steps[1].node and "/" in run.job.steps[2].node  # on Ray nodes
    # published here under the names a local run would have used
    assert sfm.run_dir == run_dir_for(capture, SFM, make_config(SFM, {"ticks": 2}), {})
    wired = {"poses": sfm.run_dir}
    assert dense.run_dir == run_dir_for(capture, DENSE, make_config(DENSE, {"ticks": 2}), wired)
    assert dense.run_dir.is_dir() and (dense.run_dir / "out.txt").read_text() == sfm.run_dir.name
    assert dense.result["inputs"] == {"poses": sfm.run_dir.name}
    again_job = queue.submit("cap", [Step("stages_for_tests:SFM", {"ticks": 2})])
    again = Worker(queue, heartbeat_s=0.5).run_job(again_job.id)
    assert again.outcomes[0].reused  # a run done on a node is reused here


def test_a_node_that_cannot_see_the_workspace_is_named(executor, sample):
    unseen = executor.probe_storage(probe_name=".scanbridge-probe-never-written")
    assert len(unseen) == 2  # both nodes, each by name, each saying why
    assert all("cannot read" in why and ".scanbridge-probe-never-written" in why for why in unseen.values())
