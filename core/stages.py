"""Pipeline stages: the registry and the executor that gives each run its own hashed folder.

A stage is registered under the entry-point group ``scanbridge.stages`` as a StageSpec. It runs
as ``spec.run(ctx, config) -> dict`` and writes only inside ``ctx.out_dir``, which is
``runs/<stage>-<hash>/`` where the hash covers the stage's name and version, its config, the run
folders wired to its input ports (core.ports; a spec without ports: every earlier run of the
job), a fingerprint of the capture data it reads, and the content hashes of its model weights.
A finished run (status.json says "done") is reused; a changed parameter makes a new folder.
status.json is written atomically and last, so a run killed at any point is never mistaken for
a finished one. A stage whose result depends on more than its config and inputs (planning from
the capture's current frames, publishing to exports/) says ``reuse=False`` and runs every time.

A stage that declares ``resumable=True`` keeps its run folder when a run is killed, cancelled
or fails: the run is "interrupted" (status.json), and the next attempt runs in the same folder
with ``ctx.checkpoints`` (core.checkpoints) holding what the last one saved, so it continues
from there. A non-resumable stage's unfinished run is deleted and starts clean.

A stage's result may carry ``next_steps`` (``NEXT_STEPS``): a list of ``{"stage", "config"}``
that the job runs after it, in place of any steps it had after it. That is how a method's
``plan`` step expands into the method's stages inside the worker (core.worker).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import shutil
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from core.capture import CaptureFolder
from core.checkpoints import CHECKPOINT_DIR, Checkpoints
from core.errors import Cancelled, ConfigError, NotFoundError, ScanBridgeError
from core.fsio import atomic_write_json
from core.gpu_slot import gpu_slot
from core.models import ModelStore, choose_device
from core.ports import (
    DEFAULT_CAPTURE_READS,
    Port,
    capture_fingerprint,
    check_declaration,
    run_writes,
    wire_inputs,
)
from core.progress import CancelToken, Progress, ProgressEvent, Sink
from core.resources import Resources
from core.settings import Settings

STAGE_GROUP = "scanbridge.stages"
NEXT_STEPS = "next_steps"


@dataclass(frozen=True)
class StageContext:
    capture: CaptureFolder
    out_dir: Path  # this run's folder: the only place the stage writes
    inputs: Mapping[str, Path]  # runs wired to its input ports (legacy: every earlier run, by stage)
    progress: Progress
    cancel: CancelToken
    checkpoints: Checkpoints | None = None  # only for a resumable stage: what earlier attempts saved
    attempt: int = 1  # 1 on a fresh run; counts up each time an interrupted resumable run resumes
    models: ModelStore = field(default_factory=ModelStore)  # resolve(id) -> local path + content hash
    device: str = "cpu"  # "cpu", "cuda:N" or "mps" (core.models.choose_device)


@dataclass(frozen=True)
class StageSpec:
    name: str
    config_cls: type  # a dataclass whose fields all have defaults
    run: Callable[[StageContext, Any], dict[str, Any]]
    version: int = 1
    requires: tuple[str, ...] = ()  # stages whose run folders this one reads
    description: str = ""
    reuse: bool = True  # False: never reuse a finished run; run again (in a clean folder) every time
    resumable: bool = False  # True: an unfinished run is kept and resumed from ctx.checkpoints
    # Declared ports (core.ports). reads=None: the stage gets (and its hash covers) every earlier
    # run of the job by stage name, as before ports; a tuple: only the runs wired to these ports.
    reads: tuple[Port, ...] | None = None
    writes: tuple[str, ...] = ()  # artifact kinds its run folder holds
    capture_reads: tuple[str, ...] = DEFAULT_CAPTURE_READS  # parts of the capture it reads
    resources: Resources = Resources()  # gpu=True: ctx.device from settings, and the GPU slot
    models: tuple[str, ...] = ()  # model ids it loads: their content hashes go into its run's hash

    def __post_init__(self) -> None:
        check_declaration(self.name, self.reads, self.writes, self.capture_reads)


@dataclass(frozen=True)
class StageOutcome:
    stage: str
    run_dir: Path
    result: dict[str, Any] = field(default_factory=dict)
    reused: bool = False


def load_stage(name: str) -> StageSpec:
    """A registered stage by name, or any StageSpec by its ``package.module:ATTR`` path."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            spec = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise NotFoundError(f"cannot load stage: {e}", name) from None
        if not isinstance(spec, StageSpec):
            raise ScanBridgeError("not a StageSpec", name)
        return spec
    for ep in entry_points(group=STAGE_GROUP):
        if ep.name == name:
            spec = ep.load()
            if not isinstance(spec, StageSpec):
                raise ScanBridgeError(f"entry point {ep.value} is not a StageSpec", name)
            return spec
    raise NotFoundError(f"no such stage (known: {', '.join(stage_names())})", name)


def stage_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=STAGE_GROUP))


def make_config(spec: StageSpec, overrides: Mapping[str, Any] | None = None) -> Any:
    """Build the stage's config dataclass; an unknown key is an error naming it."""
    overrides = dict(overrides or {})
    names = {f.name for f in dataclasses.fields(spec.config_cls)}
    for key in overrides:
        if key not in names:
            raise ConfigError(f"unknown option (known: {', '.join(sorted(names))})", f"{spec.name}.{key}")
    try:
        return spec.config_cls(**overrides)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e), spec.name) from None


def config_to_json(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def run_hash(spec: StageSpec, config: Any, inputs: Mapping[str, Path], capture_fp: str = "",
             model_hashes: Mapping[str, str] | None = None) -> str:
    """Stage version + config + the runs wired into it + the fingerprint of the capture data it
    reads + the content hashes of the model weights it uses."""
    key = {
        "stage": spec.name,
        "version": spec.version,
        "config": config_to_json(config),
        "inputs": {k: Path(v).name for k, v in sorted(inputs.items())},
        "capture": capture_fp,
        "models": dict(sorted((model_hashes or {}).items())),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def run_dir_for(capture: CaptureFolder, spec: StageSpec, config: Any, inputs: Mapping[str, Path],
                capture_fp: str | None = None, models: ModelStore | None = None) -> Path:
    if capture_fp is None:
        capture_fp = capture_fingerprint(capture, spec.capture_reads)
    store = models or ModelStore()
    model_hashes = {m: store.resolve(m).sha256 for m in spec.models}  # DependencyError when absent
    return capture.runs_dir / f"{spec.name}-{run_hash(spec, config, inputs, capture_fp, model_hashes)}"


def _kinds_of(stage_name: str, run_dir: Path) -> tuple[str, ...]:
    """What an earlier run holds: its recorded ``writes``, else what its stage declares."""
    recorded = run_writes(run_dir)
    if recorded or ":" in stage_name or stage_name not in stage_names():
        return recorded
    return load_stage(stage_name).writes


def wired_inputs(spec: StageSpec, available: Mapping[str, Path],
                 wiring: Mapping[str, str] | None = None) -> dict[str, Path]:
    """The run folders a step of ``spec`` reads, from the job's earlier runs (by stage name)."""
    if spec.reads is None:
        if wiring:
            raise ConfigError("this stage declares no input ports to wire", spec.name)
        missing = [r for r in spec.requires if r not in available]
        if missing:
            raise ConfigError(f"needs the output of {', '.join(missing)} first", spec.name)
        return dict(available)
    return wire_inputs(spec.name, spec.reads, available, wiring or {}, _kinds_of)


def read_status(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_done(run_dir: Path) -> bool:
    status = read_status(run_dir)
    return bool(status and status.get("state") == "done")


PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_PREVIEW_BYTES = 4 << 20
METRICS_FILE = "metrics.jsonl"


def _preview_problem(path: Path, run_dir: Path) -> str | None:
    if not path.is_relative_to(run_dir):
        return "is outside the run folder"
    if path.suffix.lower() not in PREVIEW_SUFFIXES:
        return f"is not one of {', '.join(PREVIEW_SUFFIXES)}"
    try:
        size = path.stat().st_size
    except OSError:
        return "does not exist"
    return f"is {size} bytes (at most {MAX_PREVIEW_BYTES})" if size > MAX_PREVIEW_BYTES else None


def _logging_sink(run_dir: Path, capture_root: Path, sink: Sink | None) -> tuple[Sink, Callable[[], None]]:
    """Log lines to log.txt and metrics to metrics.jsonl in the run; previews checked and made
    relative to the capture folder; then everything on to ``sink``."""
    log = open(run_dir / "log.txt", "a", encoding="utf-8", buffering=1)
    metrics = open(run_dir / METRICS_FILE, "a", encoding="utf-8", buffering=1)

    def emit(event: ProgressEvent) -> None:
        if event.kind == "log":
            stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
            log.write(f"{stamp} {event.level.upper():7s} {event.message}\n")
        elif event.kind == "metric":
            metrics.write(json.dumps({"step": event.step, "time": event.time, **(event.values or {})}) + "\n")
        elif event.kind == "preview":
            path = (run_dir / event.path).resolve()
            problem = _preview_problem(path, run_dir.resolve())
            if problem is not None:
                emit(ProgressEvent("log", event.stage, message=f"preview {event.path} {problem}; not shown",
                                   level="warning", time=event.time))
                return
            event = dataclasses.replace(event, path=path.relative_to(capture_root.resolve()).as_posix())
        if sink is not None:
            sink(event)

    def close() -> None:
        log.close()
        metrics.close()

    return emit, close


def execute_stage(
    capture: CaptureFolder,
    stage: str | StageSpec,
    overrides: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Path] | None = None,
    sink: Sink | None = None,
    cancel: CancelToken | None = None,
    wiring: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> StageOutcome:
    """Run one stage over ``capture`` (or reuse its finished run) and return where it wrote.

    ``inputs``: the job's earlier runs by stage name, in step order; ``wiring``: port -> the
    earlier stage to read it from (core.ports); the stage gets only what its ports wire.
    ``settings``: where its models are and which GPU it may use (default: none, and the CPU).
    """
    spec = stage if isinstance(stage, StageSpec) else load_stage(stage)
    name = spec.name
    config = make_config(spec, overrides)
    inputs = wired_inputs(spec, dict(inputs or {}), wiring)
    settings = settings or Settings()
    models = ModelStore(settings.model_paths)
    run_dir = run_dir_for(capture, spec, config, inputs, models=models)
    if spec.reuse and is_done(run_dir):
        status = read_status(run_dir) or {}
        return StageOutcome(name, run_dir, status.get("result", {}), reused=True)
    resuming = spec.resumable and spec.reuse and run_dir.is_dir()
    previous = read_status(run_dir) if resuming else None
    if run_dir.exists() and not resuming:  # killed, failed or cancelled (or never reused): start clean
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    attempt = int((previous or {}).get("attempt", 1)) + 1 if resuming else 1
    atomic_write_json(run_dir / "config.json", {
        "stage": name, "version": spec.version, "config": config_to_json(config),
        "inputs": {k: str(v) for k, v in inputs.items()}, "writes": list(spec.writes),
    })
    started = time.time()
    atomic_write_json(run_dir / "status.json", {"state": "running", "started": started, "attempt": attempt})
    emit, close_log = _logging_sink(run_dir, capture.root, sink)
    progress = Progress(name, emit)
    checkpoints = Checkpoints(run_dir / CHECKPOINT_DIR) if spec.resumable else None
    if checkpoints is not None:
        checkpoints.sweep_partial()
    token = cancel or CancelToken()
    ctx = StageContext(capture, run_dir, inputs, progress, token, checkpoints, attempt, models,
                       choose_device(settings.gpu, spec.resources.gpu))
    try:
        if attempt > 1:
            latest = checkpoints.latest() if checkpoints is not None else None
            where = f"checkpoint {latest.step}" if latest else "the start (no checkpoint yet)"
            was = (previous or {}).get("state", "unknown")
            progress.log(f"{name} resuming in {run_dir.name} from {where} (attempt {attempt}; was {was})")
        else:
            progress.log(f"{name} started in {run_dir.name}")
        with gpu_slot(token, progress.log) if spec.resources.gpu else contextlib.nullcontext():
            result = spec.run(ctx, config) or {}
        progress.update(1.0, "done")
        progress.log(f"{name} finished in {time.time() - started:.1f} s")
    except Cancelled:
        progress.log("cancelled" + ("; its checkpoints are kept" if spec.resumable else ""), "warning")
        atomic_write_json(run_dir / "status.json", {
            "state": "interrupted" if spec.resumable else "cancelled", "started": started,
            "ended": time.time(), "attempt": attempt,
        })
        raise
    except BaseException as e:
        progress.log(f"failed: {e}", "error")
        with (run_dir / "log.txt").open("a", encoding="utf-8") as log:
            log.write(traceback.format_exc())
        atomic_write_json(run_dir / "status.json", {
            "state": "failed", "started": started, "ended": time.time(), "error": str(e),
            "error_type": type(e).__name__, "attempt": attempt,
        })
        raise
    finally:
        close_log()
    atomic_write_json(run_dir / "status.json", {
        "state": "done", "started": started, "ended": time.time(), "result": result, "attempt": attempt,
    })
    return StageOutcome(name, run_dir, result, reused=False)
