"""Durable tus uploads: bytes go to a partial file inside the capture, the offset is persisted only
after those bytes are fsynced, and a finished file is renamed into ``raw/`` in one step.

Layout, per capture: ``.uploads/<upload-id>.json`` (the upload's state, replaced atomically) and
``.uploads/<upload-id>.part`` (the bytes so far). After a crash the persisted offset is the
truth: a longer partial file is cut back to it before the next write, and an upload that was
complete but not yet renamed is published when it is next looked at.
"""

from __future__ import annotations

import base64
import dataclasses
import errno
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from capture_server.errors import (
    ChecksumMismatch,
    Conflict,
    NoSuchUpload,
    RequestError,
    StorageFull,
    TooLarge,
    UploadGone,
)
from capture_server.names import files_below, kind_for, name_clash, path_inside, safe_relative_name
from capture_server.upload_state import UploadInfo, quarantine
from core.capture import CaptureFolder
from core.errors import ManifestError, ScanBridgeError
from core.fsio import atomic_write_json, file_sha256, fsync_dir
from core.workspace import Workspace

UPLOADS_DIR = ".uploads"
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
DEFAULT_TTL_S = 24 * 3600
# Without a checksum, a long PATCH persists its progress after this many bytes or seconds.
CHECKPOINT_BYTES = 64 * 1024 * 1024
CHECKPOINT_S = 2.0
_ID_CHARS = set("0123456789abcdef")
log = logging.getLogger(__name__)


def _uploads_dir(capture: CaptureFolder) -> Path:
    return capture.root / UPLOADS_DIR


def _check_upload_id(upload_id: str) -> str:
    if len(upload_id) != 32 or not set(upload_id) <= _ID_CHARS:
        raise NoSuchUpload("no such upload", upload_id)
    return upload_id


class UploadStore:
    """All uploads of one workspace. Thread-safe for different uploads; callers serialise
    writes to one upload (the HTTP layer holds a lock per upload id)."""

    def __init__(self, workspace: Workspace, max_bytes: int, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.workspace = workspace
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        # Running SHA-256 of each upload's prefix, so completing a file needs no second read.
        self._hashers: dict[str, tuple[int, Any]] = {}
        self._hashers_lock = threading.Lock()

    # -- paths and state -------------------------------------------------------------------------

    def receiving_capture(self, capture_id: str) -> CaptureFolder:
        """The capture, which must still be receiving files."""
        capture = self.workspace.capture(capture_id)
        status = capture.load().status
        if status != "receiving":
            raise Conflict(f"capture is {status}, no longer receiving files", capture_id)
        return capture

    def _info_path(self, capture: CaptureFolder, upload_id: str) -> Path:
        return _uploads_dir(capture) / f"{upload_id}.json"

    def _part_path(self, capture: CaptureFolder, upload_id: str) -> Path:
        return _uploads_dir(capture) / f"{upload_id}.part"

    def _save(self, capture: CaptureFolder, info: UploadInfo) -> UploadInfo:
        atomic_write_json(self._info_path(capture, info.id), info.to_json())
        return info

    def _load(self, capture: CaptureFolder, upload_id: str) -> UploadInfo:
        path = self._info_path(capture, upload_id)
        try:
            info = UploadInfo.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise NoSuchUpload("no such upload", upload_id) from None
        except (ValueError, ManifestError, OSError) as e:
            self._set_aside(capture, upload_id, f"unreadable upload state ({e})")
        if info.id != upload_id or info.capture_id != capture.id:
            self._set_aside(capture, upload_id, "the state names another upload or capture")
        return info

    def _set_aside(self, capture: CaptureFolder, upload_id: str, why: str) -> NoReturn:
        """Quarantine a broken upload so its capture keeps working; the client starts it again."""
        with self._hashers_lock:
            self._hashers.pop(upload_id, None)
        quarantine(_uploads_dir(capture), upload_id, why)
        raise UploadGone("the upload's saved state was damaged and set aside; start it again", upload_id)

    def uploads(self, capture_id: str) -> list[UploadInfo]:
        capture = self.workspace.capture(capture_id)
        folder = _uploads_dir(capture)
        if not folder.is_dir():
            return []
        out = []
        for p in sorted(folder.glob("*.json")):
            try:
                out.append(self.get(capture_id, p.stem))
            except (NoSuchUpload, UploadGone):
                continue
        return out

    # -- creation ------------------------------------------------------------------------------

    def create(self, capture_id: str, filename: str, length: int, kind: str | None = None,
               metadata: dict[str, str] | None = None) -> UploadInfo:
        capture = self.receiving_capture(capture_id)
        name = safe_relative_name(filename)
        kind = kind_for(name, kind)
        if length < 0:
            raise RequestError("must be a non-negative integer", "Upload-Length")
        if length > self.max_bytes:
            raise TooLarge(f"{length} bytes is over the server's limit of {self.max_bytes}", "Upload-Length")
        if path_inside(capture.raw_dir, name).is_dir():
            raise Conflict("a folder of this name already holds files sent to this capture", name)
        taken = [*files_below(capture.raw_dir), *(u.filename for u in self.uploads(capture_id))]
        other = name_clash(name, taken)
        if other == name:
            raise Conflict("a file with this name was already sent to this capture", name)
        if other is not None:
            raise Conflict(f"clashes with {other!r} (one name cannot be both a file and a folder, "
                           "and names differing only in case are the same file on some computers)", name)
        now = time.time()
        info = UploadInfo(
            secrets.token_hex(16), capture_id, name, kind, length, 0, dict(metadata or {}),
            now, now + self.ttl_s,
        )
        folder = _uploads_dir(capture)
        folder.mkdir(exist_ok=True)
        part = self._part_path(capture, info.id)
        with open(part, "wb") as f:
            os.fsync(f.fileno())
        fsync_dir(folder)
        self._save(capture, info)
        if length == 0:
            return self._publish(capture, info, hashlib.sha256().hexdigest())
        return info

    # -- lookup with crash recovery ----------------------------------------------------------------

    def get(self, capture_id: str, upload_id: str) -> UploadInfo:
        """The upload's persisted state, repaired after a crash; 404 unknown, 410 expired."""
        capture = self.workspace.capture(capture_id)
        info = self._load(capture, _check_upload_id(upload_id))
        if info.state == "complete":
            return info
        part = self._part_path(capture, upload_id)
        if time.time() > info.expires:
            self._remove(capture, upload_id)
            raise UploadGone("the upload expired; start it again", upload_id)
        if not part.exists():
            target = capture.raw_dir / info.filename
            if info.offset == info.length and target.exists():  # renamed, then the crash
                return self._mark_complete(capture, info, file_sha256(target))
            self._remove(capture, upload_id)
            raise UploadGone("the upload's partial file is gone; start it again", upload_id)
        size = part.stat().st_size
        if size < info.offset:  # cannot happen when fsync was honoured; trust the bytes on disk
            info = self._save(capture, dataclasses.replace(info, offset=size))
        if info.offset == info.length:  # complete but not yet renamed
            return self._publish(capture, info, self._prefix_sha256(capture, info))
        return info

    def terminate(self, capture_id: str, upload_id: str) -> None:
        """tus termination: forget an upload; a finished file leaves raw/ only while receiving."""
        info = self.get(capture_id, upload_id)
        capture = self.workspace.capture(capture_id)
        if info.state == "complete":
            capture = self.receiving_capture(capture_id)
            (capture.raw_dir / info.filename).unlink(missing_ok=True)
        self._remove(capture, upload_id)

    def _remove(self, capture: CaptureFolder, upload_id: str) -> None:
        self._part_path(capture, upload_id).unlink(missing_ok=True)
        self._info_path(capture, upload_id).unlink(missing_ok=True)
        with self._hashers_lock:
            self._hashers.pop(upload_id, None)

    def sweep_expired(self) -> list[str]:
        """Remove every expired unfinished upload in the workspace; returns their ids."""
        removed = []
        for capture in self.workspace.captures():
            folder = _uploads_dir(capture)
            for p in folder.glob("*.json") if folder.is_dir() else []:
                try:
                    self.get(capture.id, p.stem)
                except UploadGone:
                    removed.append(p.stem)
                except (ScanBridgeError, OSError) as e:  # never a reason not to start
                    log.warning("upload %s of capture %s was left as it is: %s", p.stem, capture.id, e)
        return removed

    # -- writing -------------------------------------------------------------------------------

    def open_patch(self, capture_id: str, upload_id: str, offset: int,
                   checksum: tuple[str, str] | None = None) -> PatchWriter:
        """Start writing a PATCH body at ``offset`` (which must be the persisted offset)."""
        info = self.get(capture_id, upload_id)
        if info.state == "complete":
            raise Conflict("the upload is already complete", upload_id)
        capture = self.receiving_capture(capture_id)
        if offset != info.offset:
            raise Conflict(f"Upload-Offset is {offset} but the upload is at {info.offset}", "Upload-Offset")
        return PatchWriter(self, capture, info, checksum)

    def _prefix_sha256(self, capture: CaptureFolder, info: UploadInfo) -> str:
        return self._hasher_at(capture, info).hexdigest()

    def _hasher_at(self, capture: CaptureFolder, info: UploadInfo) -> Any:
        """A SHA-256 over the first ``info.offset`` bytes; re-read from disk after a restart."""
        with self._hashers_lock:
            held = self._hashers.get(info.id)
        if held is not None and held[0] == info.offset:
            return held[1].copy()
        h = hashlib.sha256()
        with open(self._part_path(capture, info.id), "rb") as f:
            left = info.offset
            while left > 0:
                block = f.read(min(left, 4 << 20))
                if not block:
                    break
                h.update(block)
                left -= len(block)
        return h

    def _remember_hasher(self, info: UploadInfo, hasher: Any) -> None:
        with self._hashers_lock:
            self._hashers[info.id] = (info.offset, hasher)

    def _publish(self, capture: CaptureFolder, info: UploadInfo, sha256: str) -> UploadInfo:
        target = path_inside(capture.raw_dir, info.filename)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() or target.is_symlink():
                raise FileExistsError(errno.EEXIST, "exists", str(target))
            os.rename(self._part_path(capture, info.id), target)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as e:  # older versions let clashes in
            self._set_aside(capture, info.id, f"cannot be published as raw/{info.filename}: {e.strerror}")
        fsync_dir(target.parent)
        return self._mark_complete(capture, info, sha256)

    def _mark_complete(self, capture: CaptureFolder, info: UploadInfo, sha256: str) -> UploadInfo:
        with self._hashers_lock:
            self._hashers.pop(info.id, None)
        return self._save(capture, dataclasses.replace(info, state="complete", sha256=sha256))


class PatchWriter:
    """One PATCH request's bytes. Call ``write`` per chunk, then ``finish`` (the whole body
    arrived) or ``abort`` (the client went away)."""

    def __init__(self, store: UploadStore, capture: CaptureFolder, info: UploadInfo,
                 checksum: tuple[str, str] | None) -> None:
        self.store, self.capture, self.info = store, capture, info
        self.start = info.offset
        self.offset = info.offset
        self.checksum = checksum
        self._request_hash = hashlib.new(checksum[0]) if checksum else None
        self._file_hash = store._hasher_at(capture, info)
        self._file_hash_at_start = self._file_hash.copy()
        self._unsynced = 0
        self._synced_at = time.monotonic()
        self._file: BinaryIO = open(store._part_path(capture, info.id), "r+b")  # noqa: SIM115
        self._file.truncate(self.start)  # drop bytes written after the last persisted offset
        self._file.seek(self.start)

    def write(self, data: bytes) -> None:
        self.write_chunks([data])

    def write_chunks(self, chunks: list[bytes]) -> None:
        """Append ``chunks`` at the current offset (kept only once persisted)."""
        size = sum(map(len, chunks))
        if self.offset + size > self.info.length:
            self._rollback()
            raise TooLarge(
                f"the body goes past Upload-Length ({self.info.length} bytes)", "Content-Length",
            )
        try:
            self._file.writelines(chunks)
        except OSError as e:
            self._rollback()
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise StorageFull("the server's disk is full; nothing was kept from this request",
                                  self.info.filename) from None
            raise
        for chunk in chunks:
            if self._request_hash is not None:
                self._request_hash.update(chunk)
            self._file_hash.update(chunk)
        self.offset += size
        self._unsynced += size
        if self.checksum is None and (self._unsynced >= CHECKPOINT_BYTES
                                      or time.monotonic() - self._synced_at >= CHECKPOINT_S):
            self._persist()

    def _persist(self) -> None:
        """fsync the bytes, then (and only then) record the new offset."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self.info = self.store._save(
                self.capture,
                dataclasses.replace(self.info, offset=self.offset, expires=time.time() + self.store.ttl_s),
            )
        except OSError as e:
            self._rollback()
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("the server's disk is full; nothing was kept from this request",
                                  self.info.filename) from None
            raise
        self._unsynced = 0
        self._synced_at = time.monotonic()
        self.store._remember_hasher(self.info, self._file_hash.copy())

    def _rollback(self) -> None:
        """Forget everything after the last persisted offset."""
        self.offset = self.info.offset
        self._file_hash = self.store._hasher_at(self.capture, self.info) if self.info.offset != self.start \
            else self._file_hash_at_start.copy()
        try:
            self._file.truncate(self.info.offset)
        except OSError:
            pass  # the persisted offset still rules; the next open cuts the file back
        self._close()

    def discard(self) -> None:
        """Write nothing from this request."""
        self._rollback()

    def _close(self) -> None:
        if not self._file.closed:
            try:
                self._file.close()
            except OSError:
                pass

    def finish(self) -> UploadInfo:
        """The body is complete: check the checksum, make the bytes durable, publish when done."""
        if self.checksum is not None and self._request_hash is not None:
            expected = self.checksum[1]
            if base64.b64encode(self._request_hash.digest()).decode("ascii") != expected:
                self._rollback()
                raise ChecksumMismatch(
                    f"{self.checksum[0]} of the body does not match Upload-Checksum", "Upload-Checksum",
                )
        self._persist()
        self._close()
        if self.info.offset == self.info.length:
            return self.store._publish(self.capture, self.info, self._file_hash.hexdigest())
        return self.info

    def abort(self) -> UploadInfo:
        """The client went away mid-body: keep what arrived unless it was checksummed."""
        if self._file.closed:
            return self.info
        if self.checksum is not None:
            self._rollback()
            return self.info
        try:
            self._persist()
        except StorageFull:
            return self.info
        self._close()
        if self.info.offset == self.info.length:
            return self.store._publish(self.capture, self.info, self._file_hash.hexdigest())
        return self.info
