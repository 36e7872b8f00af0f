"""What runs on a Ray node for core.executor_ray: the event hub actor and the stage task.

Neither imports Ray at module level: the executor wraps them with ``ray.remote`` when it starts,
so this module loads (and its pieces are testable) without the cluster extra.

The stage task runs ``execute_stage`` inside the Ray worker process itself, so killing that
process stops the stage at once (no orphan child keeps writing beside a retry); Ray then
retries the task on a fresh worker, and the run starts clean in its hashed folder (or resumes
from its checkpoints, for a resumable stage). Its events go to the hub in batches; each batch's
answer says whether the head asked it to stop.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

from core.capture import CaptureFolder
from core.cluster_ship import ShippedFile, pack_tree, unpack
from core.errors import ConfigError
from core.jobs_schema import describe_error
from core.progress import CancelToken, ProgressEvent
from core.settings import Settings
from core.stages import execute_stage

FLUSH_S = 0.1  # how often a running stage's events go to the head
PROBE_PREFIX = ".scanbridge-probe-"


class EventHub:
    """One small actor on the head: stage tasks push event records; the head takes them."""

    def __init__(self) -> None:
        self._records: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._cancelled: set[str] = set()

    def push(self, execution_id: str, records: list[dict[str, Any]]) -> bool:
        self._records[execution_id].extend(records)
        return execution_id in self._cancelled

    def take(self, execution_id: str) -> list[dict[str, Any]]:
        return self._records.pop(execution_id, [])

    def cancel(self, execution_id: str) -> None:
        self._cancelled.add(execution_id)

    def forget(self, execution_id: str) -> None:
        self._records.pop(execution_id, None)
        self._cancelled.discard(execution_id)


def node_label() -> str:
    """This node as the queue shows it: host name and the start of Ray's node id."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"


class _Sender:
    """Buffers a stage's records and pushes them to the hub every FLUSH_S (and at the end)."""

    def __init__(self, hub: Any, execution_id: str, token: CancelToken) -> None:
        self.hub, self.execution_id, self.token = hub, execution_id, token
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def put(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._buffer.append(record)

    def flush(self) -> None:
        import ray

        with self._lock:
            batch, self._buffer = self._buffer, []
        if ray.get(self.hub.push.remote(self.execution_id, batch)):
            self.token.cancel()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self.flush()

    def __enter__(self) -> _Sender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()


def run_stage_task(hub: Any, execution_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The Ray task: run one stage here; a result record, or an error record (never raises)."""
    token = CancelToken()
    with _Sender(hub, execution_id, token) as sender:
        sender.put({"type": "start", "node": node_label(), "pid": os.getpid()})
        scratch = None
        try:
            if payload["shipped"] is not None:
                scratch = Path(tempfile.mkdtemp(prefix="scanbridge-stage-"))
                root = scratch / payload["capture_id"]
                unpack(payload["shipped"], root, f"capture {payload['capture_id']}")
                inputs = {k: root / "runs" / Path(v).name for k, v in payload["inputs"].items()}
            else:
                root = Path(payload["capture_root"])
                if not (root / "capture.json").is_file():
                    raise ConfigError(f"node {node_label()} cannot see the shared workspace", root)
                inputs = {k: Path(v) for k, v in payload["inputs"].items()}
            outcome = execute_stage(
                CaptureFolder(root), payload["stage"], payload["config"], inputs,
                sink=lambda e: sender.put({"type": "event", "event": e.to_json()}), cancel=token,
                wiring=payload["wiring"], settings=Settings(**payload["settings"]),
            )
            record: dict[str, Any] = {"type": "result", "stage": outcome.stage, "files": None,
                                      "run_dir": str(outcome.run_dir), "result": outcome.result,
                                      "reused": outcome.reused}
            if scratch is not None:
                record["files"] = pack_tree(outcome.run_dir)
                record["node_inputs"] = {str(v): k for k, v in inputs.items()}
            return record
        except BaseException as e:  # the head rebuilds it as the same core.errors class
            sender.put({"type": "event", "event": ProgressEvent(
                "log", str(payload["stage"]), message=f"on {node_label()}: {describe_error(e)}",
                level="debug").to_json()})
            return {"type": "error", "classes": [c.__name__ for c in type(e).__mro__],
                    "reason": getattr(e, "reason", str(e)), "where": _where(e),
                    "message": describe_error(e), "traceback": traceback.format_exc()}
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


def _where(error: BaseException) -> str | None:
    where = getattr(error, "where", None)
    return None if where is None else str(where)


def probe_task(root: str, probe_name: str, token: str) -> dict[str, Any]:
    """Whether this node sees the head's workspace: read the head's probe file, write one back."""
    label = node_label()
    path = Path(root) / probe_name
    try:
        seen = path.read_text().strip()
    except OSError as e:
        return {"node": label, "ok": False, "why": f"cannot read {path}: {e.strerror or e}"}
    if seen != token:
        return {"node": label, "ok": False, "why": f"{path} holds another machine's file"}
    reply = Path(root) / f"{probe_name}.{label.replace('/', '-')}"
    try:
        reply.write_text(token)
        reply.unlink()
    except OSError as e:
        return {"node": label, "ok": False, "why": f"cannot write in {root}: {e.strerror or e}"}
    return {"node": label, "ok": True, "why": ""}


def shipped_size(files: list[ShippedFile]) -> int:
    return sum(len(f.data) for f in files)
