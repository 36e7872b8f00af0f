"""The ``create`` method: a model from a prompt or the capture's photo (the create stage), then the
shared export. The prompt and other options travel as the job's overrides for the create stage
(core.generated.create_overrides). Registered in pyproject.toml."""

from __future__ import annotations

from core.jobs_schema import Step
from recon.methods import CaptureFacts, MachineNeeds, Method, PlanRequest


def _steps(facts: CaptureFacts, request: PlanRequest) -> list[Step]:
    return [Step("create", {"detail": request.detail}),
            Step("export", {"detail": request.detail, "formats": list(request.formats), "name": facts.name})]


CREATE = Method(
    name="create",
    description="text or one photo to a model with Shap-E (your weights; MIT licence), optionally refined "
                "by score distillation; needs a prompt, else uses the capture's first photo",
    unavailable=lambda facts: None, steps=_steps,
    needs=MachineNeeds("optional", 6.0, note="Shap-E on an NVIDIA GPU; on a CPU it takes minutes"),
)
