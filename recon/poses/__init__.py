"""Camera poses: device poses kept (with a triangulated sparse cloud) or pycolmap SfM with
automatic retries and a reason for every frame left out. See recon.poses.stage.

    from core.stages import execute_stage
    outcome = execute_stage(capture, "poses", {"matcher": "auto"})
    outcome.result  # registered, total, fraction, attempts, unregistered {frame: reason}
"""

from recon.poses.config import PosesConfig
from recon.poses.evaluate import PoseErrors, compare_poses, umeyama

__all__ = ["PoseErrors", "PosesConfig", "compare_poses", "umeyama"]
