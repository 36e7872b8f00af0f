"""Binary glTF 2.0 (.glb): one mesh, one PBR material whose base colour is the baked texture."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.fsio import atomic_write_bytes
from recon.export.mesh_data import TexturedMesh
from recon.export.texture_io import (
    IMAGE_FORMATS,
    JPEG_QUALITY,
    encode_texture,
    fit_texture,
    texture_format_name,
)

_FLOAT, _UINT = 5126, 5125  # glTF componentType
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT = 9729, 9987, 10497


def write_glb(
    mesh: TexturedMesh,
    path: Path,
    *,
    name: str = "Model",
    texture_format: str = "png",
    texture_quality: int = JPEG_QUALITY,
    max_texture_size: int | None = None,
    extras: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``mesh`` as a self-contained .glb at ``path`` (atomically) and return ``path``.

    glTF is Y up, metres, counter-clockwise front faces: the same as TexturedMesh. Vertices are
    split at UV seams when uvs are per corner, because glTF has one uv per vertex.
    """
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise ConfigError(f"a GLB file name must end in .glb, got {path.name!r}", "path")
    texture_format = texture_format_name(texture_format)
    mesh.validate()
    texture = mesh.texture if max_texture_size is None else fit_texture(mesh.texture, max_texture_size)
    image = encode_texture(texture, texture_format, texture_quality)
    atomic_write_bytes(path, glb_bytes(mesh, image, IMAGE_FORMATS[texture_format][1], name, extras))
    return path


def glb_bytes(mesh: TexturedMesh, image: bytes, mime_type: str, name: str,
              extras: Mapping[str, Any] | None = None) -> bytes:
    """The .glb file for ``mesh`` with ``image`` (encoded PNG/JPEG bytes) as its base colour;
    ``extras`` (JSON-like) go into the asset's extras under "scanbridge"."""
    vertices, faces, uvs, normals = mesh.split_at_uv_seams()  # (K,3) (M,3) (K,2) (K,3)
    gl_uvs = np.column_stack([uvs[:, 0], 1.0 - uvs[:, 1]]).astype(np.float32)  # glTF v points down
    blobs = [
        vertices.astype("<f4").tobytes(),
        normals.astype("<f4").tobytes(),
        gl_uvs.astype("<f4").tobytes(),
        faces.astype("<u4").tobytes(),
        image,
    ]
    views, offset = [], 0
    targets = [_ARRAY_BUFFER, _ARRAY_BUFFER, _ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER, None]
    for blob, target in zip(blobs, targets, strict=True):
        view = {"buffer": 0, "byteOffset": offset, "byteLength": len(blob)}
        if target is not None:
            view["target"] = target
        views.append(view)
        offset += _pad4(len(blob))
    k = len(vertices)
    doc = {
        "asset": {"version": "2.0", "generator": "ScanBridge",
                  **({"extras": {"scanbridge": dict(extras)}} if extras else {})},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"name": name, "primitives": [{
            "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2},
            "indices": 3, "material": 0, "mode": 4,
        }]}],
        "accessors": [
            {"bufferView": 0, "componentType": _FLOAT, "count": k, "type": "VEC3",
             "min": vertices.min(axis=0).tolist(), "max": vertices.max(axis=0).tolist()},
            {"bufferView": 1, "componentType": _FLOAT, "count": k, "type": "VEC3"},
            {"bufferView": 2, "componentType": _FLOAT, "count": k, "type": "VEC2"},
            {"bufferView": 3, "componentType": _UINT, "count": int(faces.size), "type": "SCALAR"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": offset}],
        "materials": [{"name": f"{name}_material", "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0}, "metallicFactor": 0.0, "roughnessFactor": 0.9}}],
        "textures": [{"source": 0, "sampler": 0}],
        "samplers": [{"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR,
                      "wrapS": _REPEAT, "wrapT": _REPEAT}],
        "images": [{"bufferView": 4, "mimeType": mime_type}],
    }
    json_chunk = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    json_chunk += b" " * (_pad4(len(json_chunk)) - len(json_chunk))
    bin_chunk = b"".join(blob + b"\0" * (_pad4(len(blob)) - len(blob)) for blob in blobs)
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    return b"".join([
        struct.pack("<4sII", b"glTF", 2, total),
        struct.pack("<I4s", len(json_chunk), b"JSON"), json_chunk,
        struct.pack("<I4s", len(bin_chunk), b"BIN\0"), bin_chunk,
    ])


def _pad4(n: int) -> int:
    return (n + 3) & ~3
