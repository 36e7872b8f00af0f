"""The export options a phone may give when it finishes a capture (``POST …/finish`` with
``{"export": {...}}``): formats, texture format and quality, and the PLY/OBJ up axis, checked
here so a bad value is one 400 naming its field before anything is queued. The server never
imports recon: the names are the export stage's (recon.export), and a test keeps them equal.
"""

from __future__ import annotations

from typing import Any

from capture_server.errors import RequestError

EXPORT_FORMATS = ("usdz", "glb", "obj", "ply")
TEXTURE_FORMATS = ("png", "jpeg")
UP_AXES = ("y", "z")
OPTION_NAMES = ("formats", "texture_format", "texture_quality", "up")


def _choice(value: Any, known: tuple[str, ...], field: str) -> str:
    if not isinstance(value, str) or value not in known:
        raise RequestError(f"must be one of {', '.join(known)}, got {str(value)[:40]!r}", field)
    return value


def export_options(options: Any) -> dict[str, Any]:
    """The export stage's options from a finish request's ``export`` object."""
    if not isinstance(options, dict):
        raise RequestError("expected an object of export options", "export")
    unknown = [k for k in options if k not in OPTION_NAMES]
    if unknown:
        raise RequestError(f"unknown option {str(unknown[0])[:40]!r} (known: {', '.join(OPTION_NAMES)})",
                           "export")
    out: dict[str, Any] = {}
    if "formats" in options:
        formats = options["formats"]
        if not isinstance(formats, list) or not formats or len(formats) > len(EXPORT_FORMATS):
            raise RequestError(f"expected a list of some of {', '.join(EXPORT_FORMATS)}", "export.formats")
        chosen = [_choice(f, EXPORT_FORMATS, f"export.formats[{i}]") for i, f in enumerate(formats)]
        if len(set(chosen)) != len(chosen):
            raise RequestError("lists a format twice", "export.formats")
        out["formats"] = chosen
    if "texture_format" in options:
        out["texture_format"] = _choice(options["texture_format"], TEXTURE_FORMATS, "export.texture_format")
    if "texture_quality" in options:
        quality = options["texture_quality"]
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
            raise RequestError(f"expected a whole number 1..100, got {str(quality)[:40]!r}",
                               "export.texture_quality")
        out["texture_quality"] = quality
    if "up" in options:
        out["up"] = _choice(options["up"], UP_AXES, "export.up")
    return out
