"""LZFSE-compressed raw maps (Record3D's ``.depth`` float32 and ``.conf`` uint8), decoded safely.

Before anything is decompressed, the stream's block headers are walked and the sizes they declare
are added up: a stream that declares more than the map needs (a decompression bomb), a block
kind Apple's encoder never writes, or a header that runs past the file is refused.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from core.errors import IngestError

END = b"bvx$"
RAW = b"bvx-"  # n_raw_bytes, then the bytes
LZVN = b"bvxn"  # n_raw_bytes, n_payload_bytes, payload
V2 = b"bvx2"  # n_raw_bytes, three packed 64-bit fields, then frequency tables and payload
MAX_MAP_FILE_BYTES = 256 << 20


def declared_size(data: bytes, where: str | Path) -> int:
    """The decompressed size an LZFSE stream declares, summed over its blocks."""
    pos = total = 0
    while True:
        magic = data[pos:pos + 4]
        if magic == END:
            return total
        if len(data) < pos + 8:
            raise IngestError("truncated LZFSE stream (no end-of-stream block)", where)
        (n_raw,) = struct.unpack_from("<I", data, pos + 4)
        if magic == RAW:
            size = 8 + n_raw
        elif magic == LZVN:
            if len(data) < pos + 12:
                raise IngestError("truncated LZFSE block header", where)
            size = 12 + struct.unpack_from("<I", data, pos + 8)[0]
        elif magic == V2:
            if len(data) < pos + 32:
                raise IngestError("truncated LZFSE block header", where)
            f0, f1, f2 = struct.unpack_from("<3Q", data, pos + 8)
            literal_payload = (f0 >> 20) & 0xFFFFF
            lmd_payload = (f1 >> 40) & 0xFFFFF
            header_size = f2 & 0xFFFFFFFF
            if header_size < 32:
                raise IngestError("corrupt LZFSE block header", where)
            size = header_size + literal_payload + lmd_payload
        else:
            raise IngestError(f"not an LZFSE stream (block starts with {magic!r})", where)
        total += n_raw
        pos += size
        if pos > len(data):
            raise IngestError("truncated LZFSE block", where)


def read_lzfse_map(path: Path, shape: tuple[int, int], dtype: np.dtype | type, where: str | Path | None = None
                   ) -> np.ndarray:
    """The [H, W] = ``shape`` map of ``dtype`` in the LZFSE file ``path``."""
    import liblzfse  # pyliblzfse

    shown = where if where is not None else path
    expected = shape[0] * shape[1] * np.dtype(dtype).itemsize
    try:
        size = path.stat().st_size
        if size > MAX_MAP_FILE_BYTES:
            raise IngestError(f"is {size} bytes, too large for a {shape[1]}x{shape[0]} map", shown)
        data = path.read_bytes()
    except OSError as e:
        raise IngestError(f"cannot read ({e.strerror or e})", shown) from None
    declared = declared_size(data, shown)
    if declared != expected:
        raise IngestError(f"holds {declared} bytes, a {shape[1]}x{shape[0]} map of {np.dtype(dtype).name} "
                          f"needs {expected}", shown)
    try:
        raw = liblzfse.decompress(data)
    except (liblzfse.error, ValueError, MemoryError) as e:
        raise IngestError(f"corrupt LZFSE data ({e})", shown) from None
    if len(raw) != expected:
        raise IngestError(f"decompresses to {len(raw)} bytes, expected {expected}", shown)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)
