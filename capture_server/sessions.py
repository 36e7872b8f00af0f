"""Requests and WebSockets in flight, per device, so that revoking a device cuts them at once.

A device is revoked by ``scanbridge devices --revoke`` or the desktop (both DeviceStore.revoke,
maybe in another process), so while anything is open the store is polled (a stat of
devices.json; it is re-read only when it changed). ``run_until_revoked`` runs one request of a
device and, on revocation, cancels it and ends it with 401 (HTTP) or close code 4401 (WebSocket).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from starlette.types import Message, Scope, Send

from capture_server.auth import DeviceStore

POLL_S = 0.25
REVOKED = "this device was revoked; pair it again"


class DeviceSessions:
    """Open sessions by device id; event-loop thread only."""

    def __init__(self, devices: DeviceStore, poll_s: float = POLL_S) -> None:
        self.devices = devices
        self.poll_s = poll_s
        self._open: dict[str, set[asyncio.Event]] = {}
        self._watcher: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def session(self, device_id: str) -> Iterator[asyncio.Event]:
        """An event set when ``device_id`` is revoked, for as long as the block runs."""
        revoked = asyncio.Event()
        self._open.setdefault(device_id, set()).add(revoked)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        try:
            yield revoked
        finally:
            events = self._open.get(device_id, set())
            events.discard(revoked)
            if not events:
                self._open.pop(device_id, None)

    async def _watch(self) -> None:
        while self._open:
            await asyncio.sleep(self.poll_s)
            try:
                revoked = self.devices.revoked_ids()
            except Exception:  # an unreadable store is reported by the next authentication
                continue
            for device_id in revoked & set(self._open):
                for event in self._open[device_id]:
                    event.set()


async def run_until_revoked(app: Callable[[Scope, Any, Send], Awaitable[None]], scope: Scope, receive: Any,
                            send: Send, revoked: asyncio.Event) -> None:
    """Run ``app``; if ``revoked`` is set first, cancel it and end the request for the client."""
    sent: set[str] = set()

    async def tracking_send(message: Message) -> None:
        sent.add(message["type"])
        await send(message)

    app_task = asyncio.ensure_future(app(scope, receive, tracking_send))
    waiter = asyncio.ensure_future(revoked.wait())
    try:
        done, _ = await asyncio.wait({app_task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        app_task.cancel()
        waiter.cancel()
        raise
    if app_task in done:
        waiter.cancel()
        app_task.result()
        return
    app_task.cancel()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await app_task
    with contextlib.suppress(Exception):
        await _end(scope, send, sent)


async def _end(scope: Scope, send: Send, sent: set[str]) -> None:
    if scope["type"] == "websocket":
        if "websocket.close" not in sent:
            await send({"type": "websocket.close", "code": 4401, "reason": REVOKED})
        return
    if "http.response.start" in sent:
        return  # the response is under way: uvicorn closes the connection it cannot finish
    body = json.dumps({"error": f"Authorization: {REVOKED}", "type": "Unauthorized",
                       "reason": REVOKED, "where": "Authorization"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), (b"www-authenticate", b'Bearer realm="scanbridge"')]
    if scope["path"].startswith("/v1/uploads"):
        headers.append((b"tus-resumable", b"1.0.0"))
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
