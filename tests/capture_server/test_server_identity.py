"""The server's certificate is its identity; plain HTTP only when allowed; one server per workspace."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest
from server_test_kit import LiveServer

from capture_server.identity import der_fingerprint, load_or_create_identity
from capture_server.server import CaptureServer, read_endpoint
from core.errors import ConfigError
from core.settings import Settings


def served_fingerprint(url: str) -> str:
    host, port = url.split("://", 1)[1].split(":")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, int(port))) as raw, context.wrap_socket(raw) as tls:
        return der_fingerprint(tls.getpeercert(True))


def test_the_served_certificate_is_the_identity_and_survives_restarts(workspace) -> None:
    first = LiveServer(workspace, Settings())
    try:
        fingerprint = served_fingerprint(first.url)
        with first.client() as c:
            info = c.get("/v1/info").json()
        assert info["fingerprint"] == fingerprint and info["server_id"] == fingerprint[:16]
        endpoint = read_endpoint(workspace)
        assert endpoint is not None and endpoint["url"] == first.url
        with pytest.raises(ConfigError, match="already running"):
            CaptureServer(workspace, host="127.0.0.1", port=0, mdns=False, run_worker=False).run()
    finally:
        first.stop()
    assert read_endpoint(workspace) is None
    second = LiveServer(workspace, Settings())
    try:
        assert served_fingerprint(second.url) == fingerprint
    finally:
        second.stop()
    key = workspace.root / "server" / "key.pem"
    assert key.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only


def test_plain_http_only_when_allowed(workspace) -> None:
    with pytest.raises(ConfigError) as refused:
        CaptureServer(workspace, settings=Settings(), plain_http=True, mdns=False)
    assert refused.value.where == "allow_plain_http"
    server = LiveServer(workspace, Settings(allow_plain_http=True), plain_http=True)
    try:
        assert server.url.startswith("http://")
        assert httpx.get(server.url + "/v1/info").json()["server_id"] == server.server.identity.server_id
    finally:
        server.stop()


def test_https_turned_off_in_settings_serves_plain_http(workspace) -> None:
    """Unticking HTTPS in the desktop's settings (https: false) must not stop the server."""
    server = LiveServer(workspace, Settings(https=False))
    try:
        assert server.url.startswith("http://")
        token = server.token()
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.post("/v1/captures", json={"mode": "free"}).status_code == 201
            assert c.get("/v1/captures").status_code == 200
    finally:
        server.stop()


def test_a_broken_certificate_is_one_clear_error(workspace) -> None:
    identity = load_or_create_identity(workspace)
    identity.cert_path.write_text("not a certificate")
    with pytest.raises(ConfigError) as bad:
        load_or_create_identity(workspace)
    assert "cert.pem" in str(bad.value)
