"""Captures as the phone sees them: create one (state receiving), read its status, finish it,
list and fetch its results. Manifests are written with core.capture; recon is never imported."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

from capture_server.errors import Conflict, RequestError
from capture_server.jobs_link import FinishRequest, JobLink, plan_for
from capture_server.live import frames_from_journal
from capture_server.names import path_inside, safe_relative_name
from capture_server.orientation import METADATA_KEY
from capture_server.uploads import UPLOADS_DIR, UploadStore
from core.capture import MODES, Manifest, utc_now
from core.errors import NotFoundError, ScanBridgeError
from core.settings import Settings
from core.workspace import Workspace

RESULT_TYPES = {
    ".usdz": "model/vnd.usdz+zip", ".glb": "model/gltf-binary", ".gltf": "model/gltf+json",
    ".obj": "model/obj", ".ply": "application/octet-stream", ".png": "image/png",
    ".jpg": "image/jpeg", ".json": "application/json", ".mtl": "text/plain", ".mp4": "video/mp4",
}
_DEVICE_KEYS_MAX = 20
# Source fields a phone sent or that describe its own uploads; anything else a reader wrote there
# (paths on this computer, for one) stays on the computer.
_PUBLIC_SOURCE_KEYS = ("kind", "device", "received", "files", "app", "listed_frames")
_COUNTED_SOURCE_KEYS = ("missing_frames",)
log = logging.getLogger(__name__)


def _device_info(device: Any) -> dict[str, str]:
    if device is None:
        return {}
    if not isinstance(device, dict) or len(device) > _DEVICE_KEYS_MAX:
        raise RequestError(f"expected an object of at most {_DEVICE_KEYS_MAX} fields", "device")
    out = {}
    for key, value in device.items():
        if not isinstance(value, (str, int, float, bool)) or len(str(value)) > 200 \
                or isinstance(value, float) and not math.isfinite(value):
            raise RequestError("expected a short string or finite number", f"device.{key}")
        out[str(key)[:50]] = value
    return out


def public_source(source: dict[str, Any]) -> dict[str, Any]:
    """What a phone may see of a capture's source: the fields it sent or that name its own
    uploads; paths a reader found (or missed) on this computer are only counted."""
    out = {k: _finite(source[k]) for k in _PUBLIC_SOURCE_KEYS if k in source}
    for key in _COUNTED_SOURCE_KEYS:
        if isinstance(source.get(key), list):
            out[key] = len(source[key])
    return out


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (written by an older version) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def manifest_json(m: Manifest) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "mode": m.mode, "status": m.status, "created": m.created,
            "frames": len(m.frames), "source": public_source(m.source)}


class CaptureService:
    def __init__(self, workspace: Workspace, uploads: UploadStore, jobs: JobLink | None) -> None:
        self.workspace = workspace
        self.uploads = uploads
        self.jobs = jobs

    def create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise RequestError("expected a JSON object", "body")
        mode = body.get("mode")
        if mode not in MODES:
            raise RequestError(f"must be one of {', '.join(MODES)}, got {mode!r}", "mode")
        name = body.get("name") or f"{mode} capture"
        if not isinstance(name, str) or len(name) > 200:
            raise RequestError("expected a string of at most 200 characters", "name")
        device = _device_info(body.get("device"))
        capture_id = self.workspace.new_capture_id(name)
        manifest = Manifest(
            id=capture_id, name=name, created=utc_now(), mode=mode, status="receiving",
            source={"kind": "upload", "device": device},
        )
        with self.workspace.staged_capture(capture_id) as staged:
            staged.raw_dir.mkdir()
            (staged.root / UPLOADS_DIR).mkdir()
            staged.save(dataclasses.replace(manifest))
        return manifest_json(manifest)

    def list(self) -> list[dict[str, Any]]:
        out = []
        for capture in self.workspace.captures():
            try:
                entry = manifest_json(capture.load())
                json.dumps(entry, allow_nan=False)
            except NotFoundError:
                continue
            except (ScanBridgeError, ValueError, TypeError, OSError) as e:  # hides only itself
                log.warning("capture %s is left out of the list: %s", capture.id, e)
                continue
            out.append(entry)
        return out

    def files(self, capture_id: str) -> list[dict[str, Any]]:
        """Files in raw/, with the kind and SHA-256 they were uploaded with where known."""
        capture = self.workspace.capture(capture_id)
        by_name = {u.filename: u for u in self.uploads.uploads(capture_id) if u.state == "complete"}
        out = []
        raw = capture.raw_dir
        for path in sorted(p for p in raw.rglob("*") if p.is_file()) if raw.is_dir() else []:
            rel = path.relative_to(raw).as_posix()
            up = by_name.get(rel)
            entry = {"name": rel, "size": path.stat().st_size,
                     "kind": up.kind if up else None, "sha256": up.sha256 if up else None}
            if up and METADATA_KEY in up.metadata:  # checked when the upload was created
                entry[METADATA_KEY] = json.loads(up.metadata[METADATA_KEY])
            out.append(entry)
        return out

    def status(self, capture_id: str) -> dict[str, Any]:
        capture = self.workspace.capture(capture_id)
        pending = [u for u in self.uploads.uploads(capture_id) if u.state != "complete"]
        return {
            **manifest_json(capture.load()),
            "files": self.files(capture_id),
            "uploads": [{"id": u.id, "filename": u.filename, "offset": u.offset, "length": u.length}
                        for u in pending],
            "job": self.jobs.latest(capture_id) if self.jobs else None,
            "results": self.results(capture_id),
        }

    def finish(self, capture_id: str, settings: Settings,
               request: FinishRequest | None = None) -> dict[str, Any]:
        """Close the capture to uploads and queue its processing per ``settings`` (the method the
        phone asked for in ``request``, if any)."""
        capture = self.uploads.receiving_capture(capture_id)
        pending = [u.filename for u in self.uploads.uploads(capture_id) if u.state != "complete"]
        if pending:
            raise Conflict(f"uploads not complete: {', '.join(pending[:10])}", capture_id)
        files = self.files(capture_id)
        if not files:
            raise RequestError("no files were uploaded to this capture", capture_id)
        manifest = capture.load()
        live = frames_from_journal(capture)
        if live:  # frames that arrived over the live WebSocket are already normalised
            metric = any(f.depth for f in live) and all(f.pose is not None for f in live)
            manifest = dataclasses.replace(manifest, frames=tuple(live),
                                           scale="metric" if metric else manifest.scale)
        steps, reason = plan_for(capture, manifest, settings, request) if self.jobs else ([], "no job queue")
        source = {**manifest.source, "received": utc_now(), "files": files}
        status = "processing" if steps else "new"
        capture.save(dataclasses.replace(manifest, status=status, source=source))
        job = self.jobs.submit(capture_id, steps) if steps and self.jobs else None
        return {**manifest_json(capture.load()), "job": job, "not_queued_because": reason}

    def restyle(self, capture_id: str, body: Any) -> dict[str, Any]:
        """Queue a restyle of the capture: ``{"output": "video" | "asset", "options": {...}}`` (the job's
        stages come from core.submit by name; the server never imports generation)."""
        from core.errors import ConfigError
        from core.submit import restyle_job

        if not isinstance(body, dict) or not isinstance(body.get("options", {}), dict):
            raise RequestError('expected {"output": "video" | "asset", "options": {...}}', "body")
        if self.jobs is None:
            raise Conflict("this server has no job queue", capture_id)
        capture = self.workspace.capture(capture_id)
        try:
            steps = restyle_job(capture, body.get("output", "video"), body.get("options", {}))
        except ConfigError as e:
            raise RequestError(e.reason, e.where) from None
        return {"capture_id": capture_id, "job": self.jobs.submit(capture_id, steps)}

    def results_dir(self, capture_id: str) -> Path | None:
        """exports/ when something was published there, else the export run of the latest
        finished job (read-only: the server never writes results itself)."""
        capture = self.workspace.capture(capture_id)
        if capture.exports_dir.is_dir() and any(_is_result(p) for p in capture.exports_dir.iterdir()):
            return capture.exports_dir
        run_dir = self.jobs.export_run_dir(capture_id) if self.jobs else None
        inside = run_dir is not None and run_dir.resolve().is_relative_to(capture.root.resolve())
        return run_dir if inside and run_dir is not None and run_dir.is_dir() else None

    def results(self, capture_id: str) -> list[dict[str, Any]]:
        folder = self.results_dir(capture_id)
        if folder is None:
            return []
        return [
            {"name": p.name, "size": p.stat().st_size,
             "content_type": RESULT_TYPES.get(p.suffix.lower(), "application/octet-stream")}
            for p in sorted(folder.iterdir()) if _is_result(p)
        ]

    def result_path(self, capture_id: str, name: str) -> tuple[Path, str]:
        rel = safe_relative_name(name, "name")
        folder = self.results_dir(capture_id)
        path = path_inside(folder, rel, "name") if folder is not None and "/" not in rel else None
        if path is None or not _is_result(path):
            raise NotFoundError("no such result", name)
        return path, RESULT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _is_result(path: Path) -> bool:
    """A model, texture or poster; not a run's bookkeeping (config.json, status.json, log.txt)."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in RESULT_TYPES \
        and path.name not in ("config.json", "status.json")
