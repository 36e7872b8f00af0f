"""mDNS: advertise this server as ``_scanbridge._tcp`` and keep a live list of phones that
advertise ``_sbphone._tcp``.

Earlier releases named the phone service ``_scanbridge-phone._tcp``: 16 bytes, one more than RFC
6763 allows for a service name, so phone-side DNS-SD stacks may refuse it. The directory still
browses that old type for one release (python-zeroconf reads it only when not strict).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zeroconf import (
    BadTypeInNameException,
    InterfaceChoice,
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)

SERVER_TYPE = "_scanbridge._tcp.local."
PHONE_TYPE = "_sbphone._tcp.local."
LEGACY_PHONE_TYPE = "_scanbridge-phone._tcp.local."  # browsed, never announced; drop after 0.2


def local_ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses as others on the LAN would reach it (loopback if none)."""
    found: list[str] = []
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
        found.append(probe.getsockname()[0])
    except OSError:
        pass
    finally:
        probe.close()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addr = str(info[4][0])
            if addr not in found and not addr.startswith("127."):
                found.append(addr)
    except OSError:
        pass
    return found or ["127.0.0.1"]


def _zeroconf(interfaces: Sequence[str] | None) -> Zeroconf:
    return Zeroconf(interfaces=list(interfaces) if interfaces else InterfaceChoice.All,
                    ip_version=IPVersion.V4Only)


def _decode_txt(properties: dict[bytes, bytes | None]) -> dict[str, str]:
    return {k.decode("utf-8", "replace"): (v or b"").decode("utf-8", "replace")
            for k, v in properties.items()}


class Advertiser:
    """Announces the server from ``start()`` until ``close()``."""

    def __init__(self, name: str, port: int, txt: dict[str, str], addresses: Sequence[str],
                 interfaces: Sequence[str] | None = None) -> None:
        label = name.replace(".", " ")[:50]
        self.info = ServiceInfo(
            SERVER_TYPE, f"{label}.{SERVER_TYPE}",
            addresses=[socket.inet_aton(a) for a in addresses], port=port, properties=txt,
            server=f"scanbridge-{txt.get('server_id', 'x')[:8]}.local.",
        )
        self._interfaces = interfaces
        self._zc: Zeroconf | None = None

    def start(self) -> None:
        self._zc = _zeroconf(self._interfaces)
        self._zc.register_service(self.info, allow_name_change=True)

    def close(self) -> None:
        if self._zc is not None:
            try:
                self._zc.unregister_service(self.info)
            finally:
                self._zc.close()
                self._zc = None


@dataclass(frozen=True)
class Phone:
    name: str  # the mDNS instance name
    addresses: tuple[str, ...]
    port: int
    properties: dict[str, str]


@dataclass(frozen=True)
class PhoneEvent:
    kind: str  # "appeared" | "updated" | "disappeared"
    phone: Phone


PhoneListener = Callable[[PhoneEvent], None]


class PhoneDirectory:
    """Phones on the LAN, kept current from mDNS; listeners hear each change as a PhoneEvent."""

    def __init__(self, interfaces: Sequence[str] | None = None) -> None:
        self._interfaces = interfaces
        self._phones: dict[str, Phone] = {}
        self._lock = threading.Lock()
        self._listeners: list[PhoneListener] = []
        self._zc: Zeroconf | None = None
        self._browsers: list[ServiceBrowser] = []

    def add_listener(self, listener: PhoneListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def phones(self) -> list[Phone]:
        with self._lock:
            return sorted(self._phones.values(), key=lambda p: p.name)

    def start(self) -> None:
        self._zc = _zeroconf(self._interfaces)
        self._browsers = [ServiceBrowser(self._zc, PHONE_TYPE, handlers=[self._on_change])]
        try:
            self._browsers.append(ServiceBrowser(self._zc, LEGACY_PHONE_TYPE, handlers=[self._on_change]))
        except BadTypeInNameException:  # a zeroconf that refuses over-long types even when browsing
            pass

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            with self._lock:
                gone = self._phones.pop(name, None)
            if gone is not None:
                self._emit(PhoneEvent("disappeared", gone))
            return
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        if info is None:
            return
        phone = Phone(name, tuple(info.parsed_addresses()), info.port or 0, _decode_txt(info.properties))
        with self._lock:
            old = self._phones.get(name)
            self._phones[name] = phone
        if old is None:
            self._emit(PhoneEvent("appeared", phone))
        elif old != phone:
            self._emit(PhoneEvent("updated", phone))

    def _emit(self, event: PhoneEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    def close(self) -> None:
        for browser in self._browsers:
            browser.cancel()
        if self._zc is not None:
            self._zc.close()
        self._zc, self._browsers = None, []


def phone_service_info(name: str, port: int, addresses: Sequence[str],
                       properties: dict[str, Any], service_type: str = PHONE_TYPE) -> ServiceInfo:
    """A ``_sbphone._tcp`` record (or ``service_type``), for companion apps in Python and for tests."""
    return ServiceInfo(
        service_type, f"{name}.{service_type}", addresses=[socket.inet_aton(a) for a in addresses],
        port=port, properties=properties, server=f"{name.replace(' ', '-')}.local.",
    )


def register_phone(zc: Zeroconf, info: ServiceInfo) -> None:
    zc.register_service(info, strict=False)


@dataclass(frozen=True)
class ServerRecord:
    """A ScanBridge server found over mDNS."""

    name: str
    addresses: tuple[str, ...]
    port: int
    properties: dict[str, str]

    @property
    def url(self) -> str:
        scheme = self.properties.get("scheme", "https")
        return f"{scheme}://{self.addresses[0]}:{self.port}"


def find_servers(timeout_s: float = 5.0, interfaces: Sequence[str] | None = None,
                 first: bool = True) -> list[ServerRecord]:
    """Browse ``_scanbridge._tcp`` for up to ``timeout_s`` (returning at the first when ``first``)."""
    zc = _zeroconf(interfaces)
    found: dict[str, ServerRecord] = {}
    event = threading.Event()

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            return
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        if info is None or not info.parsed_addresses():
            return
        found[name] = ServerRecord(name, tuple(info.parsed_addresses()), info.port or 0,
                                   _decode_txt(info.properties))
        event.set()

    browser = ServiceBrowser(zc, SERVER_TYPE, handlers=[on_change])
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if event.wait(max(0.0, deadline - time.monotonic())) and first:
                break
            event.clear()
    finally:
        browser.cancel()
        zc.close()
    return sorted(found.values(), key=lambda r: r.name)
