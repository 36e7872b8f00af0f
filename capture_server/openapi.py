"""The OpenAPI 3.1 description of the phone protocol, served at ``/v1/openapi.json``.

docs/protocol.md is the prose version; tests check that every route of the app appears here.
"""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _resp(description: str, schema: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    if headers:
        out["headers"] = {h: {"schema": {"type": "string"}, "description": d} for h, d in headers.items()}
    return out


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "bad input; `where` names the field, header or file", 401: "missing, unknown or revoked token",
        404: "no such capture, upload or result", 409: "conflicts with the current state",
        410: "the upload expired or was removed", 412: "unsupported Tus-Resumable version",
        413: "over the server's size limit", 415: "wrong Content-Type", 423: "another request is writing",
        429: "too many wrong pairing codes (see Retry-After)", 460: "checksum mismatch (tus)",
        507: "the server's disk is full; nothing from the request was kept",
    }
    return {str(c): _resp(text[c], _ERROR) for c in codes}


def _tus_header(name: str, description: str, required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "description": description,
            "schema": {"type": "string"}}


_CAPTURE_PATH = [{"name": "capture_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_UPLOAD_PATH = [*_CAPTURE_PATH, {"name": "upload_id", "in": "path", "required": True,
                                 "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}]
_TUS = _tus_header("Tus-Resumable", "always 1.0.0")


def openapi_schema(max_upload_bytes: int) -> dict[str, Any]:
    capture = {"$ref": "#/components/schemas/Capture"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ScanBridge phone protocol", "version": "1",
            "description": "Pair with a one-time code, create a capture, upload its files with tus 1.0, "
                           "finish it, follow processing, download results. See docs/protocol.md.",
        },
        "components": {
            "securitySchemes": {"device": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"}, "type": {"type": "string"},
                    "reason": {"type": "string"}, "where": {"type": ["string", "null"]}}},
                "Capture": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"},
                    "mode": {"enum": ["guided", "free", "import", "rgbd"]},
                    "status": {"enum": ["new", "receiving", "ingested", "processing", "processed", "failed"]},
                    "created": {"type": "string"}, "frames": {"type": "integer"},
                    "source": {"type": "object"}}},
                "Job": {"type": ["object", "null"], "properties": {
                    "id": {"type": "integer"},
                    "state": {"enum": ["queued", "running", "done", "failed", "cancelled"]},
                    "error": {"type": ["string", "null"]},
                    "progress": {"type": "object"}, "steps": {"type": "array"},
                    "size": {"type": ["object", "null"], "properties": {
                        "scale": {"type": "string"}, "estimated": {"type": "boolean"},
                        "longest_side_m": {"type": ["number", "null"]}}}}},
            },
        },
        "security": [{"device": []}],
        "paths": {
            "/v1/info": {"get": {
                "summary": "Discovery info (public)", "security": [],
                "responses": {"200": _resp("server identity", {"type": "object", "properties": {
                    "service": {"const": "scanbridge"}, "protocol_version": {"type": "integer"},
                    "server_id": {"type": "string"}, "name": {"type": "string"},
                    "fingerprint": {"type": "string",
                                    "description": "SHA-256 of the TLS certificate (DER), hex"},
                    "uploads": {"type": "object"}}})},
            }},
            "/v1/openapi.json": {"get": {"summary": "This document (public)", "security": [],
                                         "responses": {"200": _resp("OpenAPI 3.1", {"type": "object"})}}},
            "/v1/pair": {"post": {
                "summary": "Trade a one-time pairing code for a device token (public, rate-limited)",
                "security": [],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["code", "name"],
                    "properties": {"code": {"type": "string"},
                                   "name": {"type": "string", "maxLength": 100}}}}}},
                "responses": {"200": _resp("paired", {"type": "object", "required": ["token", "server_id"],
                                                      "properties": {"token": {"type": "string"},
                                                                     "server_id": {"type": "string"},
                                                                     "device_id": {"type": "string"},
                                                                     "fingerprint": {"type": "string"}}}),
                              **_errors(400, 401, 413, 429)},
            }},
            "/v1/captures": {
                "get": {"summary": "List captures",
                        "responses": {"200": _resp("captures", {"type": "object", "properties": {
                            "captures": {"type": "array", "items": capture}}}), **_errors(401)}},
                "post": {
                    "summary": "Create a capture in state receiving",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["mode"], "properties": {
                            "mode": {"enum": ["guided", "free", "import", "rgbd"]},
                            "name": {"type": "string", "maxLength": 200},
                            "device": {"type": "object",
                                       "description": "model, os, app, ... (short values)"}}}}}},
                    "responses": {"201": _resp("created", capture), **_errors(400, 401, 413)},
                },
            },
            "/v1/captures/{capture_id}": {"get": {
                "summary": "Status: files received, unfinished uploads, latest job and its progress, results",
                "parameters": _CAPTURE_PATH,
                "responses": {"200": _resp("status", {"allOf": [capture, {"type": "object", "properties": {
                    "files": {"type": "array"}, "uploads": {"type": "array"},
                    "job": {"$ref": "#/components/schemas/Job"}, "results": {"type": "array"}}}]}),
                    **_errors(401, 404)},
            }},
            "/v1/captures/{capture_id}/finish": {"post": {
                "summary": "Close the capture to uploads; queue processing per the server's settings",
                "description": "An optional JSON body picks the method ({\"method\": \"mcc\"}; default: "
                               "the settings' default method) and, for mcc, the frame to complete "
                               "({\"method\": \"mcc\", \"frame\": 12}) and the export options "
                               "({\"export\": {\"formats\": [\"usdz\", \"obj\"], \"up\": \"z\"}}).",
                "parameters": _CAPTURE_PATH,
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "properties": {
                        "method": {"type": "string"}, "frame": {"type": "integer", "minimum": 0},
                        "export": {
                            "type": "object", "additionalProperties": False, "properties": {
                                "formats": {"type": "array",
                                            "items": {"enum": ["usdz", "glb", "obj", "ply"]}},
                                "texture_format": {"enum": ["png", "jpeg"]},
                                "texture_quality": {"type": "integer", "minimum": 1, "maximum": 100},
                                "up": {"enum": ["y", "z"]}}}}}}}},
                "responses": {"202": _resp("finished, job queued", capture),
                              "200": _resp("finished, nothing queued (see not_queued_because)", capture),
                              **_errors(400, 401, 404, 409)},
            }},
            "/v1/captures/{capture_id}/restyle": {"post": {
                "summary": "Queue a restyle by a diffusion model: an MP4 of the frames (output video) "
                           "or a new AR asset, restyled-<name>.usdz/.glb beside the model (output asset)",
                "parameters": _CAPTURE_PATH,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "output": {"type": "string", "enum": ["video", "asset"]},
                        "options": {"type": "object", "properties": {
                            "prompt": {"type": "string"}, "negative_prompt": {"type": "string"},
                            "mode": {"type": "string", "enum": ["stylize", "mask", "render", "storyboard"]},
                            "fidelity": {"type": "number"}, "strength": {"type": "number"},
                            "seed": {"type": "integer"}, "name": {"type": "string"},
                            "image": {"type": "string"}, "image_scale": {"type": "number"},
                            "keyframe_every": {"type": "integer"}, "max_frames": {"type": "integer"},
                            "size": {"type": "integer"}, "steps": {"type": "integer"}},
                            "additionalProperties": False}}}}}},
                "responses": {"202": _resp("restyle job queued", {"type": "object", "properties": {
                    "capture_id": {"type": "string"}, "job": {"$ref": "#/components/schemas/Job"}}}),
                    **_errors(400, 401, 404, 409)},
            }},
            "/v1/captures/{capture_id}/events": {"get": {
                "summary": "Progress and log events of the capture's latest job, after an event id",
                "parameters": [*_CAPTURE_PATH,
                               {"name": "after", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": _resp("events", {"type": "object", "properties": {
                    "job": {"$ref": "#/components/schemas/Job"}, "events": {"type": "array"}}}),
                    **_errors(400, 401, 404)},
            }},
            "/v1/captures/{capture_id}/coverage": {"get": {
                "summary": "Which azimuth/elevation sectors around the object have views (from device poses, "
                           "else from the orientations sent with photos)",
                "parameters": _CAPTURE_PATH,
                "responses": {"200": _resp("coverage", {"type": "object", "properties": {
                    "available": {"type": "boolean"}, "views": {"type": "integer"},
                    "source": {"type": "string", "enum": ["poses", "orientation"]},
                    "azimuth_bins": {"type": "integer"}, "elevation_edges_deg": {"type": "array"},
                    "counts": {"type": "array", "description": "rows: elevation bands, columns: azimuth"},
                    "covered_fraction": {"type": "number"}, "azimuth_covered_fraction": {"type": "number"},
                    "centre": {"type": "array"}, "radius_m": {"type": "number"},
                    "reason": {"type": "string"}}}), **_errors(401, 404)},
            }},
            "/v1/captures/{capture_id}/live": {"get": {
                "summary": "WebSocket upgrade: live RGB-D frames for an rgbd capture (docs/protocol.md §7). "
                           "Token in Authorization or ?access_token=; one binary message per frame",
                "parameters": _CAPTURE_PATH,
                "responses": {"101": {"description": "switching to WebSocket; each stored frame is acked"},
                              "403": {"description": "no valid token (handshake refused)"}},
            }},
            "/v1/live": {"get": {
                "summary": "Captures streaming live frames now (frames in the last 10 s), newest first",
                "responses": {"200": _resp("streaming captures", {"type": "object", "properties": {
                    "captures": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "string"}, "name": {"type": "string"}, "frames": {"type": "integer"},
                        "updated": {"type": "number"}}}},
                    "streaming_within_s": {"type": "number"}}}), **_errors(401)},
            }},
            "/v1/captures/{capture_id}/live/preview.png": {"get": {
                "summary": "A coarse top-down picture of the live frames' depth points (brighter is higher; "
                           "red: where the phone was)",
                "parameters": _CAPTURE_PATH,
                "responses": {"200": {"description": "PNG, 256 x 256",
                                      "content": {"image/png": {"schema": {"type": "string",
                                                                           "format": "binary"}}}},
                              **_errors(401, 404)},
            }},
            "/v1/captures/{capture_id}/results": {"get": {
                "summary": "Files in the capture's exports", "parameters": _CAPTURE_PATH,
                "responses": {"200": _resp("results", {"type": "object"}), **_errors(401, 404)},
            }},
            "/v1/create": {"post": {
                "summary": "A new capture holding a model made from a text prompt (Shap-E on this computer); "
                           "fields: prompt, name, detail, size (metres), steps, seed, grid, refine_steps",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["prompt"],
                    "properties": {"prompt": {"type": "string", "maxLength": 1000}}}}}},
                "responses": {"202": _resp("capture_id and the queued job", {"type": "object"}),
                              **_errors(400, 401)},
            }},
            "/v1/captures/{capture_id}/create": {"post": {
                "summary": "Make a model of the capture's photo (or of a prompt), published to its results; "
                           "fields: prompt, frame, detail, size, steps, seed, grid, refine_steps",
                "parameters": _CAPTURE_PATH,
                "responses": {"202": _resp("the queued job", {"type": "object"}), **_errors(400, 401, 404)},
            }},
            "/v1/captures/{capture_id}/video": {"post": {
                "summary": "Render the capture's model into results/clip.mp4; fields: path "
                           "(turntable|capture|fly), seconds, fps, width, height, elevation",
                "parameters": _CAPTURE_PATH,
                "responses": {"202": _resp("the queued job", {"type": "object"}), **_errors(400, 401, 404)},
            }},
            "/v1/captures/{capture_id}/results/{name}": {"get": {
                "summary": "Download one result (model/vnd.usdz+zip for USDZ)",
                "parameters": [*_CAPTURE_PATH, {"name": "name", "in": "path", "required": True,
                                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the file"}, **_errors(401, 404)},
            }},
            "/v1/uploads": {
                "options": {"summary": "tus discovery (public)", "security": [],
                            "responses": {"204": _resp("capabilities", headers={
                                "Tus-Version": "1.0.0",
                                "Tus-Extension": "creation,checksum,termination,expiration",
                                "Tus-Max-Size": str(max_upload_bytes),
                                "Tus-Checksum-Algorithm": "sha1,sha256,md5"})}},
                "post": {
                    "summary": "tus creation. Upload-Metadata keys: capture_id, filename (relative path, "
                               "no '..'), kind (image|video|archive|depth|confidence|metadata|other), "
                               "orientation (a photo's device orientation as JSON; docs/protocol.md §5)",
                    "parameters": [_TUS, _tus_header("Upload-Length", f"bytes, at most {max_upload_bytes}"),
                                   _tus_header("Upload-Metadata", "capture_id, filename, kind, orientation")],
                    "responses": {"201": _resp("created", headers={"Location": "the upload's URL",
                                                                   "Upload-Expires": "RFC 7231 date"}),
                                  **_errors(400, 401, 404, 409, 412, 413)},
                },
            },
            "/v1/uploads/{capture_id}/{upload_id}": {
                "head": {"summary": "tus offset", "parameters": [*_UPLOAD_PATH, _TUS],
                         "responses": {"200": _resp("state", headers={
                             "Upload-Offset": "bytes stored durably", "Upload-Length": "total",
                             "Upload-Expires": "RFC 7231 date"}), **_errors(401, 404, 410, 412)}},
                "patch": {
                    "summary": "tus append at Upload-Offset (Content-Type application/offset+octet-stream)",
                    "parameters": [
                        *_UPLOAD_PATH, _TUS, _tus_header("Upload-Offset", "must equal the stored offset"),
                        _tus_header("Upload-Checksum", "'<sha1|sha256|md5> <base64 digest>'", False),
                    ],
                    "requestBody": {"content": {"application/offset+octet-stream": {"schema": {
                        "type": "string", "format": "binary"}}}},
                    "responses": {"204": _resp("appended", headers={"Upload-Offset": "new offset"}),
                                  **_errors(400, 401, 404, 409, 410, 412, 413, 415, 423, 460, 507)},
                },
                "delete": {"summary": "tus termination", "parameters": [*_UPLOAD_PATH, _TUS],
                           "responses": {"204": {"description": "removed"}, **_errors(401, 404, 409, 410)}},
            },
        },
    }
