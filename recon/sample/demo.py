"""The demo: ingest the bundled sample as a new capture and run the pipeline over it end to end.

Two jobs of the workspace's queue (each stage in a child process, as the GUI and the server run
them): DEMO_STEPS, structure from motion on the photos alone, checked against the true poses;
then ``scanbridge process`` (recon.pipeline): fusion of the depth maps at the device poses,
mesh and texture, and the AR exports (USDZ checked for AR Quick Look, GLB, OBJ, PLY).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.capture import CaptureFolder
from core.errors import ScanBridgeError
from core.jobs import Step
from core.progress import Progress, Sink
from core.stages import StageOutcome
from core.worker import run_job
from core.workspace import Workspace
from recon.ingest import ingest
from recon.pipeline import process
from recon.sample.evaluate import capture_pose_errors
from recon.sample.paths import bundled_sample_dir

DEMO_STEPS: tuple[Step, ...] = (
    # SfM on the photos, ignoring the rendered poses, so the demo exercises the real pipeline.
    Step("poses", {"use_device_poses": False}),
)
# Files a run writes for itself rather than as results; not listed in the demo's report.
RUN_BOOKKEEPING = ("config.json", "status.json", "log.txt")


@dataclass(frozen=True)
class DemoResult:
    capture: CaptureFolder
    outcomes: tuple[StageOutcome, ...]
    published: Mapping[str, Path] = field(default_factory=dict)  # exports/ files by format


def run_demo(
    workspace: Workspace,
    *,
    name: str = "sample",
    steps: Sequence[Step] = DEMO_STEPS,
    source: Path | None = None,
    sink: Sink | None = None,
    model: bool = True,
    detail: str = "medium",
    texture_size: int = 2048,
) -> DemoResult:
    """Ingest ``source`` (default: the bundled sample) as a new guided capture, run ``steps``, and
    (with ``model``) process it into AR exports at ``detail``.

    Progress and log events of every part go to ``sink``. A failing stage raises its error; the
    capture and any finished runs stay in the workspace.
    """
    capture = ingest(source or bundled_sample_dir(), workspace, name=name, mode="guided",
                     progress=Progress("ingest", sink))
    outcomes = run_job(workspace, capture.id, list(steps), sink) if steps else []
    if not model:
        return DemoResult(capture, tuple(outcomes))
    made = process(workspace, capture, detail=detail, sink=sink, mesh_options={"texture_size": texture_size})
    return DemoResult(capture, tuple(outcomes) + made.outcomes, MappingProxyType(made.published))


def result_files(run_dir: Path) -> list[Path]:
    """The result files a run left at the top of its folder, by name."""
    return sorted(p for p in run_dir.iterdir() if p.is_file() and p.name not in RUN_BOOKKEEPING
                  and not p.name.startswith("."))


def _poses_summary(result: dict[str, Any]) -> str:
    text = (f"registered {result.get('registered')}/{result.get('total')} frames "
            f"({result.get('source')}, {result.get('matcher', '-')} matching), {result.get('points')} points")
    unregistered = result.get("unregistered") or {}
    if unregistered:
        text += "; not registered: " + "; ".join(f"{k}: {v}" for k, v in unregistered.items())
    return text


def _generic_summary(result: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in result.items() if isinstance(v, (str, int, float, bool)))


def _poses_check(capture: CaptureFolder, outcome: StageOutcome) -> str:
    """The estimated poses against the sample's true ones."""
    try:
        err = capture_pose_errors(capture, outcome.run_dir)
    except (ValueError, ScanBridgeError) as e:
        return f"cannot compare with the true poses: {e}"
    return (f"against the true poses ({err['frames']} frames, after a similarity alignment): camera "
            f"centres {err['centre_rmse_m'] * 1000:.2f} mm RMS, {err['centre_max_m'] * 1000:.2f} mm max; "
            f"rotations within {err['rotation_max_deg']:.3f} deg")


# One line that says how a stage went; stages not named here get their scalar results.
SUMMARIES: Mapping[str, Callable[[dict[str, Any]], str]] = MappingProxyType({"poses": _poses_summary})
# A comparison with the sample's ground truth, for stages that have one.
CHECKS: Mapping[str, Callable[[CaptureFolder, StageOutcome], str]] = MappingProxyType({"poses": _poses_check})


def describe(result: DemoResult) -> list[str]:
    """The lines ``scanbridge demo`` prints: the capture, then each stage's folder, files, summary."""
    lines = [f"capture {result.capture.id}: {result.capture.root}"]
    for outcome in result.outcomes:
        reused = " (reused a finished run)" if outcome.reused else ""
        lines.append(f"{outcome.stage}: {outcome.run_dir}{reused}")
        lines.extend(f"  {p}" for p in result_files(outcome.run_dir))
        summary = SUMMARIES.get(outcome.stage, _generic_summary)(outcome.result)
        if summary:
            lines.append(f"  {summary}")
        if outcome.stage in CHECKS:
            lines.append(f"  {CHECKS[outcome.stage](result.capture, outcome)}")
    if "usdz" in result.published:
        lines.append(f"AR model (open on an iPhone or iPad for AR Quick Look): {result.published['usdz']}")
        lines.extend(f"  also {fmt}: {path}" for fmt, path in result.published.items() if fmt != "usdz")
    return lines
