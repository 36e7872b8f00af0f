"""open3d's errors as ours: its RuntimeErrors carry terminal colour codes, a C++ signature and a
source path; a user sees one ReconstructionError naming the frame or view instead."""

from __future__ import annotations

import re

from core.errors import ReconstructionError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# "[Open3D Error] (void open3d::...(...)) /root/Open3D/cpp/.../File.cpp:186: the message"
_PREFIX = re.compile(r"^\s*\[Open3D [A-Za-z]+\]\s*(\(.*\))?\s*\S+:\d+:\s*", re.DOTALL)
NO_BLOCK_TOUCHED = "No block is touched"  # sparse depth: no pixel on open3d's sampling stride
MAX_DETAIL = 160


def library_detail(error: BaseException) -> str:
    """The library's own sentence, without escape codes, C++ signature or source path."""
    text = _ANSI.sub("", str(error)).strip()
    text = _PREFIX.sub("", text, count=1).strip()
    first = text.split(". ")[0].split("\n")[0].strip().rstrip(".")
    if not first or "::" in first or "/" in first:
        return "internal error"
    return first[:MAX_DETAIL]


def touched_no_block(error: BaseException) -> bool:
    """True for open3d's refusal to integrate a depth map whose sampled pixels are all empty."""
    return NO_BLOCK_TOUCHED in str(error)


def fusion_error(error: BaseException, what: str, where: str) -> ReconstructionError:
    """``what`` failed in open3d for ``where`` (a frame or view name), as our error."""
    return ReconstructionError(f"{what} failed inside open3d ({library_detail(error)})", where)
