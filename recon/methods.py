"""The method registry: which stages turn a capture into a model, decided in one place.

A method (in the spirit of nerfstudio's method configs) has a name, a description, a test of
whether it applies to a capture (and why not), what it needs from the machine, and how it expands
into steps with their configs. Methods are ``Method`` objects registered under the entry-point
group ``scanbridge.methods`` (core.submit.METHOD_GROUP): adding one is one line in pyproject.toml.

The CLI, the capture server and the desktop submit only a method name, a detail preset and
per-stage overrides (core.submit.method_job); the ``plan`` stage (recon.methods_stage) calls
``plan`` here in the worker's stage child, after ``ingest`` where the capture was an upload, and
the job runs what it returns: the method's stages with complete configs, then ``publish``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from core.capture import CaptureFolder, Manifest
from core.errors import ConfigError, ScanBridgeError
from core.jobs_schema import Step
from core.stages import config_to_json, load_stage, make_config
from core.submit import METHOD_GROUP, PUBLISH_STAGE, method_names

FORMATS = ("usdz", "glb", "obj", "ply")
MEDIAN_DEPTH_SAMPLES = 5


@dataclass(frozen=True)
class CaptureFacts:
    """What methods look at to decide whether they apply and how to expand."""

    name: str
    frames: int
    photos: int  # frames with a colour image
    depth_and_poses: bool  # every frame has a depth map and a device pose
    metric: bool  # the capture's scale is metres
    median_depth_m: float | None  # over a few depth maps; None without depth

    @property
    def rgbd(self) -> bool:
        """Metric depth and a device pose on every frame: what TSDF fusion needs."""
        return self.frames > 0 and self.depth_and_poses and self.metric


@dataclass(frozen=True)
class MachineNeeds:
    gpu: str = "none"  # none | optional (faster with one) | required
    gpu_memory_gb: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class PlanRequest:
    """What the submitter asked for, besides the method."""

    detail: str = "medium"
    formats: tuple[str, ...] = FORMATS


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    # Why the method cannot process this capture, or None when it can.
    unavailable: Callable[[CaptureFacts], str | None]
    # Its steps up to the export (configs may be partial: defaults fill the rest).
    steps: Callable[[CaptureFacts, PlanRequest], list[Step]]
    needs: MachineNeeds = MachineNeeds()
    # A method that stands for another one (auto): the name it picks for this capture.
    picks: Callable[[CaptureFacts], str] | None = None
    makes_model: bool = True  # ends in an export, so the plan adds publish
    # How long it is expected to take on this machine at a detail preset, as a line for the user
    # ("about 18 min on this machine's CPU"); ConfigError naming the time and the preset that fits
    # where it would run for hours. None: no estimate (the classic methods take minutes).
    expected: Callable[[CaptureFacts, str], str] | None = None


@dataclass(frozen=True)
class Plan:
    requested: str  # the method asked for
    method: str  # the method that runs (differs from ``requested`` for auto)
    steps: tuple[Step, ...]
    facts: CaptureFacts


def load_method(name: str) -> Method:
    """A registered method by name; ConfigError naming the known ones otherwise."""
    for ep in entry_points(group=METHOD_GROUP):
        if ep.name == name:
            method = ep.load()
            if not isinstance(method, Method):
                raise ScanBridgeError(f"entry point {ep.value} is not a Method", name)
            return method
    raise ConfigError(f"unknown method {name!r} (known: {', '.join(method_names())})", "method")


def methods() -> list[Method]:
    """Every registered method, ``auto`` first."""
    return [load_method(name) for name in method_names()]


def _median_depth_m(capture: CaptureFolder, manifest: Manifest) -> float | None:
    import cv2
    import numpy as np

    with_depth = [f for f in manifest.frames if f.depth]
    sample = with_depth[:: max(1, len(with_depth) // MEDIAN_DEPTH_SAMPLES)][:MEDIAN_DEPTH_SAMPLES]
    values = []
    for frame in sample:
        assert frame.depth is not None
        depth = cv2.imread(str(capture.path(frame.depth)), cv2.IMREAD_UNCHANGED)
        if depth is not None and (depth > 0).any():
            values.append(float(np.median(depth[depth > 0])) * frame.depth_scale)
    return float(np.median(values)) if values else None


def capture_facts(capture: CaptureFolder) -> CaptureFacts:
    manifest = capture.load()
    frames = manifest.frames
    depth_and_poses = bool(frames) and all(f.depth and f.pose is not None for f in frames)
    return CaptureFacts(
        name=manifest.name, frames=len(frames), photos=sum(1 for f in frames if f.image),
        depth_and_poses=depth_and_poses, metric=manifest.scale == "metric",
        median_depth_m=_median_depth_m(capture, manifest) if any(f.depth for f in frames) else None,
    )


def _resolve(method: Method, facts: CaptureFacts) -> Method:
    return load_method(method.picks(facts)) if method.picks is not None else method


def expected_time(method: Method, facts: CaptureFacts, detail: str) -> str | None:
    """The method's expected-time line on this machine at ``detail`` (None: it gives none);
    ConfigError when it would be refused for taking hours."""
    chosen = _resolve(method, facts)
    return chosen.expected(facts, detail) if chosen.expected is not None else None


def why_not(method: Method, facts: CaptureFacts) -> str | None:
    """Why ``method`` cannot process a capture with these facts, or None when it can."""
    return _resolve(method, facts).unavailable(facts)


def availability(capture: CaptureFolder) -> list[tuple[Method, str | None]]:
    """Every method with the reason it does not apply to ``capture`` (None when it does)."""
    facts = capture_facts(capture)
    return [(m, why_not(m, facts)) for m in methods()]


def full_config(stage: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The stage's complete config as JSON data (defaults filled in); ConfigError on a bad option."""
    return config_to_json(make_config(load_stage(stage), config))


def plan(capture: CaptureFolder, method: str = "auto", detail: str = "medium",
         formats: tuple[str, ...] = FORMATS,
         overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Plan:
    """The steps that process ``capture`` with ``method``: its stages with complete configs
    (``overrides`` maps a stage name to options for it), then publish when it makes a model."""
    facts = capture_facts(capture)
    requested = load_method(method)
    chosen = _resolve(requested, facts)
    reason = chosen.unavailable(facts)
    if reason is not None:
        raise ConfigError(reason, "method")
    steps = chosen.steps(facts, PlanRequest(detail, tuple(formats)))
    overrides = dict(overrides or {})
    stages = [s.stage for s in steps]
    for stage in overrides:
        if stage not in stages:
            raise ConfigError(f"the {chosen.name} method has no {stage} stage (it runs "
                              f"{', '.join(stages)})", f"overrides.{stage}")
    out = [Step(s.stage, full_config(s.stage, {**s.config, **overrides.get(s.stage, {})})) for s in steps]
    if chosen.makes_model:
        out.append(Step(PUBLISH_STAGE, full_config(PUBLISH_STAGE, {})))
    return Plan(requested.name, chosen.name, tuple(out), facts)
