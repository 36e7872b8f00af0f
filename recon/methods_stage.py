"""The ``plan`` stage: a job's method, expanded into its stages inside the worker's child.

Every entry point queues ``plan`` (after ``ingest`` for an upload) with a method name, a detail
preset and per-stage overrides (core.submit). It looks at the capture as it is now, asks the
method registry (recon.methods) for the steps, writes them to plan.json in its run folder and
returns them as ``next_steps``: the worker makes them the rest of the job. It never reuses an
earlier run, since the capture's frames may have changed since.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError
from core.fsio import atomic_write_json
from core.ports import CAPTURE_FRAMES
from core.stages import NEXT_STEPS, StageContext, StageSpec
from recon.export.presets import triangle_budget
from recon.methods import FORMATS, plan

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class PlanStageConfig:
    method: str = "auto"
    detail: str = "medium"  # preview, reduced, medium or full (the triangle budget)
    formats: tuple[str, ...] = FORMATS
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage name -> its options

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise ConfigError(f"expected a method name, got {self.method!r}", "plan.method")
        try:
            triangle_budget(self.detail)
        except ConfigError as e:
            raise ConfigError(e.reason, "plan.detail") from None
        formats = self.formats
        if isinstance(formats, str) or not all(isinstance(f, str) for f in formats) or not formats:
            raise ConfigError(f"expected some of {', '.join(FORMATS)}, got {formats!r}", "plan.formats")
        object.__setattr__(self, "formats", tuple(formats))
        if not isinstance(self.overrides, dict) or not all(
                isinstance(k, str) and isinstance(v, dict) for k, v in self.overrides.items()):
            raise ConfigError('expected {"stage": {"option": value}}', "plan.overrides")


def run(ctx: StageContext, config: PlanStageConfig) -> dict[str, Any]:
    ctx.progress.update(0.1, f"planning the {config.method} method")
    chosen = plan(ctx.capture, config.method, config.detail, config.formats, config.overrides)
    steps = [{"stage": s.stage, "config": s.config, **({"inputs": s.inputs} if s.inputs else {})}
             for s in chosen.steps]
    atomic_write_json(ctx.out_dir / PLAN_FILE, {
        "requested": chosen.requested, "method": chosen.method, "steps": steps,
        "facts": dataclasses.asdict(chosen.facts),
    })
    ctx.progress.log(f"method {chosen.method}: {' -> '.join(s['stage'] for s in steps)}")
    return {"requested": chosen.requested, "method": chosen.method, NEXT_STEPS: steps}


STAGE = StageSpec(
    name="plan", config_cls=PlanStageConfig, run=run, reuse=False, reads=(), capture_reads=(CAPTURE_FRAMES,),
    description="expand the job's method (recon.methods) into its stages, from the capture as it is now",
)
