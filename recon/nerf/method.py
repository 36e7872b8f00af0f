"""The ``nerf`` method: poses (device or SfM), nerfacto, then the shared mesh and export stages.

Registered in pyproject.toml under ``scanbridge.methods``; chosen by name (``auto`` never picks it).
"""

from __future__ import annotations

from core.jobs_schema import Step
from recon.methods import CaptureFacts, MachineNeeds, Method, PlanRequest
from recon.methods_builtin import mesh_and_export, photos_unavailable
from recon.nerf.settings import PRESETS, expected


def _detail(detail: str) -> str:
    return detail if detail in PRESETS else "medium"


def _expected(facts: CaptureFacts, detail: str) -> str:
    return expected(_detail(detail))


def _nerf_steps(facts: CaptureFacts, request: PlanRequest) -> list[Step]:
    detail = _detail(request.detail)
    return [Step("poses"), Step("nerf", {"detail": detail}), *mesh_and_export(facts, request)]


NERF = Method(
    name="nerf",
    description="nerfacto (nerfstudio) trained on the posed photos; its rendered depth fused into a mesh",
    unavailable=photos_unavailable, steps=_nerf_steps, expected=_expected,
    needs=MachineNeeds("optional", 6.0,
                       note="a CUDA GPU (minutes); on a CPU only --detail preview (~20 min)",),
)
