"""The Ray executor: a job's stages as Ray tasks on a cluster (the cluster extra; docs/cluster.md).

The SQLite queue on the head machine stays the one record of truth: a worker there
(``scanbridge worker --ray ADDRESS``) claims jobs as always and submits each step here instead of
to a child process. Each step becomes a Ray task with resource requests from its StageSpec (CPUs,
a GPU, memory), retried by Ray when its worker or node dies (``max_retries``); its events come
back through a small hub actor (core.cluster_node) to the queue. The handle is
``ray:<node>:<task id>``; the queue shows the node.

Storage: with a shared workspace (an NFS/SMB mount at the same path everywhere, checked at
start by a probe file every node must read) stages read and write the capture in place. Without
one (``shared_storage=False``, or detected when a node cannot see the probe) the stage's inputs
are shipped to the node and its run folder shipped back and published here with an atomic
rename, under the same hashed name, so a run done anywhere is reused everywhere. Stages that
work on the capture itself (no artifacts of their own, or never reused: ingest, plan, publish)
then run here, on the head.

Ray has no authentication: the address comes only from the user's settings or ``--ray``, and the
cluster belongs on a private network.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.capture import CaptureFolder
from core.cluster_node import PROBE_PREFIX, EventHub, probe_task, run_stage_task
from core.cluster_ship import pack_capture, publish_run
from core.errors import Cancelled, ConfigError, DependencyError, StageError
from core.executor import LocalExecutor, StageExecution, StageRequest
from core.fsio import atomic_write_text
from core.models import ModelStore
from core.ports import CAPTURE_RAW
from core.progress import ProgressEvent
from core.runner import error_from_record
from core.settings import Settings, load_settings
from core.stages import StageOutcome, StageSpec, is_done, load_stage, make_config, run_dir_for, wired_inputs

RAY_PREFIX = "ray"
INSTALL_HINT = "pip install scanbridge[cluster]"
DEFAULT_MAX_RETRIES = 3
_ADDRESS = re.compile(r"auto|(ray://)?[A-Za-z0-9.\-\[\]:]{1,260}")  # used with fullmatch


def import_ray() -> Any:
    """The ray module, or one clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise DependencyError(f"running on a Ray cluster needs Ray: {INSTALL_HINT}", "ray") from None
    return ray


def check_address(address: str) -> str:
    """``auto`` or ``host:port`` (optionally ``ray://``); anything else is a ConfigError naming it."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address.strip()):
        raise ConfigError(f"expected 'auto' or HOST:PORT, got {address!r}", "cluster address")
    return address.strip()


def ray_handle(node: str, task_id: str) -> str:
    return f"{RAY_PREFIX}:{node}:{task_id}"


def connect(address: str) -> Any:
    """Join the cluster at ``address`` as a driver (nothing is started here); the ray module."""
    address = check_address(address)
    ray = import_ray()
    # Ray would read $RAY_ADDRESS for "auto": the address comes from the user's settings or flag only.
    os.environ.pop("RAY_ADDRESS", None)
    if not ray.is_initialized():
        try:
            ray.init(address=address, namespace="scanbridge", logging_level="WARNING", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"cannot reach the Ray cluster: {e}", address) from None
    return ray


def test_connection(address: str) -> str:
    """Connect to the cluster, describe it in one line, disconnect (Settings' "Test connection")."""
    ray = connect(address)
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = sum(n.get("Resources", {}).get("CPU", 0) for n in nodes)
        gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)
        return f"{len(nodes)} node(s), {cpus:g} CPU(s), {gpus:g} GPU(s)"
    finally:
        ray.shutdown()


class RayExecutor:
    """Runs each stage as a Ray task (see the module docstring). ``close()`` when done."""

    def __init__(self, address: str, workspace_root: Path, *, shared_storage: bool | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES, grace_s: float = 5.0) -> None:
        self.ray = connect(address)
        self.workspace_root = Path(workspace_root)
        self.max_retries = max_retries
        self.grace_s = grace_s
        self.local = LocalExecutor()
        self._hub = self.ray.remote(num_cpus=0)(EventHub).options(
            scheduling_strategy=self._here()).remote()
        self._task = self.ray.remote(run_stage_task)
        self.unseen = self.probe_storage()  # node -> why it cannot see the workspace
        if shared_storage and self.unseen:
            raise ConfigError("the workspace is not shared with every node: " + "; ".join(
                f"{node}: {why}" for node, why in self.unseen.items()), self.workspace_root)
        self.shared = not self.unseen if shared_storage is None else shared_storage

    def _here(self) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return NodeAffinitySchedulingStrategy(self.ray.get_runtime_context().get_node_id(), soft=False)

    def probe_storage(self, probe_name: str | None = None) -> dict[str, str]:
        """Write a probe file into the workspace and have a task on every node read it."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        token = uuid.uuid4().hex
        written = probe_name is None
        probe_name = probe_name or f"{PROBE_PREFIX}{token[:12]}"
        probe = self.workspace_root / probe_name
        if written:
            self.workspace_root.mkdir(parents=True, exist_ok=True)
            atomic_write_text(probe, token)
        try:
            task = self.ray.remote(num_cpus=0)(probe_task)
            refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                    .remote(str(self.workspace_root), probe_name, token)
                    for n in self.ray.nodes() if n.get("Alive")]
            answers = self.ray.get(refs, timeout=120)
        finally:
            if written:
                probe.unlink(missing_ok=True)
        return {a["node"]: a["why"] for a in answers if not a["ok"]}

    def close(self) -> None:
        self.ray.kill(self._hub)

    def runs_on_head(self, spec: StageSpec) -> bool:
        """Without shared storage, a stage that works on the capture itself runs here."""
        return not self.shared and (not spec.writes or not spec.reuse)

    def submit(self, request: StageRequest,
               on_handle: Callable[[str], None] | None = None) -> StageExecution:
        spec = load_stage(request.stage)
        if self.runs_on_head(spec):
            return self.local.submit(request, on_handle)
        settings = load_settings(request.settings_path) if request.settings_path else Settings()
        payload: dict[str, Any] = {
            "stage": request.stage, "config": dict(request.config), "wiring": dict(request.wiring),
            "inputs": {k: str(v) for k, v in request.inputs.items()},
            "capture_root": str(request.capture_root), "capture_id": request.capture_root.name,
            "settings": dataclasses.asdict(settings), "shipped": None,
        }
        target = None
        if not self.shared:
            capture = CaptureFolder(request.capture_root)
            wired = wired_inputs(spec, dict(request.inputs), request.wiring)
            target = run_dir_for(capture, spec, make_config(spec, request.config), wired,
                                 models=ModelStore(settings.model_paths))
            if spec.reuse and is_done(target):  # done here already: the local executor reuses it at once
                return self.local.submit(request, on_handle)
            runs = [*request.inputs.values(), *([target] if spec.resumable and target.is_dir() else [])]
            payload["shipped"] = pack_capture(request.capture_root, runs, CAPTURE_RAW in spec.capture_reads)
        execution_id = uuid.uuid4().hex  # the hub's key for its events; the same across Ray's retries
        ref = self._task.options(**self._resources(spec), max_retries=self.max_retries,
                                 retry_exceptions=False, name=f"stage {spec.name}")
        ref = ref.remote(self._hub, execution_id, payload)
        return _RayExecution(self, ref, execution_id, payload, spec.name, on_handle, target)

    def _resources(self, spec: StageSpec) -> dict[str, Any]:
        """Ray resource requests from the spec, capped to the biggest node so nothing waits forever."""
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        most = {k: max((n.get(k, 0) for n in nodes), default=0) for k in ("CPU", "GPU", "memory")}
        res = spec.resources
        options: dict[str, Any] = {"num_cpus": max(0.0, min(float(res.cpus), most["CPU"]))}
        if res.gpu and most["GPU"] >= 1:
            options["num_gpus"] = 1
            options["max_calls"] = 1  # a fresh process per GPU stage: its GPU memory goes with it
        if res.ram_gb and res.ram_gb * 2**30 <= most["memory"]:
            options["memory"] = int(res.ram_gb * 2**30)
        return options


class _RayExecution:
    def __init__(self, executor: RayExecutor, ref: Any, execution_id: str, payload: dict[str, Any],
                 stage: str, on_handle: Callable[[str], None] | None, target: Path | None) -> None:
        self._ex, self._ref, self._payload, self._stage = executor, ref, payload, stage
        self._on_handle, self._target = on_handle, target
        self._id: str = ref.task_id().hex()
        self._key = execution_id
        self._handle: str | None = None
        self.node: str | None = None
        self.worker_pid: int | None = None
        self.starts = 0  # more than one: Ray retried it after its worker died
        self._cancel_at: float | None = None
        self._result: StageOutcome | None = None

    @property
    def handle(self) -> str | None:
        return self._handle

    def _records(self) -> list[dict[str, Any]]:
        hub = self._ex._hub
        return self._ex.ray.get(hub.take.remote(self._key))

    def events(self, timeout_s: float) -> list[ProgressEvent]:
        if timeout_s > 0:
            self._ex.ray.wait([self._ref], timeout=timeout_s)
        if self._cancel_at is not None and time.monotonic() - self._cancel_at > self._ex.grace_s:
            self._ex.ray.cancel(self._ref, force=True)
        out = []
        for record in self._records():
            if record["type"] == "start":
                self._started(record)
            elif record["type"] == "event":
                out.append(ProgressEvent.from_json(record["event"]))
        return out

    def _started(self, record: dict[str, Any]) -> None:
        self.starts += 1
        self.node, self.worker_pid = record["node"], record["pid"]
        self._handle = ray_handle(self.node, self._id)
        if self._on_handle is not None:
            self._on_handle(self._handle)

    def done(self) -> bool:
        ready, _ = self._ex.ray.wait([self._ref], timeout=0)
        return bool(ready)

    def cancel(self) -> None:
        if self._cancel_at is None:
            self._cancel_at = time.monotonic()
            self._ex._hub.cancel.remote(self._key)

    def result(self) -> StageOutcome:
        if self._result is None:
            self._result = self._take_result()
        return self._result

    def _take_result(self) -> StageOutcome:
        ray = self._ex.ray
        from ray.exceptions import RayError, TaskCancelledError

        try:
            record = ray.get(self._ref)
        except TaskCancelledError:
            raise Cancelled(f"cancelled by the user; stage {self._stage} was stopped") from None
        except RayError as e:
            where = f" on {self.node}" if self.node else ""
            raise StageError(f"stage {self._stage} crashed{where} ({self.starts} attempt(s)): "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        finally:
            self._ex._hub.forget.remote(self._key)
        if record["type"] == "error":
            raise error_from_record(record, self._stage)
        if record["files"] is None:
            return StageOutcome(record["stage"], Path(record["run_dir"]), record["result"] or {},
                                bool(record["reused"]))
        assert self._target is not None
        runs = self._target.parent
        path_map = {node: str(Path(self._payload["inputs"][port])) for node, port in
                    record.get("node_inputs", {}).items()}
        if Path(record["run_dir"]).name != self._target.name:
            raise StageError(f"stage {self._stage} came back as {Path(record['run_dir']).name}, "
                             f"expected {self._target.name}")
        run_dir = publish_run(record["files"], runs, self._target.name, path_map)
        return StageOutcome(record["stage"], run_dir, record["result"] or {}, bool(record["reused"]))
