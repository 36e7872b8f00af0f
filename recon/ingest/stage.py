"""The ``ingest`` stage: turn the files a phone uploaded into raw/ into the capture's frames.

`scanbridge import` makes a new capture from a path; a capture made over the phone protocol
already exists and holds only raw/ (photos, a video, a zip or an export, byte for byte as they
arrived). This stage reads raw/ with the same readers, writes the normalised frames into a
staging capture inside its run folder, then moves images/ depth/ confidence/ masks/ into the
capture and saves the manifest with the frames last (atomically), so a crash at any point
leaves either the old manifest or the new one, and a re-run starts over cleanly. raw/ is never
modified.

What raw/ is read as: one file by its kind (video, zip, photo); a folder tree as `scanbridge
import` reads a folder (a Stray Scanner or Record3D export, a transforms.json dataset, photos, or
a lone video). Videos and other files beside photos are not used, and the result says so.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.capture import CaptureFolder, Manifest
from core.errors import ConfigError, IngestError, ScanBridgeError
from core.fsio import fsync_dir
from core.ports import CAPTURE_RAW
from core.source_paths import inside_root
from core.stages import StageContext, StageSpec
from recon.ingest.api import detect_folder, detect_source, read_source
from recon.ingest.common import IMAGE_SUFFIXES, VIDEO_SUFFIXES, IngestContext, SourceResult, show_paths_as

FRAME_DIRS = ("images", "depth", "confidence", "masks")
STAGING = "staging"


@dataclass(frozen=True)
class IngestStageConfig:
    target_frames: int = 150  # frames kept from a video or an RGB-D export

    def __post_init__(self) -> None:
        n = self.target_frames
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"expected a positive whole number, got {n!r}", "ingest.target_frames")


def _read_raw(raw: Path, ctx: IngestContext) -> tuple[SourceResult, list[str]]:
    """What raw/ holds, read into ``ctx.capture``; and the files left out, with why."""
    entries = sorted(p for p in raw.iterdir() if not p.name.startswith(".")) if raw.is_dir() else []
    if not entries:
        raise IngestError("no uploaded files to read", raw)
    if len(entries) == 1 and entries[0].is_file():
        inside_root(raw, entries[0].name, entries[0])  # never a link out of raw/, a FIFO or a device
        return read_source(*detect_source(entries[0]), ctx), []
    found = detect_folder(raw)  # an export (Stray Scanner, Record3D, transforms.json), photos, one video
    if found is None:
        raise IngestError("no photos, video or known export among the uploaded files", raw)
    kind, path = found
    result = read_source(kind, path, ctx)
    skipped = []
    if kind == "images":
        for p in entries:
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
                skipped.append(f"{p.name}: a video in a photo set (upload it as its own capture)")
            elif p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(f"{p.name}: not a photo")
    return result, skipped


def _publish(staging: CaptureFolder, capture: CaptureFolder, manifest: Manifest) -> None:
    """Move the staged frame folders into the capture, then save ``manifest`` (last, atomically)."""
    for name in FRAME_DIRS:
        target = capture.root / name
        if target.exists():  # from an earlier, interrupted run of this stage
            shutil.rmtree(target)
        source = staging.root / name
        if source.is_dir():
            os.replace(source, target)
    fsync_dir(capture.root)
    capture.save(manifest)


def run(ctx: StageContext, config: IngestStageConfig) -> dict[str, Any]:
    capture = ctx.capture
    manifest = capture.load()
    if manifest.frames:
        ctx.progress.log(f"the capture already has {len(manifest.frames)} frames; nothing to read")
        return {"frames": len(manifest.frames), "kind": manifest.source.get("kind"), "skipped": []}
    staging_root = ctx.out_dir / STAGING
    shutil.rmtree(staging_root, ignore_errors=True)
    staging_root.mkdir(parents=True)
    staging = CaptureFolder(staging_root)
    inner = IngestContext(staging, ctx.progress.sub(0.0, 0.95), config.target_frames, originals_to_raw=False)
    # Errors name what the phone sent, as raw/NAME (raw/ZIP: MEMBER), never a path on this machine.
    try:
        try:
            result, skipped = _read_raw(capture.raw_dir, inner)
        except OSError as e:
            where = e.filename or capture.raw_dir
            raise IngestError(f"cannot read or write a file ({e.strerror or e})", where) from None
    except ScanBridgeError as e:
        show_paths_as(e, staging_root, "the new frames", "/")
        raise show_paths_as(e, capture.raw_dir, "raw", "/") from None
    if not result.frames:
        raise IngestError("the uploaded files hold no frames", capture.raw_dir)
    ctx.cancel.check()
    for line in skipped:
        ctx.progress.warning(f"not used: {line}")
    source = {**manifest.source, "kind": result.kind, **result.info}
    scale = result.scale if manifest.scale == "unscaled" else manifest.scale
    _publish(staging, capture, replace(manifest, frames=result.frames, scale=scale, source=source))
    shutil.rmtree(staging_root, ignore_errors=True)
    ctx.progress.update(1.0, f"{len(result.frames)} frames ({result.kind})")
    return {"frames": len(result.frames), "kind": result.kind, "scale": scale, "skipped": skipped}


STAGE = StageSpec(
    name="ingest", config_cls=IngestStageConfig, run=run, reads=(), capture_reads=(CAPTURE_RAW,),
    description="read the files uploaded into raw/ into the capture's frames (in place)",
)
