"""The ``mcc`` method in the method registry (pyproject.toml, ``scanbridge.methods``).

One RGB-D frame completed into a whole object: for a quick model from a single look, or from a
capture whose other frames do not go all round. It applies to captures with depth; the frame is
the capture's middle one with depth unless the submitter overrides ``mcc.frame`` (the CLI's
``--frame N``, the app's "Complete from this frame"). The mesh stage does not crop (one camera
says little about where the object ends) and bakes colour from the capture's photos.
"""

from __future__ import annotations

from core.jobs_schema import Step
from recon.methods import CaptureFacts, MachineNeeds, Method, PlanRequest
from recon.methods_builtin import mesh_and_export


def _unavailable(facts: CaptureFacts) -> str | None:
    if not facts.frames:
        return "the capture has no frames yet (nothing was imported or uploaded)"
    if facts.median_depth_m is None:
        return "mcc completes one RGB-D frame; this capture has no depth maps (use mvs)"
    return None


def _steps(facts: CaptureFacts, request: PlanRequest) -> list[Step]:
    mesh, export = mesh_and_export(facts, request)
    return [Step("mcc"), Step(mesh.stage, {**mesh.config, "crop": "none"}), export]


MCC = Method(
    name="mcc",
    description="one RGB-D frame completed into a whole object (MCC-style; --frame N picks the frame)",
    unavailable=_unavailable, steps=_steps,
    needs=MachineNeeds("optional", 2.0, note="the small default model runs in seconds on a CPU"),
)
