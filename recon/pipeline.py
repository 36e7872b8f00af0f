"""``scanbridge process``: one job that turns a capture into an AR asset, run here.

The CLI queues what the server and the desktop queue (core.submit.method_job): a ``plan`` step
with the method name, which expands in the stage child through the method registry
(recon.methods), and ends with ``publish`` to the capture's exports/. It then runs that job in
this process (its stages still in child processes) and copies the model to ``-o``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.capture import CaptureFolder
from core.errors import ConfigError
from core.progress import Sink
from core.stages import StageOutcome
from core.submit import PLAN_STAGE, PUBLISH_STAGE, method_job
from core.workspace import Workspace
from recon.methods import FORMATS, load_method


@dataclass(frozen=True)
class ProcessResult:
    capture: CaptureFolder
    method: str  # the method that ran (auto resolves to one)
    outcomes: tuple[StageOutcome, ...]
    published: dict[str, Path]


def check_output(out: Path | None, method: str, formats: list[str] | None = None) -> None:
    """ConfigError when ``method`` cannot write ``out``: an unknown suffix, a method that makes no
    model, or a suffix that is not among ``formats`` (the files to publish)."""
    if out is None:
        return
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown output format {out.suffix!r}; use .usdz, .glb, .obj or .ply", out)
    if not load_method(method).makes_model:
        raise ConfigError(f"the {method} method makes no model to write to {out.name}", "method")
    if formats is not None and fmt not in formats:
        raise ConfigError(f"{out.name} is not among the formats to write ({', '.join(formats)})", "formats")


def process(workspace: Workspace, capture: CaptureFolder, *, method: str = "auto", detail: str = "medium",
            out: Path | None = None, sink: Sink | None = None,
            mesh_options: dict[str, Any] | None = None,
            export_options: dict[str, Any] | None = None,
            overrides: dict[str, dict[str, Any]] | None = None) -> ProcessResult:
    """Run the capture's job to the end (it publishes to exports/), then copy the model to ``out``.

    ``overrides`` maps a stage name to options for it; ``mesh_options`` and ``export_options`` are
    the mesh and export stages' (for the export: which ``formats`` to write, ``texture_format``,
    ``texture_quality``, ``up``)."""
    from core.worker import run_job
    from recon.export.stage import copy_published

    check_output(out, method, (export_options or {}).get("formats"))
    stage_overrides = {stage: dict(options) for stage, options in (overrides or {}).items()}
    for stage, options in (("mesh", mesh_options), ("export", export_options)):
        if options:
            stage_overrides[stage] = {**stage_overrides.get(stage, {}), **options}
    steps = method_job(capture, method, detail, stage_overrides or None)
    outcomes = run_job(workspace, capture.id, steps, sink)
    chosen = next(o.result["method"] for o in outcomes if o.stage == PLAN_STAGE)
    publish = next((o for o in outcomes if o.stage == PUBLISH_STAGE), None)
    if publish is None:
        return ProcessResult(capture, chosen, tuple(outcomes), {})
    published = {fmt: capture.exports_dir / name for fmt, name in publish.result["files"].items()}
    if out is not None:
        published["out"] = copy_published(capture, published, out)
    return ProcessResult(capture, chosen, tuple(outcomes), published)
