"""Stages and helpers for the job-queue tests.

Child processes import this module as ``stages_for_tests`` (a name nothing in site-packages
uses), with this folder put on their PYTHONPATH by ``child_env``; the venv has an unrelated
top-level ``tests`` package, so ``tests.core.stages_for_tests`` could resolve to the wrong place.
Steps name these stages as ``stages_for_tests:STEP`` etc.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.capture import Manifest, utc_now
from core.errors import StageError
from core.ports import POSED_IMAGES, RAW_MESH, Port
from core.resources import Resources
from core.stages import StageContext, StageSpec
from core.workspace import Workspace

HERE = Path(__file__).resolve().parent
MODULE = "stages_for_tests"


def child_env() -> dict[str, str]:
    """os.environ with this folder first on PYTHONPATH, for worker and stage processes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    return env


def make_workspace(root: Path, capture_id: str = "cap") -> Workspace:
    ws = Workspace(root)
    with ws.staged_capture(capture_id) as cap:
        cap.save(Manifest(id=capture_id, name="test capture", created=utc_now(), mode="free"))
    return ws


def count_lines(path: Path | str) -> int:
    p = Path(path)
    return len(p.read_text().splitlines()) if p.exists() else 0


@dataclass(frozen=True)
class TickConfig:
    counter: str = ""  # a file that gets one line each time the stage starts
    ticks: int = 4  # progress updates
    tick_s: float = 0.0  # sleep per tick (small, so cancel is seen quickly)
    fail: str = ""  # raise StageError with this message half-way
    hold_file: str = ""  # after its ticks, wait (checking cancel) while this file exists
    tag: str = ""  # only to tell runs apart (goes into the run hash)


def _mark_start(ctx: StageContext, cfg: TickConfig) -> None:
    if cfg.counter:
        with open(cfg.counter, "a", encoding="utf-8") as f:
            f.write(f"{ctx.out_dir.name} {os.getpid()}\n")


def _tick_run(ctx: StageContext, cfg: TickConfig) -> dict:
    _mark_start(ctx, cfg)
    for i in range(cfg.ticks):
        ctx.cancel.check()
        if cfg.fail and i >= cfg.ticks // 2:
            raise StageError(cfg.fail, "frames")
        time.sleep(cfg.tick_s)
        ctx.progress.update((i + 1) / cfg.ticks * (0.5 if cfg.hold_file else 1.0), f"tick {i + 1}")
    while cfg.hold_file and os.path.exists(cfg.hold_file):
        ctx.cancel.check()
        time.sleep(0.02)
    ctx.progress.log(f"inputs: {sorted(ctx.inputs)}")
    (ctx.out_dir / "out.txt").write_text(" ".join(sorted(p.name for p in ctx.inputs.values())))
    return {"ticks": cfg.ticks, "inputs": {k: v.name for k, v in sorted(ctx.inputs.items())}}


def _crash_run(ctx: StageContext, cfg: TickConfig) -> dict:
    _mark_start(ctx, cfg)
    ctx.progress.update(0.5, "about to die")
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def _deaf_run(ctx: StageContext, cfg: TickConfig) -> dict:
    """Never checks its cancel token and ignores SIGTERM: only SIGKILL stops it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _mark_start(ctx, cfg)
    for i in range(cfg.ticks):
        time.sleep(cfg.tick_s)
        ctx.progress.update((i + 1) / cfg.ticks)
    return {}


def _buggy_run(ctx: StageContext, cfg: TickConfig) -> dict:
    print("native library chatter on stdout", flush=True)
    raise ValueError("division by zero in the matcher")


FIRST = StageSpec(name="first", config_cls=TickConfig, run=_tick_run)
SLOW = StageSpec(name="slow", config_cls=TickConfig, run=_tick_run)
LAST = StageSpec(name="last", config_cls=TickConfig, run=_tick_run)
CRASH = StageSpec(name="crash", config_cls=TickConfig, run=_crash_run)
DEAF = StageSpec(name="deaf", config_cls=TickConfig, run=_deaf_run)
BUGGY = StageSpec(name="buggy", config_cls=TickConfig, run=_buggy_run)


@dataclass(frozen=True)
class ExpandConfig:
    then: tuple = ()  # [{"stage": ..., "config": {...}}]: returned as the job's next steps
    counter: str = ""


def _expand_run(ctx: StageContext, cfg: ExpandConfig) -> dict:
    if cfg.counter:
        with open(cfg.counter, "a", encoding="utf-8") as f:
            f.write(f"{ctx.out_dir.name}\n")
    return {"next_steps": [dict(s) for s in cfg.then]}


# Like recon's plan stage: expands into the steps after it, and is never reused.
EXPAND = StageSpec(name="expand", config_cls=ExpandConfig, run=_expand_run, reuse=False)


@dataclass(frozen=True)
class CountConfig:
    to: int = 10  # count from 0 (or the last checkpoint) up to this
    every: int = 1  # save a checkpoint every this many counts
    tick_s: float = 0.0  # sleep per count
    starts: str = ""  # a file that gets "ATTEMPT COUNT" each time an attempt starts counting
    preview_every: int = 0  # write previews/count-N.png every this many counts (0: never)


def _count_run(ctx: StageContext, cfg: CountConfig) -> dict:
    assert ctx.checkpoints is not None
    latest = ctx.checkpoints.latest()
    count = latest.read_json()["count"] if latest else 0
    if cfg.starts:
        with open(cfg.starts, "a", encoding="utf-8") as f:
            f.write(f"{ctx.attempt} {count}\n")
    while count < cfg.to:
        ctx.cancel.check()
        time.sleep(cfg.tick_s)
        count += 1
        if count % cfg.every == 0 or count == cfg.to:
            ctx.checkpoints.save_json(count, {"count": count})
        ctx.progress.update(count / cfg.to, f"count {count}")
        ctx.progress.metric(count, count=count, remaining=cfg.to - count)
        if cfg.preview_every and count % cfg.preview_every == 0:
            image = ctx.out_dir / "previews" / f"count-{count}.png"
            image.parent.mkdir(exist_ok=True)
            Image.new("L", (8, 8), color=count % 256).save(image)
            ctx.progress.preview(image, step=count, caption=f"count {count}")
    return {"count": count}


# Resumable: counts to N, checkpointing as it goes; a killed attempt continues from its checkpoint.
COUNT = StageSpec(name="count", config_cls=CountConfig, run=_count_run, resumable=True)


# Stages with declared ports (core.ports): an SfM-like stage that reads only the capture, and a
# dense stage wired to it; "first" (legacy, no ports) may run before them without being read.
SFM = StageSpec(name="sfm", config_cls=TickConfig, run=_tick_run, reads=(), writes=(POSED_IMAGES,))
DENSE = StageSpec(name="dense", config_cls=TickConfig, run=_tick_run,
                  reads=(Port("poses", POSED_IMAGES),), writes=(RAW_MESH,))


@dataclass(frozen=True)
class GpuConfig:
    hold_s: float = 0.3  # how long it "uses the GPU"
    intervals: str = ""  # a file that gets "PID START END DEVICE" (time.monotonic) per run
    tag: str = ""


def _gpu_run(ctx: StageContext, cfg: GpuConfig) -> dict:
    start = time.monotonic()
    time.sleep(cfg.hold_s)
    end = time.monotonic()
    with open(cfg.intervals, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {start} {end} {ctx.device}\n")
    return {"device": ctx.device}


# Declares that it uses the GPU: it runs only while holding the machine-wide GPU slot.
GPU = StageSpec(name="gpu_user", config_cls=GpuConfig, run=_gpu_run,
                resources=Resources(gpu=True, gpu_memory_gb=1.0), capture_reads=())
