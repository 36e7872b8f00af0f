"""Running the capture server: TLS, the uvicorn loop, mDNS, the job worker, one server per workspace."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import uvicorn

from capture_server.app import PROTOCOL_VERSION, ServerState, build_app
from capture_server.auth import DeviceStore
from capture_server.captures import CaptureService
from capture_server.connections import (
    ConnectionLimits,
    ConnectionRegistry,
    accept_loop,
    fitted_to_open_files,
    guarded_protocol,
)
from capture_server.discovery import Advertiser, PhoneDirectory, local_ipv4_addresses
from capture_server.identity import ServerIdentity, load_or_create_identity, server_dir
from capture_server.jobs_link import JobLink, start_worker
from capture_server.uploads import DEFAULT_TTL_S, UploadStore
from core.errors import ConfigError
from core.fsio import atomic_write_json
from core.settings import Settings, load_settings
from core.workspace import Workspace

ENDPOINT_NAME = "endpoint.json"
SWEEP_EVERY_S = 3600.0


def make_state(workspace: Workspace, settings: Settings, identity: ServerIdentity,
               with_jobs: bool = True, upload_ttl_s: float = DEFAULT_TTL_S,
               limits: ConnectionLimits | None = None) -> ServerState:
    uploads = UploadStore(workspace, settings.max_upload_bytes, upload_ttl_s)
    jobs = JobLink(workspace) if with_jobs else None
    return ServerState(
        workspace=workspace, settings=settings, identity=identity,
        devices=DeviceStore(server_dir(workspace)), uploads=uploads,
        captures=CaptureService(workspace, uploads, jobs),
        connections=ConnectionRegistry(fitted_to_open_files(limits or ConnectionLimits())),
    )


def read_endpoint(workspace: Workspace) -> dict[str, Any] | None:
    """Where the workspace's running server listens, as it wrote on start (None if not running)."""
    try:
        data = json.loads((server_dir(workspace) / ENDPOINT_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid = data.get("pid")
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return None
    return data


@contextlib.contextmanager
def workspace_lock(workspace: Workspace) -> Iterator[IO[str]]:
    path = server_dir(workspace) / "server.lock"
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError("another capture server is already running on this workspace",
                              workspace.root) from None
        yield f


class _Uvicorn(uvicorn.Server):
    """uvicorn's server loop over connections this server accepts itself (capture_server.connections)."""

    def __init__(self, config: uvicorn.Config, registry: ConnectionRegistry,
                 on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._registry = registry
        self._on_started = on_started
        self._acceptors: list[asyncio.Task[None]] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        if not config.loaded:
            config.load()
        protocol_class = guarded_protocol(self._registry, config.ws_protocol_class)

        def create_protocol() -> asyncio.Protocol:
            return protocol_class(config=config, server_state=self.server_state,
                                  app_state=self.lifespan.state)

        loop = asyncio.get_running_loop()
        for sock in sockets or []:
            sock.listen(config.backlog)
        self.servers = []
        self._acceptors = [loop.create_task(accept_loop(sock, create_protocol, config.ssl, self._registry))
                           for sock in sockets or []]
        self.started = True
        if not self.should_exit:
            self._on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for task in self._acceptors:
            task.cancel()
        await asyncio.gather(*self._acceptors, return_exceptions=True)
        await super().shutdown(sockets)


class CaptureServer:
    """The headless server: HTTPS API, mDNS advertisement and phone list, the job worker."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        host: str = "0.0.0.0",
        port: int | None = None,
        settings: Settings | None = None,
        name: str | None = None,
        plain_http: bool = False,
        mdns: bool = True,
        mdns_interfaces: Sequence[str] | None = None,
        run_worker: bool = True,
        upload_ttl_s: float = DEFAULT_TTL_S,
        limits: ConnectionLimits | None = None,
        forwarded_allow_ips: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.settings = settings or load_settings(workspace.settings_path)
        # HTTPS unless the user turned it off in settings; --http overriding HTTPS needs allow_plain_http.
        self.https = self.settings.https and not plain_http
        if plain_http and self.settings.https and not self.settings.allow_plain_http:
            raise ConfigError("HTTPS is on in settings; turn it off there, or set allow_plain_http "
                              "to allow --http", "allow_plain_http")
        self.host = host
        self.port = self.settings.server_port if port is None else port
        self.identity = load_or_create_identity(workspace, name)
        self.state = make_state(workspace, self.settings, self.identity, upload_ttl_s=upload_ttl_s,
                                limits=limits)
        self.forwarded_allow_ips = forwarded_allow_ips
        self.mdns, self.mdns_interfaces, self.run_worker = mdns, mdns_interfaces, run_worker
        self.phones = PhoneDirectory(mdns_interfaces)
        self._stop = threading.Event()
        self._uvicorn: _Uvicorn | None = None
        self.url: str | None = None

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {e.strerror}", "port") from None
        return sock

    def _advertised_host(self) -> tuple[str, list[str]]:
        if self.host in ("0.0.0.0", ""):
            addresses = local_ipv4_addresses()
            return addresses[0], addresses
        return self.host, [self.host]

    def stop(self) -> None:
        self._stop.set()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True

    def run(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve until stop(), SIGINT or SIGTERM. ``on_ready(url)`` runs once it accepts connections."""
        with workspace_lock(self.workspace):
            self.workspace.clean_stale_staging()
            self.state.uploads.sweep_expired()
            sock = self._bind()
            port = sock.getsockname()[1]
            shown_host, addresses = self._advertised_host()
            scheme = "https" if self.https else "http"
            self.url = f"{scheme}://{shown_host}:{port}"
            endpoint = server_dir(self.workspace) / ENDPOINT_NAME
            advertiser = Advertiser(self.identity.name, port, {
                "protocol_version": str(PROTOCOL_VERSION), "server_id": self.identity.server_id,
                "name": self.identity.name, "fingerprint": self.identity.fingerprint, "scheme": scheme,
            }, addresses, self.mdns_interfaces)
            background: list[threading.Thread] = []

            def started() -> None:
                atomic_write_json(endpoint, {"url": self.url, "host": shown_host, "port": port,
                                             "scheme": scheme, "addresses": addresses, "pid": os.getpid(),
                                             "fingerprint": self.identity.fingerprint})
                if self.mdns:
                    background.append(_thread(self._start_discovery, advertiser))
                background.append(_thread(self._sweep_periodically))
                if on_ready is not None:
                    on_ready(self.url)

            limits = self.state.connections.limits
            config = uvicorn.Config(
                build_app(self.state), log_level="warning", lifespan="off", access_log=False,
                timeout_graceful_shutdown=5, timeout_keep_alive=limits.keep_alive_s,
                http="httptools", ws_max_queue=4,
                # The peer address is the client, unless the user names a proxy to trust.
                proxy_headers=self.forwarded_allow_ips is not None,
                forwarded_allow_ips=self.forwarded_allow_ips or "",
                ssl_certfile=str(self.identity.cert_path) if self.https else None,
                ssl_keyfile=str(self.identity.key_path) if self.https else None,
            )
            self._uvicorn = _Uvicorn(config, self.state.connections, started)
            worker = start_worker(self.workspace, self._stop) if self.run_worker else None
            try:
                self._uvicorn.run(sockets=[sock])
            finally:
                self._stop.set()
                endpoint.unlink(missing_ok=True)
                with contextlib.suppress(Exception):
                    advertiser.close()
                self.phones.close()
                if worker is not None:
                    worker.join(timeout=10)
                sock.close()

    def _start_discovery(self, advertiser: Advertiser) -> None:
        try:
            self.phones.start()
            if not self._stop.is_set():
                advertiser.start()
        except OSError as e:  # no multicast on this network: the server still works by address
            print(f"warning: mDNS is unavailable ({e}); phones must be given the address", flush=True)

    def _sweep_periodically(self) -> None:
        while not self._stop.wait(SWEEP_EVERY_S):
            self.state.uploads.sweep_expired()


def _thread(target: Callable[..., None], *args: Any) -> threading.Thread:
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def pairing_url(endpoint: dict[str, Any] | None, settings: Settings, fingerprint: str, code: str) -> str:
    """The URL a phone opens (or reads from the QR code) to pair: address, port, fingerprint, code."""
    if endpoint:
        base = endpoint["url"]
    else:
        base = f"{'https' if settings.https else 'http'}://{local_ipv4_addresses()[0]}:{settings.server_port}"
    return f"{base}/pair?code={code}&fp={fingerprint}"
