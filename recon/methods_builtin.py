"""The methods that ship today: fusion (LiDAR RGB-D), mvs (photos), auto (picks one), poses.

Each is registered in pyproject.toml under ``scanbridge.methods``.
"""

from __future__ import annotations

from core.jobs_schema import Step
from recon.methods import CaptureFacts, MachineNeeds, Method, PlanRequest

OBJECT_DEPTH_M = 1.5  # median depth below this: an object on a table, fused at 4 mm


def mesh_and_export(facts: CaptureFacts, request: PlanRequest) -> list[Step]:
    """The shared end of every reconstruction: mesh (clean, decimate, place, texture), export."""
    return [Step("mesh", {"detail": request.detail}),
            Step("export", {"detail": request.detail, "formats": list(request.formats), "name": facts.name})]


def _no_frames(facts: CaptureFacts) -> str | None:
    return "the capture has no frames yet (nothing was imported or uploaded)" if not facts.frames else None


def _fusion_unavailable(facts: CaptureFacts) -> str | None:
    if (reason := _no_frames(facts)) is not None:
        return reason
    if not facts.depth_and_poses:
        return ("fusion needs a depth map and a device pose on every frame; this capture has "
                "photos only or frames without them (use mvs)")
    if not facts.metric:
        return "fusion needs depth in metres; this capture's scale is unknown (use mvs)"
    return None


def _fusion_steps(facts: CaptureFacts, request: PlanRequest) -> list[Step]:
    near = facts.median_depth_m is not None and facts.median_depth_m < OBJECT_DEPTH_M
    # The mesh stage bakes the texture from the photos at their device poses (capture.json).
    return [Step("fusion", {"preset": "object" if near else "room"}), *mesh_and_export(facts, request)]


def photos_unavailable(facts: CaptureFacts) -> str | None:
    if (reason := _no_frames(facts)) is not None:
        return reason
    return None if facts.photos else "dense stereo needs photos; this capture has depth maps only"


def _mvs_steps(facts: CaptureFacts, request: PlanRequest) -> list[Step]:
    return [Step("poses"), Step("mvs"), *mesh_and_export(facts, request)]


def _auto_picks(facts: CaptureFacts) -> str:
    return "fusion" if facts.rgbd else "mvs"


FUSION = Method(
    name="fusion",
    description="LiDAR depth maps and device poses, TSDF-fused (object or room preset by distance)",
    unavailable=_fusion_unavailable, steps=_fusion_steps,
    needs=MachineNeeds("none", note="CPU (open3d TSDF)"),
)

MVS = Method(
    name="mvs",
    description="photos only: poses (device or SfM), then dense stereo fused into a mesh",
    unavailable=photos_unavailable, steps=_mvs_steps,
    needs=MachineNeeds("optional", note="PatchMatch on an NVIDIA GPU, else CPU plane sweep"),
)

AUTO = Method(
    name="auto",
    description="fusion when every frame has metric depth and a device pose, else mvs",
    unavailable=lambda facts: None, steps=lambda facts, request: [], picks=_auto_picks,
)

POSES = Method(
    name="poses",
    description="camera poses only (device poses refined, or SfM), to check coverage; no model",
    unavailable=photos_unavailable, steps=lambda facts, request: [Step("poses")], makes_model=False,
)
