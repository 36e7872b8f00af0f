"""Pairing codes and device tokens, stored in ``<workspace>/server/devices.json``.

Codes are one-time, valid five minutes, made by ``scanbridge pair`` (another process than the
server), so they live in the same file as the devices. Tokens are 256-bit random; only their
SHA-256 is stored. Every change is a locked read-modify-write published atomically.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capture_server.errors import RateLimited, RequestError, Unauthorized
from core.errors import ConfigError, NotFoundError
from core.fsio import atomic_write_json

CODE_TTL_S = 300
CODE_DIGITS = 8
STORE_NAME = "devices.json"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Device:
    id: str
    name: str
    paired: float  # unix time
    revoked: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "paired": self.paired, "revoked": self.revoked}


@dataclass(frozen=True)
class Pairing:
    token: str  # shown once, never stored
    device: Device


class DeviceStore:
    """Devices and pending pairing codes of one workspace."""

    def __init__(self, server_dir: Path, clock: Any = time.time) -> None:
        self.path = Path(server_dir) / STORE_NAME
        self._lock_path = Path(server_dir) / (STORE_NAME + ".lock")
        self._clock = clock
        self._cache_key: tuple[int, int, int] | None = None
        self._cache: dict[str, Any] = {"devices": [], "codes": []}
        self._cache_lock = threading.Lock()

    # -- storage -------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"devices": [], "codes": []}
        except json.JSONDecodeError as e:
            raise ConfigError(f"not valid JSON (line {e.lineno})", self.path) from None
        if not isinstance(data, dict):
            raise ConfigError("expected a JSON object", self.path)
        data.setdefault("devices", [])
        data.setdefault("codes", [])
        return data

    def _snapshot(self) -> dict[str, Any]:
        """The stored data, re-read only when the file changed (another process may write it)."""
        try:
            st = os.stat(self.path)
            key = (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            key = None
        with self._cache_lock:
            if key != self._cache_key or key is None:
                self._cache = self._read()
                self._cache_key = key
            return self._cache

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self._read()
                yield data
                atomic_write_json(self.path, data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- pairing codes --------------------------------------------------------------------------

    def new_code(self) -> tuple[str, float]:
        """A fresh one-time code and the unix time it expires at."""
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        now = self._clock()
        expires = now + CODE_TTL_S
        with self._editing() as data:
            data["codes"] = [c for c in data["codes"] if c["expires"] > now]
            data["codes"].append({"sha256": _sha256(code), "expires": expires})
        return code, expires

    def redeem(self, code: str, device_name: str) -> Pairing:
        """Trade a valid code for a new device token; the code is used up."""
        if not isinstance(code, str) or not code.strip():
            raise RequestError("expected the pairing code as a string", "code")
        if not isinstance(device_name, str) or not device_name.strip() or len(device_name) > 100:
            raise RequestError("expected a device name (1 to 100 characters)", "name")
        digest = _sha256(code.strip())
        now = self._clock()
        with self._editing() as data:
            live = [c for c in data["codes"] if c["expires"] > now]
            match = [c for c in live if secrets.compare_digest(c["sha256"], digest)]
            data["codes"] = [c for c in live if c not in match]
            if not match:
                raise Unauthorized("wrong or expired pairing code", "code")
            token = secrets.token_urlsafe(32)
            device = Device(secrets.token_hex(6), device_name.strip(), now)
            data["devices"].append({**device.to_json(), "token_sha256": _sha256(token)})
        return Pairing(token, device)

    # -- devices --------------------------------------------------------------------------------

    def devices(self) -> list[Device]:
        return [
            Device(d["id"], d["name"], d["paired"], d.get("revoked")) for d in self._snapshot()["devices"]
        ]

    def revoke(self, device_id: str) -> Device:
        with self._editing() as data:
            for d in data["devices"]:
                if d["id"] == device_id:
                    d["revoked"] = d.get("revoked") or self._clock()
                    return Device(d["id"], d["name"], d["paired"], d["revoked"])
        raise NotFoundError("no paired device with this id", device_id)

    def revoked_ids(self) -> set[str]:
        """Ids of revoked devices, as the store is now (re-read only when the file changed)."""
        return {d["id"] for d in self._snapshot()["devices"] if d.get("revoked")}

    def authenticate(self, token: str) -> Device:
        """The device a bearer token belongs to; Unauthorized when unknown or revoked."""
        digest = _sha256(token)
        for d in self._snapshot()["devices"]:
            if secrets.compare_digest(d.get("token_sha256", ""), digest):
                if d.get("revoked"):
                    raise Unauthorized("this device was revoked; pair it again", "Authorization")
                return Device(d["id"], d["name"], d["paired"])
        raise Unauthorized("unknown device token", "Authorization")


class FailureLimiter:
    """Counts wrong pairing codes: at most ``per_client`` per client and ``overall`` in total
    within ``window_s``; past that, pairing answers 429 until the window has moved on."""

    def __init__(self, per_client: int = 5, overall: int = 30, window_s: float = 60.0,
                 clock: Any = time.monotonic) -> None:
        self.per_client, self.overall, self.window_s = per_client, overall, window_s
        self._clock = clock
        self._failures: collections.deque[tuple[float, str]] = collections.deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        while self._failures and self._failures[0][0] <= now - self.window_s:
            self._failures.popleft()

    def check(self, client: str) -> None:
        """Raise RateLimited when ``client`` (or everyone together) failed too often lately."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            mine = [t for t, c in self._failures if c == client]
            if len(mine) >= self.per_client or len(self._failures) >= self.overall:
                oldest = mine[0] if len(mine) >= self.per_client else self._failures[0][0]
                retry = max(1, int(oldest + self.window_s - now) + 1)
                raise RateLimited("too many wrong pairing codes; wait and try again", "code", retry)

    def record_failure(self, client: str) -> None:
        with self._lock:
            self._failures.append((self._clock(), client))
