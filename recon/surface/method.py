"""The ``surface`` method in the method registry (pyproject.toml, ``scanbridge.methods``).

A capture whose frames all carry a device pose (LiDAR captures) trains on those poses; any other
goes through the ``poses`` stage first. Planning refuses a detail preset that would run for
hours on this machine's CPU, naming the expected time and the preset that fits.
"""

from __future__ import annotations

from core.jobs_schema import Step
from recon.methods import CaptureFacts, MachineNeeds, Method, PlanRequest
from recon.methods_builtin import mesh_and_export
from recon.surface.presets import check_fits, describe_seconds, preset


def _unavailable(facts: CaptureFacts) -> str | None:
    if not facts.frames:
        return "the capture has no frames yet (nothing was imported or uploaded)"
    if facts.photos < 3:
        return "a neural surface needs at least 3 photos"
    return None


def _expected(facts: CaptureFacts, detail: str) -> str:
    from recon.surface.stage import resolve_device

    detail = "preview" if detail == "reduced" else detail
    device = resolve_device("auto")
    chosen = preset(detail)
    seconds = check_fits(detail, device)
    where = "this machine's CPU" if device == "cpu" else f"the {device} GPU"
    return (f"about {describe_seconds(seconds)} on {where} "
            f"({chosen.steps} steps of {chosen.rays_per_batch} rays)")


def _steps(facts: CaptureFacts, request: PlanRequest) -> list[Step]:
    from recon.surface.stage import resolve_device

    detail = "preview" if request.detail == "reduced" else request.detail  # no reduced preset here
    check_fits(detail, resolve_device("auto"))
    surface = Step("surface", {"detail": detail})
    poses = [] if facts.depth_and_poses else [Step("poses")]
    return [*poses, surface, *mesh_and_export(facts, request)]


SURFACE = Method(
    name="surface",
    description="neural SDF (Neuralangelo-style hash grid) trained on the photos, meshed by marching cubes",
    unavailable=_unavailable, steps=_steps, expected=_expected,
    needs=MachineNeeds("optional", 4.0, note="an NVIDIA GPU; on a CPU only the preview preset fits"),
)
