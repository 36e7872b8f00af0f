"""``ingest``: turn any supported source into a normalised capture folder in a workspace.

It detects what the source is, hands it to that kind's reader (which writes into a staging
folder), and publishes the capture only when everything was read, so a failure leaves the
workspace as it was. Readers are imported only when used, so importing this is cheap.
"""

from __future__ import annotations

import importlib
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.capture import MODES, CaptureFolder, Manifest, parse_manifest, utc_now
from core.errors import IngestError, ManifestError, ScanBridgeError, UnsafeSourceError
from core.progress import Progress
from core.source_paths import check_regular_or_dir, inside_root
from core.workspace import Workspace
from recon.ingest.app_exports import APP_READERS, detect_app_export, detect_app_file
from recon.ingest.archive import ArchiveLimits, extract_archive
from recon.ingest.common import (
    IMAGE_SUFFIXES,
    JUNK_DIRS,
    VIDEO_SUFFIXES,
    IngestContext,
    SourceResult,
    copy_file,
    show_paths_as,
)

STAGE = "ingest"
UNPACK_DIR = ".unpacked"  # inside the staging folder; removed before the capture is published
# kind -> "module:function" of its reader, each ``reader(path, ctx) -> SourceResult``.
READERS = {
    "images": "recon.ingest.images:read_image_folder",
    "image": "recon.ingest.images:read_single_image",
    "video": "recon.ingest.video:read_video",
    "transforms": "recon.ingest.nerfstudio:read_transforms",
    "strayscanner": "recon.ingest.strayscanner:read_stray",
    "record3d": "recon.ingest.record3d:read_record3d",
    "idr": "recon.ingest.idr:read_idr",
    **APP_READERS,
}
ARCHIVE_SUFFIXES = (".zip",)


def _reader(kind: str) -> Callable[[Path, IngestContext], SourceResult]:
    module, func = READERS[kind].split(":")
    return getattr(importlib.import_module(module), func)


def _visible_children(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if not p.name.startswith(".") and p.name not in JUNK_DIRS]


def detect_folder(root: Path, depth: int = 0) -> tuple[str, Path] | None:
    """What a folder holds, and the folder (or file) its reader should get; None if unknown.

    A folder with nothing but one sub-folder (as zips and exports often are) is looked into.
    """
    from recon.ingest.idr import is_idr_dataset
    from recon.ingest.photo_files import photo_files
    from recon.ingest.record3d import find_metadata
    from recon.ingest.strayscanner import is_stray_export

    children = _visible_children(root)
    if depth < 3 and len(children) == 1 and children[0].is_dir():
        if children[0].is_symlink() and root.resolve() not in children[0].resolve().parents:
            raise UnsafeSourceError("is a link to a folder outside the source", children[0])
        return detect_folder(children[0], depth + 1)
    if (root / "transforms.json").is_file():
        return "transforms", root
    if is_stray_export(root):
        return "strayscanner", root
    if is_idr_dataset(root):
        return "idr", root
    app_export = detect_app_export(root)
    if app_export is not None:
        return app_export
    if find_metadata(root) is not None:
        return "record3d", root
    if photo_files(root):
        return "images", root
    videos = [p for p in children if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    if len(videos) == 1:
        inside_root(root, videos[0].name, videos[0])  # a link out of the folder is refused
        return "video", videos[0]
    return None


def detect_source(source: Path) -> tuple[str, Path]:
    """(kind, path for its reader) for ``source``; kinds: images, image, video, transforms,
    strayscanner, record3d, idr, zip. Raises IngestError naming ``source`` when it is none of them."""
    source = Path(source)
    if not source.exists():
        raise IngestError("no such file or folder", source)
    check_regular_or_dir(source, source)
    if source.is_dir():
        found = detect_folder(source)
        if found is None:
            if not _visible_children(source):
                raise IngestError("the folder is empty", source)
            raise IngestError(
                "no images, video, transforms.json, Stray Scanner or Record3D export found", source
            )
        return found
    suffix = source.suffix.lower()
    if suffix in ARCHIVE_SUFFIXES:
        return "zip", source
    if suffix in VIDEO_SUFFIXES:
        return "video", source
    if suffix in IMAGE_SUFFIXES:
        return "image", source
    app_file = detect_app_file(source)
    if app_file is not None:
        return app_file
    if suffix == ".json":
        from recon.ingest.record3d import find_metadata

        if find_metadata(source.parent) == source:
            return "record3d", source.parent
        return "transforms", source
    raise IngestError(
        f"unknown kind of source {suffix or '(no extension)'!r}: expected an image folder, a .zip, "
        f"a video ({', '.join(VIDEO_SUFFIXES)}), a transforms.json, or a Stray Scanner / Record3D export",
        source,
    )


def _default_name(source: Path) -> str:
    if source.is_file() and source.suffix.lower() in (".json", ".sfm"):
        return source.parent.name or "capture"
    return source.stem or source.name or "capture"


def _read_archive(archive: Path, ctx: IngestContext, limits: ArchiveLimits) -> SourceResult:
    unpacked = ctx.capture.root / UNPACK_DIR
    try:
        extract_archive(archive, unpacked, limits, ctx.progress.sub(0.0, 0.3))
        found = detect_folder(unpacked)
        if found is None:
            raise IngestError("the archive holds no images, video or known export", archive)
        kind, path = found
        inner = IngestContext(
            ctx.capture, ctx.progress.sub(0.3, 1.0), ctx.target_frames, originals_to_raw=False
        )
        result = _reader(kind)(path, inner)
        copy_file(archive, ctx.capture.raw_dir / archive.name)
    except ScanBridgeError as e:
        raise show_paths_as(e, unpacked, f"{archive}", ": ") from None
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    return SourceResult(
        kind="zip",
        frames=result.frames,
        default_mode=result.default_mode,
        scale=result.scale,
        info={**result.info, "contents": result.kind},
    )


def read_source(kind: str, path: Path, ctx: IngestContext, archive_limits: ArchiveLimits | None = None
                ) -> SourceResult:
    """Read ``path``, of a kind :func:`detect_source` gave, into ``ctx.capture``."""
    if kind == "zip":
        return _read_archive(path, ctx, archive_limits or ArchiveLimits())
    return _reader(kind)(path, ctx)


def ingest(
    source: Path,
    workspace: Workspace,
    *,
    name: str | None = None,
    mode: str | None = None,
    progress: Progress | None = None,
    target_frames: int = 150,
    archive_limits: ArchiveLimits | None = None,
) -> CaptureFolder:
    """Read ``source`` into a new capture in ``workspace`` and return its folder.

    ``mode`` defaults to "rgbd" for RGB-D exports and "import" otherwise; ``target_frames``
    caps the frames kept from videos and RGB-D exports (evenly spread for RGB-D; the sharpest
    per time window for video); ``archive_limits`` bounds what a .zip may expand to. Bad input
    raises one IngestError (or InputError) naming the file or field, and the workspace is left
    unchanged.
    """
    # Absolute from here on: readers, OpenCV and FFmpeg never see a relative (or "proto:") path.
    source = Path(os.path.abspath(Path(source).expanduser()))
    progress = progress or Progress(STAGE)
    if mode is not None and mode not in MODES:
        raise IngestError(f"must be one of {', '.join(MODES)}, got {mode!r}", "mode")
    if isinstance(target_frames, bool) or not isinstance(target_frames, int) or target_frames <= 0:
        raise IngestError(f"must be a positive whole number, got {target_frames!r}", "target_frames")
    kind, path = detect_source(source)
    display_name = (name or "").strip() or _default_name(source)
    capture_id = workspace.new_capture_id(display_name)
    for stale in workspace.clean_stale_staging():
        progress.log(f"removed {stale.name}, left by an import that was stopped")
    progress.log(f"reading {source} as {kind}")
    with workspace.staged_capture(capture_id) as staging:
        ctx = IngestContext(staging, progress, target_frames)
        try:
            result = read_source(kind, path, ctx, archive_limits)
        except ScanBridgeError:
            raise
        except OSError as e:
            raise show_paths_as(
                IngestError(f"cannot read or write a file ({e.strerror or e})", e.filename or source),
                staging.root, "the new capture", "/",
            ) from None
        manifest = Manifest(
            id=capture_id,
            name=display_name,
            created=utc_now(),
            mode=mode or result.default_mode,
            frames=result.frames,
            status="ingested",
            scale=result.scale,
            source={"kind": result.kind, "path": str(source.resolve()), **_finite(result.info)},
        )
        _check_frames(manifest, source)
        staging.save(manifest)
    progress.update(1.0, f"{len(result.frames)} frames")
    progress.log(f"capture {capture_id}: {len(result.frames)} frames ({result.kind})")
    return CaptureFolder(workspace.captures_dir / capture_id)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (a video's NaN frame rate) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _check_frames(manifest: Manifest, source: Path) -> None:
    """Refuse a manifest that could not be read back, naming the source file of the bad frame.

    Readers check their fields themselves; this is the last guard that nothing a reader missed
    (a NaN, a zero focal length) reaches capture.json.
    """
    try:
        parse_manifest(manifest.to_json())
    except ManifestError as e:
        where = f"{source}"
        if e.where and e.where.startswith("frames["):
            index = int(e.where[len("frames["):e.where.index("]")])
            name = manifest.frames[index].source_name
            where = f"{source}: {name}" if name else where
        raise IngestError(f"gives an invalid {e.where} ({e.reason})", where) from None
