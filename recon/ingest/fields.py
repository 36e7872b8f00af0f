"""Checked reads of the numbers and JSON files that an app's export holds (Polycam, .r3d, Meshroom).

Every value comes from a file a user or a phone sent: each check names the file and the field
(``where``) in one IngestError, and nothing that is not a finite number in range gets through.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from core.errors import IngestError, UnsafeSourceError

MAX_JSON_BYTES = 64 << 20  # a camera file or an .sfm of 100k views is far below this
MAX_JSON_NESTING = 64
MAX_PIXELS_PER_SIDE = 65536


def _nesting(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json_object(path: Path, shown: str | Path | None = None) -> dict[str, Any]:
    """The JSON object in ``path`` (a regular file, bounded in size and nesting; NaN and Infinity
    refused). Errors name ``shown`` (default: ``path``)."""
    where = shown if shown is not None else path
    try:
        st = os.stat(path)
    except OSError as e:
        raise IngestError(f"cannot read ({e.strerror or e})", where) from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeSourceError("is not a regular file", where)
    if st.st_size > MAX_JSON_BYTES:
        raise IngestError(f"is {st.st_size} bytes, more than {MAX_JSON_BYTES} for a JSON file", where)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise IngestError(f"cannot read as UTF-8 text ({e})", where) from None
    if _nesting(text) > MAX_JSON_NESTING:
        raise IngestError(f"nests deeper than {MAX_JSON_NESTING} levels", where)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise IngestError(f"not valid JSON (line {e.lineno}, column {e.colno})", where) from None
    except (ValueError, RecursionError) as e:
        raise IngestError(f"not valid JSON ({e})", where) from None
    if not isinstance(data, dict):
        raise IngestError("expected a JSON object", where)
    return data


def finite(value: Any, where: str, *, lo: float = -math.inf, hi: float = math.inf,
           strings: bool = False) -> float:
    """``value`` as a finite float within [lo, hi]; numeric strings too when ``strings``
    (Meshroom writes every number as a string)."""
    v = value
    if strings and isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise IngestError(f"expected a number, got {value!r}", where) from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise IngestError(f"expected a number, got {value!r}", where)
    try:
        f = float(v)
    except OverflowError:
        raise IngestError("number out of range", where) from None
    if not math.isfinite(f) or not lo <= f <= hi:
        shown = value if not isinstance(value, int) or abs(value) < 10**30 else "a huge number"
        raise IngestError(f"expected a finite number in [{lo:g}, {hi:g}], got {shown!r}", where)
    return f


def positive(value: Any, where: str, *, strings: bool = False) -> float:
    f = finite(value, where, strings=strings)
    if f <= 0:
        raise IngestError(f"expected a positive number, got {value!r}", where)
    return f


def pixels(value: Any, where: str, *, strings: bool = False) -> int:
    """A positive whole number of pixels (at most MAX_PIXELS_PER_SIDE)."""
    f = finite(value, where, lo=1, hi=MAX_PIXELS_PER_SIDE, strings=strings)
    if f != int(f):
        raise IngestError(f"expected a whole number of pixels, got {value!r}", where)
    return int(f)


def numbers(value: Any, count: int, where: str, *, strings: bool = False) -> list[float]:
    """Exactly ``count`` finite numbers."""
    if not isinstance(value, list) or len(value) != count:
        raise IngestError(f"expected a list of {count} numbers", where)
    return [finite(v, f"{where}[{i}]", strings=strings) for i, v in enumerate(value)]
