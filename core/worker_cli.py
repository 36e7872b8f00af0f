"""``scanbridge worker``: run the workspace's queued jobs here, or their stages on a Ray cluster.

``--ray auto|HOST:PORT`` (or the settings' ``cluster_address``) sends each stage to the cluster
(core.executor_ray); the queue stays in this workspace. Nothing is taken from the environment:
the address is the user's choice, and the cluster belongs on a private network (docs/cluster.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from core.jobs import Job, JobQueue
from core.settings import load_settings
from core.workspace import Workspace


def add_worker_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "worker", parents=[common], help="run queued jobs (here, or their stages on a Ray cluster)",
        description="Claim the workspace's queued jobs and run them. With --ray each stage runs as a "
                    "task on that Ray cluster (pip install scanbridge[cluster]); keep it on a private "
                    "network.",
    )
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="'auto' (a cluster started on this machine) or the head's HOST:PORT "
                        "(default: the settings' cluster_address; none: stages run here)")
    p.add_argument("--local", action="store_true", help="run stages here even if the settings name a cluster")
    p.add_argument("--no-shared-storage", dest="shared", action="store_false", default=None,
                   help="ship each stage's inputs to its node and its run folder back (default: "
                        "shared when every node sees the workspace)")
    p.add_argument("--forever", action="store_true", help="keep waiting for new jobs (Ctrl-C stops)")
    p.set_defaults(func=_run_worker)


def cluster_address(args: argparse.Namespace, queue: JobQueue) -> str | None:
    """The address to use: --ray, else the settings' (none with --local)."""
    if args.local:
        return None
    return args.ray or load_settings(queue.workspace.settings_path).cluster_address or None


def _run_worker(args: argparse.Namespace) -> int:
    from core.worker import Worker

    queue = JobQueue(Workspace(getattr(args, "workspace", None)))
    address = cluster_address(args, queue)
    executor = None
    if address is not None:
        from core.executor_ray import RayExecutor

        executor = RayExecutor(address, queue.workspace.root, shared_storage=args.shared)
        storage = "a shared workspace" if executor.shared else "no shared storage: inputs are shipped"
        print(f"worker: stages run on the Ray cluster at {address} ({storage})", flush=True)
    worker = Worker(queue, executor=executor)
    try:
        jobs = worker.run_for_command(args.forever)
    finally:
        if executor is not None:
            executor.close()
    if not args.forever:
        print(f"{len(jobs)} job(s) run: " + ", ".join(f"{j.id} {j.state} on {_nodes(j)}" for j in jobs)
              if jobs else "no queued jobs")
    return 1 if any(j.state == "failed" for j in jobs) else 0


def _nodes(job: Job) -> str:
    nodes = sorted({s.node for s in job.steps if s.node})
    return ", ".join(nodes) or "-"
