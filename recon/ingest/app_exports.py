"""Detection of apps' own export layouts: Polycam raw exports, Record3D .r3d (zipped or not),
COLMAP models, Meshroom's cameras.sfm and Apple Object Capture folders. api.py asks here before
it falls back to photos."""

from __future__ import annotations

from pathlib import Path

# kind -> "module:function" of its reader, each ``reader(path, ctx) -> SourceResult``.
APP_READERS = {
    "polycam": "recon.ingest.polycam:read_polycam",
    "r3d": "recon.ingest.r3d:read_r3d",
    "colmap": "recon.ingest.colmap:read_colmap",
    "meshroom": "recon.ingest.meshroom:read_meshroom",
    "object-capture": "recon.ingest.object_capture:read_object_capture",
}
APP_FILE_SUFFIXES = {".r3d": "r3d", ".sfm": "meshroom"}


def detect_app_export(root: Path) -> tuple[str, Path] | None:
    """(kind, path for its reader) when the folder ``root`` is one of these apps' exports."""
    from recon.ingest.colmap import is_colmap_model
    from recon.ingest.meshroom import sfm_file
    from recon.ingest.object_capture import is_object_capture
    from recon.ingest.polycam import is_polycam_export
    from recon.ingest.r3d import is_r3d_folder

    if is_polycam_export(root):
        return "polycam", root
    if is_r3d_folder(root):
        return "r3d", root
    if is_colmap_model(root):
        return "colmap", root
    sfm = sfm_file(root)
    if sfm is not None:
        return "meshroom", sfm
    if is_object_capture(root):
        return "object-capture", root
    return None


def detect_app_file(path: Path) -> tuple[str, Path] | None:
    """(kind, path) for a single file one of these apps writes: an .r3d, or a Meshroom .sfm."""
    kind = APP_FILE_SUFFIXES.get(path.suffix.lower())
    return (kind, path) if kind else None
