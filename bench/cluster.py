"""One machine vs a local two-node Ray cluster, through the job queue (docs/cluster.md).

N small captures (the bundled sample ingested N times: each copy has its own files, so its own
runs) are processed with the same tiny fusion preset three ways:

- local: one worker, each stage in a child process (today's default);
- ray: two workers of the same queue, each stage a Ray task on a two-node cluster on 127.0.0.1;
- ray, node killed: the same, with the second node killed when half the jobs are done.

It prints throughput (jobs per minute), the scheduling overhead per stage (the head's step time
minus the stage's own time from its status.json) and the time lost to the killed node, as a
markdown table for docs/benchmarks.md. Run: ``python bench/cluster.py [--captures 20]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "core")]

from cluster_kit import LocalCluster  # noqa: E402

from core.executor_ray import RayExecutor  # noqa: E402
from core.jobs import JobQueue  # noqa: E402
from core.submit import method_job  # noqa: E402
from core.worker import Worker  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from recon.ingest import ingest  # noqa: E402
from recon.sample.paths import bundled_sample_dir  # noqa: E402

TINY = {"fusion": {"voxel_size_m": 0.012, "frame_step": 2}, "mesh": {"texture_size": 128, "max_views": 8}}


def workspace_with(root: Path, count: int) -> tuple[Workspace, list[str]]:
    ws = Workspace(root)
    return ws, [ingest(bundled_sample_dir(), ws, name=f"sample {i + 1}").id for i in range(count)]


def run_jobs(ws: Workspace, capture_ids: list[str], executor_for: object, workers: int,
             on_half: object = None) -> dict[str, float]:
    queue = JobQueue(ws)
    jobs = [queue.submit(cid, method_job(ws.capture(cid), "fusion", "preview", TINY)).id
            for cid in capture_ids]
    half, fired = len(jobs) // 2, threading.Event()

    def watch() -> None:
        while not fired.is_set():
            if sum(1 for j in jobs if queue.get(j).state == "done") >= half:
                fired.set()
                if on_half is not None:
                    on_half()
            time.sleep(0.5)

    started = time.monotonic()
    threads = [threading.Thread(target=Worker(queue, executor=executor_for(), heartbeat_s=1.0)
                                .run_until_empty) for _ in range(workers)]
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fired.set()
    wall = time.monotonic() - started
    ended = [queue.get(j) for j in jobs]
    overheads = []
    for job in ended:
        for step in job.steps:
            status = json.loads((step.run_dir / "status.json").read_text()) if step.run_dir else {}
            if step.started and step.ended and "ended" in status and not step.reused:
                overheads.append((step.ended - step.started) - (status["ended"] - status["started"]))
    return {"wall_s": wall, "done": sum(1 for j in ended if j.state == "done"), "jobs": len(jobs),
            "per_min": 60 * len(jobs) / wall,
            "overhead_s": statistics.median(overheads) if overheads else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=20)
    args = parser.parse_args()
    rows = []
    with TemporaryDirectory(prefix="bench-cluster-") as tmp:
        ws, ids = workspace_with(Path(tmp) / "local", args.captures)
        rows.append(("one machine, 1 worker, child processes", run_jobs(ws, ids, lambda: None, 1)))
        with LocalCluster(nodes=2) as cluster:
            shared: dict[str, RayExecutor] = {}

            def ray_executor() -> RayExecutor:
                if "ex" not in shared:
                    shared["ex"] = RayExecutor(cluster.address, ws_ray.root)
                return shared["ex"]

            ws_ray, ids = workspace_with(Path(tmp) / "ray", args.captures)
            rows.append(("Ray, 2 nodes on this machine, 2 workers", run_jobs(ws_ray, ids, ray_executor, 2)))
            ws_ray, ids = workspace_with(Path(tmp) / "ray-kill", args.captures)
            shared.clear()
            rows.append(("Ray, 2 nodes, node 2 killed half-way", run_jobs(
                ws_ray, ids, ray_executor, 2, on_half=lambda: cluster.kill_node(1))))
    base = rows[1][1]["wall_s"]
    print(f"\n{args.captures} captures (the bundled sample, tiny fusion preset)\n")
    print("| setup | jobs done | wall s | jobs/min | scheduling overhead per stage, median s "
          "| lost to the kill s |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        lost = f"{r['wall_s'] - base:.1f}" if "killed" in name else ""
        print(f"| {name} | {r['done']}/{r['jobs']} | {r['wall_s']:.1f} | {r['per_min']:.2f} | "
              f"{r['overhead_s']:.2f} | {lost} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
