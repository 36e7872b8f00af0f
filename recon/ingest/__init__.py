"""Ingest: turn image folders, zips, videos, nerfstudio datasets, Stray Scanner and Record3D
exports into a normalised capture folder (docs/capture-format.md).

    from recon.ingest import ingest
    capture = ingest(Path("photos.zip"), Workspace(), name="mug")
"""

from recon.ingest.api import detect_source, ingest
from recon.ingest.archive import ArchiveLimits

__all__ = ["ArchiveLimits", "detect_source", "ingest"]
