"""tus 1.0 over HTTP at ``/v1/uploads``: core protocol plus creation, checksum, termination and
expiration. The bytes themselves go through capture_server.uploads, which makes them durable."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from capture_server.bounded import parse_count
from capture_server.errors import Locked, PreconditionFailed, RequestError, TooLarge, UnsupportedMediaType
from capture_server.names import encode_tus_metadata, parse_tus_metadata
from capture_server.orientation import checked_upload_metadata
from capture_server.uploads import CHECKSUM_ALGORITHMS, PatchWriter, UploadInfo, UploadStore

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,termination,expiration"
WRITE_BLOCK = 4 << 20  # bytes gathered before a write on the worker thread
LOCK_WAIT_S = 10.0


def tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, **extra}


def _check_version(request: Request) -> None:
    version = request.headers.get("tus-resumable")
    if version != TUS_VERSION:
        raise PreconditionFailed(f"this server speaks tus {TUS_VERSION}, got {version!r}", "Tus-Resumable")


def _int_header(request: Request, name: str) -> int:
    return parse_count(request.headers.get(name), name)


def _checksum(request: Request) -> tuple[str, str] | None:
    raw = request.headers.get("upload-checksum")
    if raw is None:
        return None
    algo, _, value = raw.strip().partition(" ")
    if algo not in CHECKSUM_ALGORITHMS:
        raise RequestError(f"unsupported algorithm {algo!r} (supported: {', '.join(CHECKSUM_ALGORITHMS)})",
                           "Upload-Checksum")
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        raise RequestError("expected '<algorithm> <base64 digest>'", "Upload-Checksum") from None
    return algo, value


def _expires(info: UploadInfo) -> dict[str, str]:
    if info.state == "complete":
        return {}
    return {"Upload-Expires": email.utils.formatdate(info.expires, usegmt=True)}


class TusEndpoint:
    """The tus routes. ``locks`` keeps one writer per upload; ``capture_locks`` keeps upload
    creation and a capture's finish apart."""

    def __init__(self, store: UploadStore, capture_locks: dict[str, asyncio.Lock]) -> None:
        self.store = store
        self.capture_locks = capture_locks
        self.locks: dict[str, asyncio.Lock] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/v1/uploads", self.options, methods=["OPTIONS"], name="tus_options"),
            Route("/v1/uploads", self.create, methods=["POST"], name="tus_create"),
            Route("/v1/uploads/{capture_id}/{upload_id}", self.head, methods=["HEAD"], name="tus_head"),
            Route("/v1/uploads/{capture_id}/{upload_id}", self.patch, methods=["PATCH"], name="tus_patch"),
            Route("/v1/uploads/{capture_id}/{upload_id}", self.delete, methods=["DELETE"], name="tus_delete"),
        ]

    async def options(self, request: Request) -> Response:
        return Response(status_code=204, headers=tus_headers(**{
            "Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(self.store.max_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        }))

    async def create(self, request: Request) -> Response:
        _check_version(request)
        if "upload-defer-length" in request.headers:
            raise RequestError("deferred lengths are not supported; send Upload-Length",
                               "Upload-Defer-Length")
        length = _int_header(request, "Upload-Length")
        metadata = checked_upload_metadata(parse_tus_metadata(request.headers.get("upload-metadata")))
        capture_id = metadata.get("capture_id")
        if not capture_id:
            raise RequestError("needs a capture_id key", "Upload-Metadata")
        if "filename" not in metadata:
            raise RequestError("needs a filename key", "Upload-Metadata")
        lock = self.capture_locks.setdefault(capture_id, asyncio.Lock())
        async with lock:
            info = await anyio.to_thread.run_sync(
                self.store.create, capture_id, metadata["filename"], length, metadata.get("kind"), metadata,
            )
        location = str(request.url_for("tus_head", capture_id=info.capture_id, upload_id=info.id))
        return Response(status_code=201, headers=tus_headers(Location=location, **_expires(info)))

    async def head(self, request: Request) -> Response:
        _check_version(request)
        info = await anyio.to_thread.run_sync(
            self.store.get, request.path_params["capture_id"], request.path_params["upload_id"],
        )
        return Response(status_code=200, headers=tus_headers(**{
            "Upload-Offset": str(info.offset), "Upload-Length": str(info.length),
            "Upload-Metadata": encode_tus_metadata(info.metadata), "Cache-Control": "no-store",
            **_expires(info),
        }))

    async def delete(self, request: Request) -> Response:
        _check_version(request)
        capture_id, upload_id = request.path_params["capture_id"], request.path_params["upload_id"]
        async with self._upload_lock(upload_id):
            await anyio.to_thread.run_sync(self.store.terminate, capture_id, upload_id)
        return Response(status_code=204, headers=tus_headers())

    def _upload_lock(self, upload_id: str) -> _TimedLock:
        return _TimedLock(self.locks.setdefault(upload_id, asyncio.Lock()), upload_id)

    async def patch(self, request: Request) -> Response:
        _check_version(request)
        if request.headers.get("content-type") != "application/offset+octet-stream":
            raise UnsupportedMediaType("expected application/offset+octet-stream", "Content-Type")
        offset = _int_header(request, "Upload-Offset")
        checksum = _checksum(request)
        declared = request.headers.get("content-length")
        body_length = None if declared is None else parse_count(declared, "Content-Length")
        capture_id, upload_id = request.path_params["capture_id"], request.path_params["upload_id"]
        async with self._upload_lock(upload_id):
            writer = await anyio.to_thread.run_sync(
                self.store.open_patch, capture_id, upload_id, offset, checksum,
            )
            if body_length is not None and offset + body_length > writer.info.length:
                writer.discard()
                raise TooLarge(f"the body goes past Upload-Length ({writer.info.length} bytes)",
                               "Content-Length")
            info = await _receive(request, writer)
        return Response(status_code=204, headers=tus_headers(**{"Upload-Offset": str(info.offset),
                                                                 **_expires(info)}))


async def _receive(request: Request, writer: PatchWriter) -> UploadInfo:
    """Stream the body into ``writer`` in blocks of about WRITE_BLOCK bytes; the disk write of
    one block overlaps reading the next (at most one in flight, so memory stays bounded). On a
    dropped connection keep what is safe to keep."""
    chunks: list[bytes] = []
    gathered = 0
    in_flight: asyncio.Future[None] | None = None
    try:
        try:
            async for chunk in request.stream():
                chunks.append(chunk)
                gathered += len(chunk)
                if gathered >= WRITE_BLOCK:
                    if in_flight is not None:
                        await in_flight
                    in_flight = asyncio.ensure_future(anyio.to_thread.run_sync(writer.write_chunks, chunks))
                    chunks, gathered = [], 0
        except ClientDisconnect:
            if in_flight is not None:
                await in_flight
            if chunks:
                await anyio.to_thread.run_sync(writer.write_chunks, chunks)
            info = await anyio.to_thread.run_sync(writer.abort)
            raise RequestError(f"the connection closed at offset {info.offset}", "body") from None
        if in_flight is not None:
            await in_flight
            in_flight = None
        if chunks:
            await anyio.to_thread.run_sync(writer.write_chunks, chunks)
        return await anyio.to_thread.run_sync(writer.finish)
    except BaseException:
        if in_flight is not None and not in_flight.done():
            in_flight.cancel()  # the thread finishes its block; abort below runs after it
            with contextlib.suppress(BaseException):
                await asyncio.shield(in_flight)
        writer.abort()  # on shutdown too: keep the synced bytes (or none, when checksummed)
        raise


class _TimedLock:
    """An asyncio lock that gives up with 423 after LOCK_WAIT_S."""

    def __init__(self, lock: asyncio.Lock, upload_id: str) -> None:
        self.lock, self.upload_id = lock, upload_id

    async def __aenter__(self) -> None:
        try:
            await asyncio.wait_for(self.lock.acquire(), LOCK_WAIT_S)
        except TimeoutError:
            raise Locked("another request is writing this upload", self.upload_id) from None

    async def __aexit__(self, *exc: Any) -> None:
        self.lock.release()
