"""The worker that takes jobs off the queue, and the child process that runs one stage.

``Worker(queue)`` claims a job under a lease, runs its unfinished steps in order (each in a
child process through core.runner), keeps the lease alive with a heartbeat thread that also
notices a cancel request, and records events and the outcome. On start-up it requeues jobs left
running by a dead worker.

``python -m core.worker stage --fd N`` is the child (see core.runner).
``python -m core.worker run --workspace DIR [--forever]`` is a worker process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import capture_status
from core.capture import CaptureFolder
from core.errors import Cancelled, JobError, ScanBridgeError, StageError
from core.executor import Executor, LocalExecutor, StageRequest
from core.jobs import Job, JobEvent, JobQueue, Lease, LeaseLost, Step, describe_error
from core.jobs_events import StepEventSink
from core.jobs_schema import steps_from_json
from core.progress import CancelToken, Sink
from core.runner import Runner
from core.settings import load_settings
from core.stages import NEXT_STEPS, StageOutcome, execute_stage, load_stage
from core.workspace import Workspace

_DEFAULT_STALE_AFTER_S = 30.0


class _Stop:
    """Why a running job's token was cancelled: the user, a shutdown, or a lost lease."""

    def __init__(self) -> None:
        self.token = CancelToken()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.token.cancel()


@dataclass(frozen=True)
class JobRun:
    """How one job ended when a worker ran it: the job, what its steps made, and the error if any."""

    job: Job
    outcomes: list[StageOutcome]
    error: ScanBridgeError | None


class Worker:
    """Runs queued jobs of one queue; several workers (threads or processes) may share it."""

    def __init__(
        self,
        queue: JobQueue,
        runner: Runner | None = None,
        *,
        executor: Executor | None = None,
        heartbeat_s: float = 1.0,
        stale_after_s: float = _DEFAULT_STALE_AFTER_S,
        poll_s: float = 1.0,
        progress_interval_s: float = 0.25,
    ) -> None:
        self.queue = queue
        self.runner = runner or Runner()
        self.executor: Executor = executor or LocalExecutor(self.runner)  # where each step runs
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.poll_s = poll_s
        self.progress_interval_s = progress_interval_s
        self._recovered = False

    def recover(self) -> list[int]:
        """Requeue jobs whose worker died (runs once on start-up, and on every idle poll)."""
        self._recovered = True
        return self.queue.recover(self.stale_after_s)

    def run_next(self, stop_event: threading.Event | None = None) -> Job | None:
        """Claim the oldest queued job and run it to an end; None when nothing is queued."""
        if not self._recovered:
            self.recover()
        lease = self.queue.claim()
        return None if lease is None else self._run(lease, stop_event).job

    def run_job(self, job_id: int) -> JobRun:
        """Claim this queued job and run it to an end; says how it ended and what it made."""
        if not self._recovered:
            self.recover()
        lease = self.queue.claim(job_id=job_id)
        if lease is None:
            raise JobError(f"cannot run a job that is {self.queue.get(job_id).state}", f"job {job_id}")
        return self._run(lease, None)

    def run_until_empty(self) -> list[Job]:
        jobs = []
        while (job := self.run_next()) is not None:
            jobs.append(job)
        return jobs

    def run_forever(self, stop_event: threading.Event) -> None:
        """Run jobs until ``stop_event`` is set; a job running then goes back to the queue."""
        while not stop_event.is_set():
            if self.run_next(stop_event) is None:
                stop_event.wait(self.poll_s)
                if not stop_event.is_set():
                    self.recover()

    def run_for_command(self, forever: bool) -> list[Job]:
        """What `jobs run` and `worker` do: the queued jobs until none is left (the jobs run), or
        ``forever`` until interrupted (no list)."""
        if not forever:
            return self.run_until_empty()
        stop = threading.Event()
        try:
            self.run_forever(stop)
        finally:
            stop.set()
        return []

    # -- one job -------------------------------------------------------------------------------

    def _run(self, lease: Lease, stop_event: threading.Event | None) -> JobRun:
        stop = _Stop()
        beat_done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(lease, stop, stop_event, beat_done),
                                name=f"job-{lease.job_id}-heartbeat", daemon=True)
        beat.start()
        outcomes: list[StageOutcome] = []
        error: ScanBridgeError | None = None
        workspace = self.queue.workspace
        capture_id = self.queue.get(lease.job_id).capture_id
        capture_status.job_started(workspace, capture_id)
        try:
            self._run_steps(lease, stop, outcomes)
            capture_status.job_ended(workspace, capture_id, "done")  # processed before the job reads done
            self.queue.finish_job(lease, "done")
        except LeaseLost as e:
            error = e  # another worker recovered it; it is theirs now
        except Cancelled as e:
            error = e
            self._end_cancelled(lease, stop, e)
        except KeyboardInterrupt:
            self._end_quietly(lease, "cancelled", Cancelled("interrupted"))
            raise
        except ScanBridgeError as e:
            error = e
            self._end_quietly(lease, "failed", e)
        except Exception as e:  # a bug in a stage's caller: still a readable failure
            error = StageError(describe_error(e))
            self._end_quietly(lease, "failed", error)
        finally:
            beat_done.set()
            beat.join()
            job = self.queue.get(lease.job_id)
            if job.ended_state and not isinstance(error, LeaseLost):  # not when requeued or taken over
                capture_status.job_ended(workspace, capture_id, job.state)
        return JobRun(job, outcomes, error)

    def _run_steps(self, lease: Lease, stop: _Stop, outcomes: list[StageOutcome]) -> None:
        job = self.queue.get(lease.job_id)
        capture = self.queue.workspace.capture(job.capture_id)
        inputs: dict[str, Path] = {}
        index = 0
        while index < len(job.steps):
            step, index = job.steps[index], index + 1
            if step.finished:
                outcome = step.outcome()
            else:
                stop.token.check()
                self.queue.start_step(lease, step.index)
                sink = StepEventSink(self.queue, lease.job_id, step.index, self.progress_interval_s)
                request = StageRequest(capture.root, step.stage, step.config, dict(inputs), step.inputs,
                                       self.queue.workspace.settings_path)
                try:
                    outcome = self._execute(request, sink, stop, lease)
                finally:
                    sink.close()
                if stop.reason == "lease lost":
                    raise LeaseLost("lease lost while the step ran", f"job {lease.job_id}")
                expansion = outcome.result.get(NEXT_STEPS)
                next_steps = None if expansion is None else steps_from_json(expansion, step.stage)
                self.queue.finish_step(lease, step.index, outcome, next_steps)
                if next_steps is not None:
                    job = self.queue.get(lease.job_id)
            if NEXT_STEPS not in outcome.result:  # a plan is not data: later runs do not hash it
                inputs[outcome.stage] = outcome.run_dir
            outcomes.append(outcome)

    def _execute(self, request: StageRequest, sink: StepEventSink, stop: _Stop, lease: Lease) -> StageOutcome:
        """Submit one step to the executor, pass its events on, forward a stop, take its result."""
        execution = self.executor.submit(request, lambda handle: self.queue.set_handle(lease, handle))
        try:
            while not execution.done():
                if stop.token.cancelled:
                    execution.cancel()
                for event in execution.events(0.05):
                    sink(event)
        finally:
            if not execution.done():  # leaving early (Ctrl-C): stop it and wait for it
                execution.cancel()
                with contextlib.suppress(BaseException):
                    execution.result()
        for event in execution.events(0):
            sink(event)
        return execution.result()

    def _heartbeat(self, lease: Lease, stop: _Stop, stop_event: threading.Event | None,
                   done: threading.Event) -> None:
        try:
            self._beat(lease, stop, stop_event, done)
        finally:
            self.queue.close()  # this thread's connection

    def _beat(self, lease: Lease, stop: _Stop, stop_event: threading.Event | None,
              done: threading.Event) -> None:
        while not done.wait(self.heartbeat_s):
            try:
                if self.queue.heartbeat(lease):
                    stop.set("cancel")
            except LeaseLost:
                stop.set("lease lost")
                return
            except ScanBridgeError:
                continue  # the database was busy: try again on the next beat
            if stop_event is not None and stop_event.is_set():
                stop.set("shutdown")

    def _end_cancelled(self, lease: Lease, stop: _Stop, error: Cancelled) -> None:
        if stop.reason == "lease lost":
            return
        if stop.reason == "shutdown":
            try:
                self.queue.release(lease)
            except LeaseLost:
                pass
            return
        self._end_quietly(lease, "cancelled", error)

    def _end_quietly(self, lease: Lease, state: str, error: BaseException) -> None:
        try:
            self.queue.finish_job(lease, state, error)
        except LeaseLost:
            pass


def run_job(
    workspace: Workspace,
    capture_id: str,
    steps: Sequence[Step],
    sink: Sink | None = None,
    *,
    runner: Runner | None = None,
) -> list[StageOutcome]:
    """Submit a job and run it here (its stages still in child processes); for the CLI.

    Events go to ``sink``; the stage's error is raised on failure; Ctrl-C cancels the job (it
    can be resumed with ``scanbridge jobs resume``) and raises Cancelled.
    """
    queue = JobQueue(workspace)
    job = queue.submit(capture_id, steps)

    def forward(event: JobEvent) -> None:
        if sink is not None and event.job_id == job.id and event.kind != "state":
            sink(event.to_progress_event())

    queue.add_listener(forward)
    try:
        run = Worker(queue, runner).run_job(job.id)
    except KeyboardInterrupt:
        raise Cancelled(f"interrupted; resume with: scanbridge jobs resume {job.id}") from None
    finally:
        queue.remove_listener(forward)
    if run.job.state != "done":
        raise run.error or JobError(f"job ended {run.job.state}: {run.job.error}", f"job {job.id}")
    return run.outcomes


# -- the child process: run one stage -----------------------------------------------------------


def _watch_parent(parent_pid: int, stop: CancelToken, grace_s: float) -> None:
    """If the worker dies, nobody will read our result: stop, then leave."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    stop.cancel()
    time.sleep(grace_s)
    os._exit(3)


def _stage_child(fd: int) -> int:
    out = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
    lock = threading.Lock()

    def send(record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str)
        with lock:
            try:
                out.write(line + "\n")
                out.flush()
            except OSError:
                pass  # the worker is gone; _watch_parent is stopping us

    token = CancelToken()
    signal.signal(signal.SIGTERM, lambda *_: token.cancel())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    request = json.loads(sys.stdin.read())
    threading.Thread(target=_watch_parent, args=(request["parent_pid"], token, request["grace_s"]),
                     daemon=True).start()
    try:
        spec = load_stage(request["stage"])
        send({"type": "start", "stage": spec.name, "pid": os.getpid()})
        outcome = execute_stage(
            CaptureFolder(Path(request["capture"])), spec, request["config"],
            {k: Path(v) for k, v in request["inputs"].items()},
            sink=lambda e: send({"type": "event", "event": e.to_json()}), cancel=token,
            wiring=request.get("wiring") or {},
            settings=load_settings(Path(request["settings"])) if request.get("settings") else None,
        )
    except BaseException as e:
        send({
            "type": "error", "classes": [c.__name__ for c in type(e).__mro__],
            "reason": getattr(e, "reason", str(e)), "where": getattr(e, "where", None),
            "message": describe_error(e), "traceback": traceback.format_exc(),
        })
        return 1
    send({"type": "result", "stage": outcome.stage, "run_dir": str(outcome.run_dir),
          "result": outcome.result, "reused": outcome.reused})
    return 0


def _worker_process(workspace: str | None, forever: bool, stale_after_s: float) -> int:
    worker = Worker(JobQueue(Workspace(workspace)), stale_after_s=stale_after_s)
    if not forever:
        worker.run_until_empty()
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.run_forever(stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.worker")
    sub = parser.add_subparsers(dest="mode", required=True)
    stage = sub.add_parser("stage", help="(internal) run one stage; the request comes on stdin")
    stage.add_argument("--fd", type=int, required=True, help="pipe to write records to")
    run = sub.add_parser("run", help="a worker: run queued jobs until the queue is empty")
    run.add_argument("--workspace", metavar="DIR", default=None)
    run.add_argument("--forever", action="store_true", help="keep waiting for jobs (SIGTERM stops)")
    run.add_argument("--stale-after", type=float, default=_DEFAULT_STALE_AFTER_S, metavar="S")
    args = parser.parse_args(argv)
    if args.mode == "stage":
        return _stage_child(args.fd)
    return _worker_process(args.workspace, args.forever, args.stale_after)


if __name__ == "__main__":
    sys.exit(main())
