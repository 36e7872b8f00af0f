"""RGB-D fusion: TSDF integration of posed depth frames, one at a time (recon.fusion.tsdf), and
the ``fusion`` pipeline stage over a capture folder (recon.fusion.stage)."""

from recon.fusion.tsdf import PRESETS, FusedMesh, FusedPoints, FusionConfig, TSDFFusion, preset

__all__ = ["PRESETS", "FusedMesh", "FusedPoints", "FusionConfig", "TSDFFusion", "preset"]
