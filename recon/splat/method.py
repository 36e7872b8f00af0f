"""The ``splat`` method: poses (unless every frame has metric depth and a device pose), the
splat stage, then the shared mesh and export stages. Registered in pyproject.toml."""

from __future__ import annotations

from core.jobs_schema import Step
from recon.methods import CaptureFacts, MachineNeeds, Method, PlanRequest
from recon.methods_builtin import mesh_and_export


def _unavailable(facts: CaptureFacts) -> str | None:
    if not facts.frames:
        return "the capture has no frames yet (nothing was imported or uploaded)"
    if facts.photos < 2:
        return "Gaussian splatting needs at least 2 photos"
    return None


def _detail(detail: str) -> str:
    return "preview" if detail == "reduced" else detail  # no reduced preset here


def _expected(facts: CaptureFacts, detail: str) -> str:
    from recon.splat.backend import pick_device
    from recon.splat.presets import expected

    return expected(_detail(detail), pick_device("auto"))


def _steps(facts: CaptureFacts, request: PlanRequest) -> list[Step]:
    poses = [] if facts.rgbd else [Step("poses")]
    return [*poses, Step("splat", {"detail": _detail(request.detail)}), *mesh_and_export(facts, request)]


SPLAT = Method(
    name="splat",
    description="3D Gaussian splatting: a splat PLY/USD for viewers and a mesh from its rendered depth",
    unavailable=_unavailable, steps=_steps, expected=_expected,
    needs=MachineNeeds("optional", 4.0, note="gsplat on an NVIDIA GPU; CPU only at preview detail"),
)
