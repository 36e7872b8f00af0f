"""Image folders (and single images): EXIF orientation applied, names kept, intrinsics from EXIF.

A JPEG or PNG that needs no rotation is copied into images/ byte for byte; anything else (a
rotated photo, HEIC, TIFF, WebP) is decoded, turned upright and written as JPEG or PNG.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from core.capture import Camera, Frame
from core.errors import IngestError, ScanBridgeError
from core.fsio import atomic_writer
from core.source_paths import open_regular
from recon.ingest.common import (
    IngestContext,
    RawMirror,
    SourceResult,
    camera_from_35mm,
    copy_file,
    default_camera,
    frame_id,
    unique_name,
)

EXIF_ORIENTATION = 0x0112
EXIF_IFD = 0x8769
EXIF_FOCAL_35MM = 0xA405
KEEP_AS_IS_FORMATS = ("JPEG", "MPO", "PNG")  # MPO: phone JPEGs with extra pictures
# Decoded frames are written as JPEG when they came from a lossy format, else as PNG.
LOSSY_FORMATS = ("JPEG", "HEIF", "AVIF", "WEBP", "MPO")


def _register_heif() -> None:
    """Let Pillow read HEIC when the optional pillow-heif plugin is installed."""
    with contextlib.suppress(ImportError):
        from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

        register_heif_opener()


def open_image(path: Path) -> Image.Image:
    """Open and fully decode ``path``; a file Pillow cannot read is one IngestError naming it."""
    if path.suffix.lower() in (".heic", ".heif"):
        _register_heif()
    try:
        # Opened here (a FIFO or device swapped in is refused, never read) and fully decoded at once.
        with warnings.catch_warnings(), open_regular(path, path) as f:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(f)
            img.load()
    except ScanBridgeError:
        raise
    except UnidentifiedImageError:
        hint = " (HEIC needs the pillow-heif package)" if path.suffix.lower() in (".heic", ".heif") else ""
        raise IngestError(f"not an image this program can read{hint}", path) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise IngestError(f"declares more pixels than a photo may have ({e})", path) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise IngestError(f"corrupt or truncated image ({e})", path) from None
    except Exception as e:  # noqa: BLE001 - a hostile file can trip any error inside a decoder
        raise IngestError(f"corrupt image ({type(e).__name__}: {e})", path) from None
    return img


def exif_focal_35mm(img: Image.Image) -> float | None:
    """FocalLengthIn35mmFilm from EXIF, or None when absent or zero."""
    try:
        value = img.getexif().get_ifd(EXIF_IFD).get(EXIF_FOCAL_35MM)
        f = float(value) if value is not None else None
    except (TypeError, ValueError, OSError):
        return None
    return f if f and f > 0 else None


def camera_for(img: Image.Image, width: int, height: int) -> Camera:
    """Intrinsics from the EXIF 35 mm focal length when present, else the default field of view."""
    f35 = exif_focal_35mm(img)
    return camera_from_35mm(width, height, f35) if f35 else default_camera(width, height)


def _save_upright(img: Image.Image, dst: Path) -> None:
    upright = ImageOps.exif_transpose(img)
    with atomic_writer(dst) as f:
        if dst.suffix == ".jpg":
            upright.convert("RGB").save(f, format="JPEG", quality=95)
        else:
            if upright.mode not in ("L", "RGB", "RGBA", "I;16"):
                upright = upright.convert("RGBA" if "A" in upright.getbands() else "RGB")
            upright.save(f, format="PNG")


def suffix_for(image_format: str | None, suffix: str) -> str:
    """The file's own suffix when it says what the content is, else the content's (PNG named .jpg)."""
    is_png = image_format == "PNG"
    if is_png == (suffix.lower() == ".png") and suffix.lower() in (".png", ".jpg", ".jpeg"):
        return suffix
    return ".png" if is_png else ".jpg"


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1..8); 1 when absent or unreadable."""
    try:
        value = img.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - malformed EXIF is common and never fatal
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def ingest_image_files(files: list[Path], root: Path, ctx: IngestContext) -> list[Frame]:
    """Write ``files`` (relative to ``root``) into images/ (and raw/), one frame each, in order."""
    cap = ctx.capture
    taken: set[str] = set()
    frames: list[Frame] = []
    raw = RawMirror(root, cap.raw_dir) if ctx.originals_to_raw else None
    for i, src in enumerate(files):
        img = open_image(src)
        with img:
            orientation = _orientation(img)
            upright_size = img.size if orientation in (1, 2, 3, 4) else img.size[::-1]
            camera = camera_for(img, *upright_size)
            if img.format in KEEP_AS_IS_FORMATS and orientation == 1:
                name = unique_name(src.stem + suffix_for(img.format, src.suffix), taken)
                copy_file(src, cap.images_dir / name)
            else:
                ext = ".jpg" if img.format in LOSSY_FORMATS else ".png"
                name = unique_name(src.stem + ext, taken)
                try:
                    _save_upright(img, cap.images_dir / name)
                except (OSError, ValueError, SyntaxError, TypeError, KeyError) as e:
                    raise IngestError(f"cannot turn this image upright ({e})", src) from None
        if raw is not None:
            raw.add(src, src.relative_to(root).as_posix())
        frames.append(Frame(id=frame_id(i), camera=camera, image=f"images/{name}", source_name=src.name))
        ctx.progress.update((i + 1) / len(files), f"image {i + 1}/{len(files)}: {src.name}")
    return frames


def read_image_folder(root: Path, ctx: IngestContext) -> SourceResult:
    """All images under ``root`` (sub-folders included, hidden ones skipped), naturally sorted."""
    from recon.ingest.photo_files import maps_left_out, split_photos

    files, maps = split_photos(root)
    if not files:
        raise IngestError("no images found (jpg, jpeg, png, heic, tif)", root)
    if maps:
        ctx.progress.log(maps_left_out(maps))
    return SourceResult(
        kind="images", frames=tuple(ingest_image_files(files, root, ctx)), info={"image_count": len(files)}
    )


def read_single_image(path: Path, ctx: IngestContext) -> SourceResult:
    return SourceResult(
        kind="images", frames=tuple(ingest_image_files([path], path.parent, ctx)), info={"image_count": 1}
    )
