"""Every client bounded at the connection: admission caps, timeouts per phase, header limits.

Why here and not in uvicorn's options or an ASGI middleware: an ASGI app sees a request only once
its headers are parsed, so it cannot time a TLS handshake, an idle connection, headers or a body
that trickles in, nor count connections; uvicorn's own limits cover parts only (its header limit
is h11's and does nothing under httptools, ``limit_concurrency`` answers 503 after parsing). So
the server accepts connections itself (``accept_loop``: a cap on connections and on
unauthenticated connections per address, checked before TLS) and runs uvicorn's httptools
protocol with timers per phase (``GuardedHttpProtocol``). Bodies per route and JSON are bounded
one level up, in capture_server.bounded.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import errno
import logging
import resource
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

Peer = tuple[str, int]
PEER_EXTENSION = "scanbridge.peer"  # in a request scope's "extensions": the transport's own peer
RESERVED_FILES = 64  # open files kept for uploads, the job database, logs
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 512  # lowered to fit the open-files limit at start
    max_unauthenticated_per_address: int = 32
    tls_handshake_s: float = 10.0
    tls_shutdown_s: float = 5.0  # waiting for the client's close_notify before the socket is dropped
    header_s: float = 10.0  # a new connection (or a request's first byte) to its last header
    keep_alive_s: int = 5  # idle between requests (uvicorn's timeout_keep_alive)
    body_window_s: float = 10.0  # a body must bring body_min_bytes in every window ...
    body_min_bytes: int = 1024
    unauthenticated_body_s: float = 10.0  # ... and, without a device token, end within this
    write_stall_s: float = 60.0  # a client that reads none of a response for this long
    max_header_bytes: int = 32 * 1024  # request line and headers
    max_headers: int = 100


def raise_open_files_limit(wanted: int = 8192) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (up to the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fitted_to_open_files(limits: ConnectionLimits) -> ConnectionLimits:
    """``limits`` with max_connections lowered so connections never use up the open files."""
    files = raise_open_files_limit(max(8192, limits.max_connections + RESERVED_FILES))
    fit = max(8, files - RESERVED_FILES) if files != resource.RLIM_INFINITY else limits.max_connections
    if fit >= limits.max_connections:
        return limits
    return dataclasses.replace(limits, max_connections=fit)


class ConnectionRegistry:
    """Open connections by peer: admission caps and which are authenticated. Event-loop thread only.

    At the cap on connections, the oldest unauthenticated connection of the address holding the
    most of them is closed to make room, so addresses flooding the server cannot lock a phone out."""

    def __init__(self, limits: ConnectionLimits | None = None) -> None:
        self.limits = limits or ConnectionLimits()
        self._open: dict[Peer, str | None] = {}  # peer -> device id once a request carried its token
        self._closers: dict[Peer, Callable[[], None]] = {}
        self._unauthenticated: collections.Counter[str] = collections.Counter()
        self.refused = 0
        self.cut = 0  # closed by a timeout or a limit

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, peer: Peer) -> bool:
        if self._unauthenticated[peer[0]] >= self.limits.max_unauthenticated_per_address or \
                len(self._open) >= self.limits.max_connections and not self._evict_one():
            self.refused += 1
            return False
        self._open[peer] = None
        self._unauthenticated[peer[0]] += 1
        return True

    def set_closer(self, peer: Peer, close: Callable[[], None]) -> None:
        """How to close ``peer``'s connection now, should room be needed."""
        if peer in self._open:
            self._closers[peer] = close

    def _evict_one(self) -> bool:
        if not self._unauthenticated:
            return False
        host = max(self._unauthenticated, key=self._unauthenticated.__getitem__)
        victim = next((p for p, device in self._open.items() if device is None and p[0] == host), None)
        close = self._closers.get(victim) if victim is not None else None
        if victim is None or close is None:
            return False
        self.release(victim)
        self.cut += 1
        close()
        return True

    def release(self, peer: Peer) -> None:
        self._closers.pop(peer, None)
        if peer in self._open and self._open.pop(peer) is None:
            self._forget_unauthenticated(peer[0])

    def mark_authenticated(self, peer: Peer, device_id: str) -> None:
        if peer in self._open and self._open[peer] is None:
            self._open[peer] = device_id
            self._forget_unauthenticated(peer[0])

    def is_authenticated(self, peer: Peer | None) -> bool:
        return peer is not None and self._open.get(peer) is not None

    def _forget_unauthenticated(self, host: str) -> None:
        self._unauthenticated[host] -= 1
        if self._unauthenticated[host] <= 0:
            del self._unauthenticated[host]


def peer_of(transport: asyncio.BaseTransport) -> Peer | None:
    info = transport.get_extra_info("peername")
    return (str(info[0]), int(info[1])) if isinstance(info, tuple) and len(info) >= 2 else None


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request the limits refuse."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on headers and timers per phase; see module doc."""

    registry: ClassVar[ConnectionRegistry]
    websocket_class: ClassVar[type[asyncio.Protocol] | None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = self.registry.limits
        self.ws_protocol_class = self.websocket_class
        self.peer: Peer | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._reading_headers = True
        self._header_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._body_started = self._window_started = 0.0
        self._paused_in_window = False
        self._refusal: tuple[int, str] | None = None

    # -- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.peer = peer_of(transport)
        if self.peer is not None:
            self.registry.set_closer(self.peer, transport.abort)
        self._header_timer = self.loop.call_later(self.limits.header_s, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self.peer is not None:
            self.registry.release(self.peer)
        super().connection_lost(exc)

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = self._write_timer = None

    def handle_websocket_upgrade(self) -> None:
        self._cancel_timers()  # the WebSocket protocol pings; its class releases the peer
        super().handle_websocket_upgrade()

    def _cut(self, why: str) -> None:
        if not self.transport.is_closing():
            self.registry.cut += 1
            log.info("closed a connection from %s: %s", self.peer and self.peer[0], why)
            self.transport.abort()

    def _refuse(self, status: int, why: str) -> None:
        """Answer ``status`` and close, unless a response is already on its way (then just close)."""
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._cut(why)
            return
        body = why.encode("ascii", "replace")
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: ", str(len(body)).encode("ascii"), b"\r\nconnection: close\r\n\r\n", body]))
        self.registry.cut += 1
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:
            self._refuse(*self._refusal)
        else:
            super().send_400_response(msg)

    # -- headers --------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        # Still in the headers after this chunk and over the limit: httptools keeps partial
        # headers in memory, so stop here (at most one read past the limit is held).
        if self._reading_headers and self._header_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"request headers are over {self.limits.max_header_bytes} bytes")

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._refuse(408, f"no complete request headers within {self.limits.header_s:g} s")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {PEER_EXTENSION: self.peer}
        self._header_count = 0
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_s, self._headers_too_slow)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = (431, f"more than {self.limits.max_headers} request headers")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_header_bytes:
            self._refusal = (431, f"request headers are over {self.limits.max_header_bytes} bytes")
            raise _Refused
        self._reading_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._body_bytes, self._paused_in_window = 0, False
        self._body_started = self._window_started = self.loop.time()
        self._body_timer = self.loop.call_later(self._body_tick(), self._check_body)
        super().on_headers_complete()

    # -- body -----------------------------------------------------------------------------------

    def _body_tick(self) -> float:
        return min(self.limits.body_window_s, self.limits.unauthenticated_body_s)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)
        self._paused_in_window = self._paused_in_window or self.flow.read_paused

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._reading_headers, self._header_bytes = True, 0
        super().on_message_complete()

    def _check_body(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if not self.registry.is_authenticated(self.peer) and now - self._body_started >= \
                self.limits.unauthenticated_body_s:
            self._cut(f"a body without a device token took over {self.limits.unauthenticated_body_s:g} s")
            return
        # A read the server paused (its app is busy) is not the client's slowness: start over.
        paused = self.flow.read_paused or self._paused_in_window
        if now - self._window_started >= self.limits.body_window_s or paused:
            if not paused and self._body_bytes < self.limits.body_min_bytes:
                self._cut(f"a body brought under {self.limits.body_min_bytes} bytes in "
                          f"{self.limits.body_window_s:g} s")
                return
            self._window_started, self._body_bytes, self._paused_in_window = now, 0, False
        self._body_timer = self.loop.call_later(self._body_tick(), self._check_body)

    # -- responses ------------------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.limits.write_stall_s, self._cut,
                                                     "the client read nothing of the response")

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().resume_writing()


class _ReleasingWebSocket:
    """Mixed into uvicorn's WebSocket protocol: gives the peer's slot back when the socket closes."""

    registry: ClassVar[ConnectionRegistry]

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._guard_peer = peer_of(transport)
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._guard_peer is not None:
            self.registry.release(self._guard_peer)
        super().connection_lost(exc)  # type: ignore[misc]


def guarded_protocol(registry: ConnectionRegistry, websocket_base: type[asyncio.Protocol] | None
                     ) -> type[GuardedHttpProtocol]:
    """The protocol class for one server, bound to its registry."""
    websocket = None if websocket_base is None else type(
        "GuardedWebSocket", (_ReleasingWebSocket, websocket_base), {"registry": registry})
    return type("BoundGuardedHttpProtocol", (GuardedHttpProtocol,),
                {"registry": registry, "websocket_class": websocket})


async def accept_loop(sock: socket.socket, protocol_factory: Callable[[], asyncio.Protocol],
                      ssl_context: ssl.SSLContext | None, registry: ConnectionRegistry) -> None:
    """Accept connections on ``sock`` until cancelled; over a cap, a connection is closed at once."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    handshakes: set[asyncio.Task[Any]] = set()

    async def start(conn: socket.socket, peer: Peer) -> None:
        try:
            tls = {"ssl_handshake_timeout": registry.limits.tls_handshake_s,
                   "ssl_shutdown_timeout": registry.limits.tls_shutdown_s} if ssl_context else {}
            await loop.connect_accepted_socket(protocol_factory, conn, ssl=ssl_context, **tls)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError, EOFError):
            registry.release(peer)  # the handshake failed or took too long: no protocol saw it
            conn.close()
        except asyncio.CancelledError:  # evicted to make room, or the server is stopping
            registry.release(peer)
            conn.close()

    try:
        while True:
            try:
                conn, address = await loop.sock_accept(sock)
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("cannot accept connections for now: %s", e.strerror)
                    await asyncio.sleep(0.5)
                continue
            try:
                peer = (str(address[0]), int(address[1]))
                if not registry.admit(peer):
                    conn.close()
                    continue
                with contextlib.suppress(OSError):  # the client may have reset it already
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                task = loop.create_task(start(conn, peer))
                registry.set_closer(peer, task.cancel)  # until the protocol takes over
                handshakes.add(task)
                task.add_done_callback(handshakes.discard)
            except Exception as e:  # one odd connection never stops the server accepting
                log.warning("dropped a connection from %s: %r", address, e)
                conn.close()
    finally:
        for task in list(handshakes):
            task.cancel()
