"""Which image files in a folder are photos, and which are depth, confidence or mask maps.

Apps save their maps beside the photos with image suffixes: Polycam's ``keyframes/depth/*.png``
and ``keyframes/confidence/*.png``, Stray Scanner's ``depth/`` and ``confidence/``, Object
Capture's ``IMG_0001_depth.TIF``, an ARKit frame's ``arkit_depth.png``, nerfstudio's
``depths_2/`` and ``masks/``. Such a map is known by its folder, by a word in its name, or by its
pixels (one channel of 16-bit integers or floats is never a photo).
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from recon.ingest.common import IMAGE_SUFFIXES, files_with_suffix

MAP_FOLDER = re.compile(r"^(depths?|disparit(y|ies)|conf|confidences?|masks?)(_\d+)?$", re.IGNORECASE)
MAP_WORDS = frozenset({"depth", "depths", "disparity", "conf", "confidence", "mask", "masks"})
# Suffixes whose files may hold one channel of 16-bit or float samples.
RAW_MAP_SUFFIXES = (".png", ".tif", ".tiff")
MAP_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;16S"})


def _name_says_map(path: Path, root: Path) -> bool:
    folders = path.relative_to(root).parts[:-1]
    if any(MAP_FOLDER.match(part) for part in folders):
        return True
    words = re.split(r"[_\-. ]+", path.stem.lower())
    return any(w in MAP_WORDS for w in words)


def _pixels_say_map(path: Path) -> bool:
    """Only the header is read: a one-channel 16-bit or float image."""
    if path.suffix.lower() not in RAW_MAP_SUFFIXES:
        return False
    try:
        with Image.open(path) as img:
            return img.mode in MAP_MODES
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False  # not ours to judge: the photo reader names the broken file


def is_auxiliary_map(path: Path, root: Path) -> bool:
    """True when ``path`` (under ``root``) is a depth, confidence or mask map, not a photo."""
    return _name_says_map(path, root) or _pixels_say_map(path)


def split_photos(root: Path) -> tuple[list[Path], list[Path]]:
    """(photos, maps): the visible image files under ``root``, naturally sorted, split in two."""
    photos: list[Path] = []
    maps: list[Path] = []
    for p in files_with_suffix(root, IMAGE_SUFFIXES):
        (maps if is_auxiliary_map(p, root) else photos).append(p)
    return photos, maps


def photo_files(root: Path) -> list[Path]:
    """The photos under ``root``: every visible image file that is not a depth, confidence or mask map."""
    return split_photos(root)[0]


def maps_left_out(maps: list[Path]) -> str:
    """The log line that says which map files were not taken as photos."""
    shown = ", ".join(p.name for p in maps[:5]) + (" ..." if len(maps) > 5 else "")
    return f"left out {len(maps)} depth, confidence or mask map(s), not photos: {shown}"
