"""The reference client of the phone protocol (docs/protocol.md): certificate pinning, pairing,
captures, and resumable tus uploads that survive dropped connections and server restarts."""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from capture_server.errors import RequestError
from capture_server.identity import der_fingerprint
from capture_server.names import encode_tus_metadata
from core.errors import ScanBridgeError

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 8 * 1024 * 1024


class ServerError(ScanBridgeError):
    """The server refused a request; carries its status and JSON error."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            body = response.json()
            message, where = body.get("reason") or body.get("error"), body.get("where")
        except ValueError:
            message, where = response.text[:200] or response.reason_phrase, None
        super().__init__(f"{response.status_code} {message}", where)
        self.status = response.status_code


class PinMismatch(ScanBridgeError):
    """The server's certificate is not the one we paired with: maybe not our server."""


def _check(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        response.read()
        raise ServerError(response)
    return response


class ServerSession:
    """An HTTP session with one ScanBridge server, pinned to its certificate fingerprint."""

    def __init__(self, base_url: str, fingerprint: str | None = None, token: str | None = None,
                 timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.fingerprint = fingerprint.lower() if fingerprint else None
        self.token = token
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # we pin the certificate instead of trusting a CA
        self._http = httpx.Client(base_url=self.base_url, verify=context, timeout=timeout_s,
                                  event_hooks={"response": [self._pin]})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pin(self, response: httpx.Response) -> None:
        if not self.base_url.startswith("https"):
            return
        stream = response.extensions.get("network_stream")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        der = ssl_object.getpeercert(True) if ssl_object is not None else None
        if der is None:
            raise PinMismatch("the server presented no certificate", self.base_url)
        seen = der_fingerprint(der)
        if self.fingerprint is None:
            self.fingerprint = seen  # trust on first use; callers compare with /v1/info or mDNS
        elif seen != self.fingerprint:
            raise PinMismatch(f"certificate fingerprint is {seen}, expected {self.fingerprint}",
                              self.base_url)

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**auth, **(extra or {})}

    def request(self, method: str, path: str, *ok: int, **kwargs: Any) -> httpx.Response:
        headers = self._headers(kwargs.pop("headers", None))
        return _check(self._http.request(method, path, headers=headers, **kwargs), *(ok or (200,)))

    # -- protocol calls ------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        info = self.request("GET", "/v1/info").json()
        pinned = self.fingerprint and self.base_url.startswith("https")
        if pinned and info.get("fingerprint") != self.fingerprint:
            raise PinMismatch("the server's stated fingerprint differs from its certificate", self.base_url)
        return info

    def pair(self, code: str, name: str) -> dict[str, Any]:
        paired = self.request("POST", "/v1/pair", json={"code": code, "name": name}).json()
        self.token = paired["token"]
        return paired

    def create_capture(self, mode: str, name: str, device: dict[str, str] | None = None) -> dict[str, Any]:
        body = {"mode": mode, "name": name, "device": device or {}}
        return self.request("POST", "/v1/captures", 201, json=body).json()

    def capture(self, capture_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/captures/{capture_id}").json()

    def finish(self, capture_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/captures/{capture_id}/finish", 200, 202).json()

    def create_upload(self, capture_id: str, filename: str, length: int, kind: str | None = None) -> str:
        meta = {"capture_id": capture_id, "filename": filename, **({"kind": kind} if kind else {})}
        r = self.request("POST", "/v1/uploads", 201, headers={
            **TUS, "Upload-Length": str(length), "Upload-Metadata": encode_tus_metadata(meta)})
        return r.headers["Location"]

    def offset(self, upload_url: str) -> int:
        return int(self.request("HEAD", upload_url, headers=TUS).headers["Upload-Offset"])

    def upload_file(self, upload_url: str, path: Path, progress: Callable[[int], None] | None = None,
                    retries: int = 5, retry_delay_s: float = 1.0) -> int:
        """Send ``path`` from the server's offset on, chunk by chunk with a SHA-1 checksum;
        after a dropped connection or a restarted server, ask for the offset and go on."""
        size = path.stat().st_size
        failures = 0
        offset = self.offset(upload_url)
        with open(path, "rb") as f:
            while offset < size:
                f.seek(offset)
                chunk = f.read(CHUNK)
                digest = base64.b64encode(hashlib.sha1(chunk).digest()).decode()
                try:
                    r = self.request("PATCH", upload_url, 204, content=chunk, headers={
                        **TUS, "Upload-Offset": str(offset), "Upload-Checksum": f"sha1 {digest}",
                        "Content-Type": "application/offset+octet-stream"})
                    offset = int(r.headers["Upload-Offset"])
                    failures = 0
                except (httpx.TransportError, ServerError) as e:
                    transient = isinstance(e, httpx.TransportError) or e.status in (409, 423, 460, 500, 503)
                    failures += 1
                    if not transient or failures > retries:
                        raise
                    time.sleep(retry_delay_s)
                    offset = self._offset_after_failure(upload_url, retries, retry_delay_s)
                if progress is not None:
                    progress(offset)
        return offset

    def _offset_after_failure(self, upload_url: str, retries: int, delay_s: float) -> int:
        for attempt in range(retries + 1):
            try:
                return self.offset(upload_url)
            except httpx.TransportError:
                if attempt == retries:
                    raise
                time.sleep(delay_s)
        raise RequestError("unreachable", upload_url)




def client_state_dir() -> Path:
    """Where ``scanbridge send`` keeps tokens and upload journals."""
    root = os.environ.get("SCANBRIDGE_CLIENT_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "scanbridge-client")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
