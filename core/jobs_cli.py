"""``scanbridge jobs``: list, show, cancel, resume, retry and delete jobs, or run a worker here."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from core.eta import HISTORY_JOBS, estimate, liveness, typical_durations
from core.jobs import JOB_STATES, Job, JobEvent, JobQueue
from core.workspace import Workspace


def add_jobs_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    # Not parents=[common]: its default (None) would overwrite a --workspace given before "jobs".
    jobs = subparsers.add_parser(
        "jobs", help="list, inspect, cancel, resume and run jobs",
        description="The workspace's job queue. With no action: list the jobs.",
    )
    _workspace_option(jobs)
    _list_options(jobs)
    jobs.set_defaults(func=_list)
    actions = jobs.add_subparsers(dest="action", metavar="ACTION")

    p = actions.add_parser("list", help="jobs, newest first")
    _workspace_option(p)
    _list_options(p)
    p.set_defaults(func=_list)

    p = actions.add_parser("show", help="a job's steps, progress and last log lines")
    _workspace_option(p)
    p.add_argument("job_id", type=int, metavar="ID")
    p.add_argument("--lines", type=int, default=20, metavar="N", help="log lines to show (default 20)")
    p.add_argument("--debug", action="store_true", help="include the stage's raw output lines")
    p.add_argument("--json", action="store_true",
                   help="print the job, its metric and preview events and its log lines as JSON")
    p.set_defaults(func=_show)

    for name, text in (
        ("cancel", "cancel a queued job, or stop a running one"),
        ("resume", "queue a failed or cancelled job again, from its first unfinished step"),
        ("retry", "queue an ended job again from the start (finished runs are reused)"),
        ("delete", "forget a job that is not running"),
    ):
        p = actions.add_parser(name, help=text)
        _workspace_option(p)
        p.add_argument("job_id", type=int, metavar="ID")
        p.set_defaults(func=_change, change=name)

    p = actions.add_parser("submit", help="queue a capture's processing job for a worker (the app's, the "
                           "server's or `jobs run`): the same job `scanbridge process` runs")
    _workspace_option(p)
    p.add_argument("capture_id", metavar="CAPTURE")
    p.add_argument("--method", default=None, help="a registered method (default: the settings' default)")
    p.add_argument("--detail", default=None, help="preview, reduced, medium or full (default: the settings')")
    p.set_defaults(func=_submit)

    p = actions.add_parser("run", help="run queued jobs here until the queue is empty")
    _workspace_option(p)
    p.add_argument("--forever", action="store_true", help="keep waiting for new jobs (Ctrl-C stops)")
    p.set_defaults(func=_run)


def _workspace_option(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a --workspace given before the action is not overwritten by this default.
    parser.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                        help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)")


def _list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", choices=JOB_STATES, default=None, help="only jobs in this state")
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="at most N jobs (default 50)")


def _queue(args: argparse.Namespace) -> JobQueue:
    return JobQueue(Workspace(getattr(args, "workspace", None)))


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def _stage_label(job: Job) -> str:
    index = job.progress.step_index
    if job.state == "queued" or index is None:
        index = job.next_step
    if index is None:
        return f"{len(job.steps)}/{len(job.steps)}"
    step = job.steps[index]
    return f"{index + 1}/{len(job.steps)} {step.name or job.progress.stage or step.stage}"


def _typical(queue: JobQueue) -> dict[str, float]:
    """The stages' typical durations from the latest jobs, as the desktop and the server take them."""
    return typical_durations(queue.list(limit=HISTORY_JOBS))


def _list(args: argparse.Namespace) -> int:
    queue = _queue(args)
    jobs = queue.list(state=args.state, limit=args.limit)
    if not jobs:
        print("no jobs")
        return 0
    typical, now = _typical(queue), time.time()
    print(f"{'ID':>5}  {'STATE':9}  {'CAPTURE':28}  {'STEP':22}  {'DONE':>5}  {'ETA':>7}  "
          f"{'NODE':16}  MESSAGE")
    for job in jobs:
        est = estimate(job, now, typical)
        message = job.error if job.state == "failed" else (liveness(est) or job.progress.message)
        eta = format_eta(est.eta_s) if job.state == "running" else ""
        print(f"{job.id:>5}  {job.state:9}  {job.capture_id[:28]:28}  {_stage_label(job)[:22]:22}  "
              f"{est.fraction:>5.0%}  {eta:>7}  {(job.node or '-')[:16]:16}  {(message or '')[:60]}")
    return 0


def _show(args: argparse.Namespace) -> int:
    queue = _queue(args)
    job = queue.get(args.job_id)
    events = _all_events(queue, job.id)
    lines = [e for e in events if e.kind == "log" and (args.debug or e.level != "debug")]
    lines = lines[-args.lines:] if args.lines > 0 else []
    if args.json:
        print(json.dumps(_show_json(queue, job, events, lines)))
        return 0
    est = estimate(job, time.time(), _typical(queue))
    eta = f", ETA {format_eta(est.eta_s)}" if job.state == "running" else ""
    print(f"job {job.id}: {job.state}, capture {job.capture_id}, {est.fraction:.0%} done{eta}")
    if liveness(est):
        print(f"  {liveness(est)}")
    print(f"  created {_when(job.created)}, started {_when(job.started)}, ended {_when(job.ended)}, "
          f"claimed {job.attempts} time(s)")
    if job.state == "running":
        print(f"  worker pid {job.lease_pid} on {job.lease_host}, stage process {job.child_pid or '-'}"
              + (", cancel requested" if job.cancel_requested else ""))
    if job.error:
        print(f"  error: {job.error}")
    print("steps:")
    for step in job.steps:
        name = step.name or step.stage
        detail = ""
        if step.run_dir is not None:
            detail = f"{step.run_dir}" + (" (reused)" if step.reused else "")
        elif step.state == "running":
            detail = f"{(step.fraction or 0):.0%}  ETA {format_eta(step.eta_s)}  {step.message}"
        node = f" [on {step.node}]" if step.node else ""
        print(f"  {step.index + 1}. {step.state:9} {name:20} {detail}{node}")
    metrics = [e for e in events if e.kind == "metric"]
    if metrics:
        last = metrics[-1]
        print(f"metrics ({len(metrics)} events): [{last.stage}] step {last.step}  "
              + "  ".join(f"{k}={v:.6g}" for k, v in (last.values or {}).items()))
    previews = [e for e in events if e.kind == "preview"]
    if previews:
        print(f"preview ({len(previews)}): {_preview_file(queue, job, previews[-1])}")
    if lines:
        print("log:")
        for e in lines:
            print(f"  {time.strftime('%H:%M:%S', time.localtime(e.time))} {e.level.upper():7} "
                  f"[{e.stage}] {e.message}")
    return 0


def _preview_file(queue: JobQueue, job: Job, event: JobEvent) -> str:
    """A preview's image file (its path is stored relative to the capture folder)."""
    return str(queue.workspace.captures_dir / job.capture_id / event.path)


def _show_json(queue: JobQueue, job: Job, events: list[JobEvent], lines: list[JobEvent]) -> dict[str, Any]:
    return {
        "job": job.to_json(),
        "metrics": [e.to_json() for e in events if e.kind == "metric"],
        "previews": [{**e.to_json(), "file": _preview_file(queue, job, e)} for e in events
                     if e.kind == "preview"],
        "log": [e.to_json() for e in lines],
    }


def _all_events(queue: JobQueue, job_id: int) -> list[JobEvent]:
    events, after = [], 0
    while batch := queue.events(job_id, after):
        events.extend(batch)
        after = batch[-1].id or after
    return events


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _change(args: argparse.Namespace) -> int:
    queue = _queue(args)
    if args.change == "delete":
        queue.delete(args.job_id)
        print(f"job {args.job_id} deleted")
        return 0
    job = getattr(queue, args.change)(args.job_id)
    if args.change == "cancel" and job.state == "running":
        print(f"job {job.id}: cancel requested; its worker is stopping it")
    else:
        print(f"job {job.id}: {job.state}")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from core.settings import load_settings
    from core.submit import default_method_job

    queue = _queue(args)
    capture = queue.workspace.capture(args.capture_id)
    settings = load_settings(queue.workspace.settings_path)
    steps = default_method_job(capture, settings, args.method, args.detail)
    job = queue.submit(capture.id, steps)
    print(f"job {job.id}: {job.state} ({', '.join(s.stage for s in job.steps)}; "
          f"method {steps[-1].config['method']}, detail {steps[-1].config['detail']})")
    return 0


def _run(args: argparse.Namespace) -> int:

    from core.worker import Worker

    queue = _queue(args)
    bars = _ProgressBars()
    queue.add_listener(bars.on_event)
    worker = Worker(queue)
    try:
        jobs = worker.run_for_command(args.forever)
    finally:
        bars.close()
        queue.remove_listener(bars.on_event)
    if not args.forever:
        print(f"{len(jobs)} job(s) run: " + ", ".join(f"{j.id} {j.state}" for j in jobs) if jobs
              else "no queued jobs")
    return 1 if any(j.state == "failed" for j in jobs) else 0


class _ProgressBars:
    """One tqdm bar per running step: stage, percent, the stage's own ETA, last message."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._key: tuple[int, int | None] | None = None

    def on_event(self, event: JobEvent) -> None:
        from tqdm import tqdm

        if event.kind == "state":
            self.close()
            if event.message in ("done", "failed", "cancelled"):
                tqdm.write(f"job {event.job_id} {event.message}", file=sys.stderr)
            return
        if event.kind == "log":
            if event.level in ("warning", "error"):
                tqdm.write(f"{event.level}: [{event.stage}] {event.message}", file=sys.stderr)
            return
        key = (event.job_id, event.step_index)
        if key != self._key:
            self.close()
            self._key = key
            self._bar = tqdm(total=100, file=sys.stderr, leave=True,
                             desc=f"job {event.job_id} step {(event.step_index or 0) + 1} {event.stage}")
        tail = f"ETA {format_eta(event.eta_s)} {event.message[:40]}".replace("{", "{{").replace("}", "}}")
        self._bar.bar_format = "{desc}: {percentage:3.0f}%|{bar}| " + tail
        self._bar.n = round(100 * (event.fraction or 0.0), 1)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._key = None, None
