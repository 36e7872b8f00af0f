"""mDNS with real python-zeroconf on the loopback interface (multicast works there in CI too)."""

from __future__ import annotations

import queue
import secrets
import time

from server_test_kit import LiveServer
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

from capture_server.discovery import (
    SERVER_TYPE,
    PhoneDirectory,
    PhoneEvent,
    phone_service_info,
    register_phone,
)
from core.settings import Settings

LOOPBACK = ["127.0.0.1"]


def wait_for(events: queue.Queue, kind: str, name: str, timeout: float = 15.0) -> PhoneEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if event.kind == kind and event.phone.name.startswith(name):
            return event
    raise AssertionError(f"no {kind} event for {name}")


def test_phone_list_follows_phones_appearing_changing_and_leaving() -> None:
    directory = PhoneDirectory(LOOPBACK)
    events: queue.Queue[PhoneEvent] = queue.Queue()
    directory.add_listener(events.put)
    directory.start()
    phone_zc = Zeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    name = f"pytest-phone-{secrets.token_hex(3)}"
    try:
        info = phone_service_info(name, 4242, ["127.0.0.1"], {"model": "iPhone 15 Pro", "app": "1.0"})
        register_phone(phone_zc, info)
        appeared = wait_for(events, "appeared", name)
        assert appeared.phone.port == 4242 and appeared.phone.properties["model"] == "iPhone 15 Pro"
        assert any(p.name.startswith(name) for p in directory.phones())

        info = phone_service_info(name, 4242, ["127.0.0.1"], {"model": "iPhone 15 Pro", "app": "1.1"})
        phone_zc.update_service(info)
        assert wait_for(events, "updated", name).phone.properties["app"] == "1.1"

        phone_zc.unregister_service(info)
        wait_for(events, "disappeared", name)
        assert not any(p.name.startswith(name) for p in directory.phones())
    finally:
        phone_zc.close()
        directory.close()


def test_server_advertises_itself_from_start_to_shutdown(workspace) -> None:
    found: queue.Queue[tuple[str, ServiceStateChange]] = queue.Queue()
    browser_zc = Zeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    name = f"pytest-server-{secrets.token_hex(3)}"

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        found.put((name, state_change))

    browser = ServiceBrowser(browser_zc, SERVER_TYPE, handlers=[on_change])
    server = LiveServer(workspace, Settings(), name=name, mdns=True, mdns_interfaces=LOOPBACK)
    try:
        service = _wait_change(found, name, ServiceStateChange.Added)
        info = browser_zc.get_service_info(SERVER_TYPE, service, timeout=5000)
        assert info is not None
        txt = {k.decode(): v.decode() for k, v in info.properties.items() if v is not None}
        identity = server.server.identity
        assert txt["fingerprint"] == identity.fingerprint
        assert txt["server_id"] == identity.server_id
        assert txt["protocol_version"] == "1" and txt["name"] == name
        assert info.port == int(server.url.rsplit(":", 1)[1])
        server.stop()
        _wait_change(found, name, ServiceStateChange.Removed)
    finally:
        server.stop()
        browser.cancel()
        browser_zc.close()


def _wait_change(found: queue.Queue, name: str, change: ServiceStateChange, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            service, state = found.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if service.startswith(name) and state is change:
            return service
    raise AssertionError(f"no {change} for {name}")


def test_phone_service_type_fits_rfc6763_and_the_old_type_is_still_found() -> None:
    from capture_server.discovery import LEGACY_PHONE_TYPE, PHONE_TYPE

    # RFC 6763 section 7.2: the service name (without "_" and the protocol) is at most 15 bytes.
    label = PHONE_TYPE.split(".")[0].lstrip("_")
    assert len(label.encode()) <= 15, label
    directory = PhoneDirectory(LOOPBACK)
    events: queue.Queue[PhoneEvent] = queue.Queue()
    directory.add_listener(events.put)
    directory.start()
    phone_zc = Zeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    old_name, new_name = f"pytest-old-{secrets.token_hex(3)}", f"pytest-new-{secrets.token_hex(3)}"
    try:
        register_phone(phone_zc, phone_service_info(old_name, 4243, LOOPBACK, {"app": "0.9"},
                                                    service_type=LEGACY_PHONE_TYPE))
        register_phone(phone_zc, phone_service_info(new_name, 4244, LOOPBACK, {"app": "1.0"}))
        assert wait_for(events, "appeared", old_name).phone.port == 4243
        assert wait_for(events, "appeared", new_name).phone.port == 4244
    finally:
        phone_zc.close()
        directory.close()
