"""Files of an app's export, taken only from inside its root and copied (never linked) into a capture."""

from __future__ import annotations

from pathlib import Path

from core.fsio import atomic_writer
from core.source_paths import copy_into, inside_root
from recon.ingest.common import is_hidden

AS_IS_FORMATS = ("JPEG", "MPO", "PNG")  # what every later stage reads; others are converted


def source_file(root: Path, path: Path, where: str | Path | None = None) -> Path:
    """``path`` (found under ``root``) checked by the trust boundary: a regular file inside
    ``root`` even after symlinks, else UnsafeSourceError naming ``where`` (default ``path``)."""
    rel = path.relative_to(root).as_posix()
    return inside_root(root, rel, where if where is not None else path)


def copy_tree_into(src_root: Path, dst_root: Path) -> int:
    """Copy every visible regular file under ``src_root`` to the same place under ``dst_root``;
    returns how many. A symlink that leads outside ``src_root`` is refused."""
    n = 0
    for p in sorted(src_root.rglob("*")):
        if p.is_dir() or is_hidden(p, src_root):
            continue
        copy_into(source_file(src_root, p), dst_root / p.relative_to(src_root))
        n += 1
    return n


def copy_photo(src: Path, dst_stem: Path) -> tuple[Path, tuple[int, int]]:
    """``src`` into ``dst_stem`` + its suffix when it is a JPEG or PNG, else decoded and written as
    ``dst_stem``.jpg (HEIC, TIFF, WebP...), pixels as stored (a posed photo's intrinsics are for
    them); returns the written path and the picture's (width, height)."""
    from recon.ingest.images import open_image

    with open_image(src) as img:
        size = img.size
        if img.format in AS_IS_FORMATS:
            return copy_into(src, dst_stem.with_name(dst_stem.name + src.suffix.lower())), size
        dst = dst_stem.with_name(dst_stem.name + ".jpg")
        with atomic_writer(dst) as f:
            img.convert("RGB").save(f, format="JPEG", quality=95)
    return dst, size
