"""The ASGI application: routes, the bearer-token gate in front of them, errors as JSON."""

from __future__ import annotations

import asyncio
import errno
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from capture_server.auth import DeviceStore, FailureLimiter
from capture_server.bounded import BodyLimit, json_body, parse_count
from capture_server.captures import CaptureService
from capture_server.connections import PEER_EXTENSION, ConnectionRegistry
from capture_server.coverage import capture_coverage
from capture_server.errors import Conflict, RateLimited, RequestError, StorageFull, Unauthorized, http_status
from capture_server.generate import GenerateService
from capture_server.identity import ServerIdentity
from capture_server.jobs_link import FinishRequest
from capture_server.live import LiveRecorder, parse_frame_message
from capture_server.live_preview import live_preview_routes
from capture_server.openapi import openapi_schema
from capture_server.sessions import DeviceSessions, run_until_revoked
from capture_server.tus import TusEndpoint, tus_headers
from capture_server.uploads import UploadStore
from capture_server.web import PageRouter, is_public_page
from core.errors import ScanBridgeError
from core.settings import Settings
from core.workspace import Workspace

PROTOCOL_VERSION = 1
LIVE_COMMIT_S = 0.1  # live frames are made durable and acknowledged in groups, at least this often
LIVE_COMMIT_FRAMES = 16
LIVE_CLOSE_WAIT_S = 5.0  # finish waits this long for a live stream that is closing
# (method, path) pairs anyone may call; every other request needs a device token.
PUBLIC = frozenset({
    ("GET", "/v1/info"), ("HEAD", "/v1/info"), ("POST", "/v1/pair"),
    ("GET", "/v1/openapi.json"), ("OPTIONS", "/v1/uploads"),
})


@dataclass
class ServerState:
    workspace: Workspace
    settings: Settings
    identity: ServerIdentity
    devices: DeviceStore
    uploads: UploadStore
    captures: CaptureService
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    connections: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    capture_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    live_streams: set[str] = field(default_factory=set)  # captures with an open live WebSocket

    @property
    def generate(self) -> GenerateService:
        return GenerateService(self.workspace, self.captures.jobs)

    def info(self) -> dict[str, Any]:
        return {
            "service": "scanbridge", "protocol_version": PROTOCOL_VERSION,
            "server_id": self.identity.server_id, "name": self.identity.name,
            "fingerprint": self.identity.fingerprint,
            "uploads": {"endpoint": "/v1/uploads", "tus_version": "1.0.0",
                        "max_size": self.settings.max_upload_bytes},
        }


def error_response(error: BaseException, tus: bool = False) -> Response:
    status = http_status(error)
    body: dict[str, Any] = {"error": str(error), "type": type(error).__name__}
    if isinstance(error, ScanBridgeError):
        body.update(reason=error.reason, where=error.where)
    headers = tus_headers() if tus else {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after_s)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="scanbridge"'
    return JSONResponse(body, status_code=status, headers=headers)


class TokenGate:
    """Pure ASGI middleware: answers 401 unless the request is public or carries a live token."""

    def __init__(self, app: ASGIApp, devices: DeviceStore, connections: ConnectionRegistry) -> None:
        self.app = app
        self.devices = devices
        self.connections = connections
        self.sessions = DeviceSessions(devices)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or (
                scope["type"] == "http" and ((scope["method"], scope["path"]) in PUBLIC
                                             or is_public_page(scope["method"], scope["path"]))):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scope["type"] == "websocket" and not token:  # browsers cannot set headers on a WebSocket
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            scheme, token = "bearer", (query.get("access_token") or [""])[0]
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("send Authorization: Bearer <device token>; pair first", "Authorization")
            device = self.devices.authenticate(token.strip())
        except ScanBridgeError as e:
            if scope["type"] == "websocket":
                await receive()  # websocket.connect; closing before accept refuses the handshake
                await send({"type": "websocket.close", "code": 4401, "reason": str(e)[:120]})
                return
            await error_response(e, tus=scope["path"].startswith("/v1/uploads"))(scope, receive, send)
            return
        scope.setdefault("state", {})["device"] = device
        peer = scope.get("extensions", {}).get(PEER_EXTENSION) or scope.get("client")
        if peer:
            self.connections.mark_authenticated((peer[0], peer[1]), device.id)
        with self.sessions.session(device.id) as revoked:  # revoking the device cuts this request
            await run_until_revoked(self.app, scope, receive, send, revoked)


async def live_stream(state: ServerState, ws: WebSocket) -> None:
    """Receive live RGB-D frames for an rgbd capture; ack each stored one, close with 4xxx
    (4000 + the HTTP status) and a JSON error on the first bad one."""
    cid = ws.path_params["capture_id"]
    try:
        capture = await anyio.to_thread.run_sync(state.uploads.receiving_capture, cid)
        if capture.load().mode not in ("rgbd", "guided"):
            raise Conflict("live frames go to captures in mode rgbd or guided", "mode")
        if cid in state.live_streams:
            raise Conflict("a live stream is already open for this capture", cid)
    except ScanBridgeError as e:  # accept, so the client gets the reason, then close
        await ws.accept()
        await ws.send_json({"error": str(e), "where": e.where, "type": type(e).__name__})
        await ws.close(code=4000 + http_status(e), reason=str(e)[:120])
        return
    state.live_streams.add(cid)
    try:
        await ws.accept()
        recorder = await anyio.to_thread.run_sync(LiveRecorder, capture)
        pending: list[int] = []  # stored, not yet durable nor acknowledged
        deadline = 0.0
        while True:
            timeout = max(0.0, deadline - time.monotonic()) if pending else None
            try:
                message = await asyncio.wait_for(ws.receive(), timeout)
            except TimeoutError:
                message = None
            if message is not None and message["type"] == "websocket.disconnect":
                await anyio.to_thread.run_sync(recorder.commit)
                return
            if message is not None:
                try:
                    if message.get("bytes") is None:
                        raise RequestError("frames are binary messages", "frame")
                    frame = parse_frame_message(message["bytes"])
                    await anyio.to_thread.run_sync(recorder.store, frame)
                except ScanBridgeError as e:
                    await anyio.to_thread.run_sync(recorder.commit)
                    await ws.send_json({"error": str(e), "where": e.where, "type": type(e).__name__})
                    await ws.close(code=4000 + http_status(e), reason=str(e)[:120])
                    return
                if not pending:
                    deadline = time.monotonic() + LIVE_COMMIT_S
                pending.append(frame.index)
            if pending and (message is None or len(pending) >= LIVE_COMMIT_FRAMES
                            or time.monotonic() >= deadline):
                stored = await anyio.to_thread.run_sync(recorder.commit)
                for index in pending:
                    await ws.send_json({"ack": index, "frames": stored})
                pending = []
    finally:
        state.live_streams.discard(cid)


def build_app(state: ServerState) -> Starlette:
    """The Starlette app over ``state`` (no lifespan: the server module owns start and stop)."""
    tus = TusEndpoint(state.uploads, state.capture_locks)

    async def info(request: Request) -> Response:
        return JSONResponse(state.info())

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_schema(state.settings.max_upload_bytes))

    async def pair(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        state.limiter.check(client)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise RequestError("expected a JSON object", "body")
        try:
            pairing = await anyio.to_thread.run_sync(state.devices.redeem, body.get("code"), body.get("name"))
        except Unauthorized:
            state.limiter.record_failure(client)
            raise
        return JSONResponse({
            "token": pairing.token, "server_id": state.identity.server_id,
            "device_id": pairing.device.id, "fingerprint": state.identity.fingerprint,
        })

    async def list_captures(request: Request) -> Response:
        return JSONResponse({"captures": await anyio.to_thread.run_sync(state.captures.list)})

    async def create_capture(request: Request) -> Response:
        body = await json_body(request)
        created = await anyio.to_thread.run_sync(state.captures.create, body)
        return JSONResponse(created, status_code=201)

    async def capture_status(request: Request) -> Response:
        cid = request.path_params["capture_id"]
        return JSONResponse(await anyio.to_thread.run_sync(state.captures.status, cid))

    async def finish(request: Request) -> Response:
        cid = request.path_params["capture_id"]
        asked = FinishRequest.from_json(await json_body(request))
        # A client that closed its stream and finishes at once may be ahead of the server's
        # handling of the close: give that a moment before calling the stream open.
        deadline = time.monotonic() + LIVE_CLOSE_WAIT_S
        while cid in state.live_streams and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if cid in state.live_streams:
            raise Conflict("a live stream is still open for this capture", cid)
        async with state.capture_locks.setdefault(cid, asyncio.Lock()):
            out = await anyio.to_thread.run_sync(state.captures.finish, cid, state.settings, asked)
        return JSONResponse(out, status_code=202 if out.get("job") else 200)

    async def restyle(request: Request) -> Response:
        cid = request.path_params["capture_id"]
        body = await json_body(request)
        async with state.capture_locks.setdefault(cid, asyncio.Lock()):
            out = await anyio.to_thread.run_sync(state.captures.restyle, cid, body)
        return JSONResponse(out, status_code=202)

    async def job_events(request: Request) -> Response:
        cid = request.path_params["capture_id"]
        after = parse_count(request.query_params.get("after"), "after", default=0)
        job = await anyio.to_thread.run_sync(state.captures.status, cid)
        if not job["job"] or state.captures.jobs is None:
            return JSONResponse({"job": None, "events": []})
        events = await anyio.to_thread.run_sync(state.captures.jobs.events, job["job"]["id"], after)
        return JSONResponse({"job": job["job"], "events": events})

    async def coverage(request: Request) -> Response:
        capture = await anyio.to_thread.run_sync(state.workspace.capture, request.path_params["capture_id"])
        return JSONResponse(await anyio.to_thread.run_sync(capture_coverage, capture))

    async def live(ws: WebSocket) -> None:
        await live_stream(state, ws)

    async def create_model(request: Request) -> Response:
        body = await json_body(request)
        return JSONResponse(await anyio.to_thread.run_sync(state.generate.create_from_prompt, body),
                            status_code=202)

    async def create_for_capture(request: Request) -> Response:
        body = await json_body(request)
        out = await anyio.to_thread.run_sync(state.generate.create_for_capture,
                                             request.path_params["capture_id"], body)
        return JSONResponse(out, status_code=202)

    async def video_for_capture(request: Request) -> Response:
        body = await json_body(request)
        out = await anyio.to_thread.run_sync(state.generate.video_for_capture,
                                             request.path_params["capture_id"], body)
        return JSONResponse(out, status_code=202)

    async def results(request: Request) -> Response:
        cid = request.path_params["capture_id"]
        return JSONResponse({"results": await anyio.to_thread.run_sync(state.captures.results, cid)})

    async def result_file(request: Request) -> Response:
        path, content_type = await anyio.to_thread.run_sync(
            state.captures.result_path, request.path_params["capture_id"], request.path_params["name"],
        )
        return FileResponse(path, media_type=content_type, filename=path.name)

    routes = [
        Route("/v1/info", info, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        Route("/v1/pair", pair, methods=["POST"]),
        Route("/v1/captures", list_captures, methods=["GET"]),
        Route("/v1/captures", create_capture, methods=["POST"]),
        Route("/v1/captures/{capture_id}", capture_status, methods=["GET"]),
        Route("/v1/captures/{capture_id}/finish", finish, methods=["POST"]),
        Route("/v1/captures/{capture_id}/restyle", restyle, methods=["POST"]),
        Route("/v1/captures/{capture_id}/events", job_events, methods=["GET"]),
        Route("/v1/captures/{capture_id}/coverage", coverage, methods=["GET"]),
        Route("/v1/captures/{capture_id}/results", results, methods=["GET"]),
        Route("/v1/create", create_model, methods=["POST"]),
        Route("/v1/captures/{capture_id}/create", create_for_capture, methods=["POST"]),
        Route("/v1/captures/{capture_id}/video", video_for_capture, methods=["POST"]),
        WebSocketRoute("/v1/captures/{capture_id}/live", live, name="live"),
        Route("/v1/captures/{capture_id}/results/{name}", result_file, methods=["GET"]),
        *tus.routes(),
        *live_preview_routes(state.workspace),
    ]

    async def on_error(request: Request, exc: Exception) -> Response:
        return error_response(exc, tus=request.url.path.startswith("/v1/uploads"))

    async def on_os_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            exc = StorageFull("the server's disk is full; nothing was changed", request.url.path)
            return error_response(exc, tus=request.url.path.startswith("/v1/uploads"))
        raise exc

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        return Response(status_code=400)  # nobody is left to read it; not a server error

    app = Starlette(routes=routes, exception_handlers={
        ScanBridgeError: on_error, OSError: on_os_error, ClientDisconnect: on_disconnect})
    app.add_middleware(PageRouter, workspace=state.workspace)  # share links and the web page; inside the gate
    app.add_middleware(TokenGate, devices=state.devices, connections=state.connections)
    app.add_middleware(BodyLimit)  # outermost: bounds bodies before anything reads them
    return app
