"""Captures that hold no scan: a model made from a prompt, or from one photo (generation/create).

The CLI, the server and the desktop all make them here, so a generated asset lives in the workspace
like any capture (its runs/, its exports/, its share page) and goes through the same job queue.
The photo is copied in (never linked) under a fixed name, after checking it is an image of a sane
size; the capture's scale is metric because the create stage sizes the model in metres itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.capture import Camera, CaptureFolder, Frame, Manifest, utc_now
from core.errors import InputError
from core.jobs_schema import Step
from core.workspace import Workspace

SOURCE_KIND = "generated"
PHOTO_SUFFIXES = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp"}
MAX_PHOTO_PIXELS = 50_000_000
MAX_PHOTO_BYTES = 100 * 1024 * 1024


def _photo_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file() or path.is_symlink():
        raise InputError("no such photo (a regular file is needed)", path)
    if path.stat().st_size > MAX_PHOTO_BYTES:
        raise InputError(f"the photo is larger than {MAX_PHOTO_BYTES // 2**20} MiB", path)
    try:
        with Image.open(path) as img:
            width, height = img.size
            img.verify()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise InputError(f"not a photo this program reads: {e}", path) from None
    if width < 8 or height < 8 or width * height > MAX_PHOTO_PIXELS:
        raise InputError(f"unusable photo size {width}x{height}", path)
    return width, height


def new_generated_capture(workspace: Workspace, name: str, photo: Path | None = None) -> CaptureFolder:
    """A new capture for a generated model: no frames (from a prompt) or one photo frame."""
    name = " ".join(str(name).split())[:80] or "Generated"
    frames: tuple[Frame, ...] = ()
    suffix = ""
    if photo is not None:
        photo = Path(photo)
        suffix = PHOTO_SUFFIXES.get(photo.suffix.lower(), "")
        if not suffix:
            raise InputError(f"expected a photo ({', '.join(sorted(PHOTO_SUFFIXES))})", photo)
        width, height = _photo_size(photo)
        focal = 1.2 * max(width, height)  # a typical phone lens; only used to show the photo
        camera = Camera(width, height, focal, focal, width / 2, height / 2)
        frames = (Frame("photo", camera, image=f"images/photo.{suffix}", source_name=photo.name[:200]),)
    capture_id = workspace.new_capture_id(name)
    with workspace.staged_capture(capture_id) as staging:
        if photo is not None:
            staging.images_dir.mkdir(parents=True)
            shutil.copyfile(photo, staging.images_dir / f"photo.{suffix}")
        staging.save(Manifest(id=capture_id, name=name, created=utc_now(), mode="import", frames=frames,
                              source={"kind": SOURCE_KIND}, status="ingested", scale="metric"))
    return workspace.capture(capture_id)


def create_overrides(prompt: str = "", options: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The per-stage overrides of a ``create`` method job (core.submit.method_job)."""
    return {"create": {**dict(options or {}), **({"prompt": prompt} if prompt else {})}}


def video_job(options: Mapping[str, Any] | None = None) -> list[Step]:
    """The steps that render a capture's model into exports/clip.mp4 (generation/video)."""
    return [Step("video", dict(options or {})), Step("video-publish", {})]
