"""Devices with the real capture server on loopback: pairing shows a QR code and the code, a
phone that pairs over HTTP appears in the list, rename and revoke work, mDNS phones show up."""

from __future__ import annotations

import httpx
from zeroconf import IPVersion, Zeroconf

from capture_server.discovery import phone_service_info, register_phone

LOOPBACK = ["127.0.0.1"]


def test_pairing_dialog_shows_a_qr_code_and_a_paired_phone_appears(
        sample_workspace, make_app, qtbot, read_qr):
    app = make_app(sample_workspace, start_server=True)
    panel = app.window.devices
    qtbot.waitUntil(lambda: app.services.server_url is not None, timeout=30000)
    url = app.services.server_url
    assert url.startswith("https://127.0.0.1:")
    qtbot.waitUntil(lambda: url in panel.server_label.text(), timeout=10000)

    dialog = panel.open_pairing()
    assert dialog is not None and dialog.isVisible()
    code = dialog.pairing.code
    assert dialog.code_label.text().replace(" ", "") == code
    scanned = read_qr(dialog.qr_label.pixmap())
    assert scanned == dialog.pairing.url
    assert scanned.startswith(f"{url}/pair?code={code}&fp=")

    reply = httpx.post(f"{url}/v1/pair", json={"code": code, "name": "Ana's iPhone"},
                       verify=False, timeout=30)
    assert reply.status_code == 200, reply.text
    device_id = reply.json()["device_id"]
    qtbot.waitUntil(lambda: dialog.paired is not None, timeout=10000)
    assert not dialog.isVisible()
    assert "Paired with Ana's iPhone" in app.ctx.notifier.texts("success")
    qtbot.waitUntil(lambda: panel.device_names() == ["Ana's iPhone"], timeout=10000)

    panel.rename(device_id, "Studio phone")
    assert panel.device_names() == ["Studio phone"]
    panel.revoke(device_id)
    assert panel.table.item(0, 3).text() == "revoked"
    token = reply.json()["token"]
    refused = httpx.get(f"{url}/v1/captures", headers={"Authorization": f"Bearer {token}"}, verify=False)
    assert refused.status_code == 401

    panel.rename(device_id, "   ")
    assert "name" in app.ctx.notifier.texts("error")[-1]


def test_phones_on_the_lan_appear_live(sample_workspace, make_app, qtbot):
    app = make_app(sample_workspace, start_server=True, mdns=True, mdns_interfaces=LOOPBACK)
    panel = app.window.devices
    qtbot.waitUntil(lambda: app.services.server_url is not None, timeout=30000)
    phone_zc = Zeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    try:
        info = phone_service_info("Bo's Pixel", 4242, LOOPBACK, {"model": "Pixel 9", "app": "1.0"})
        register_phone(phone_zc, info)
        qtbot.waitUntil(lambda: any("Bo's Pixel" in panel.phone_list.item(i).text()
                                    for i in range(panel.phone_list.count())), timeout=20000)
        assert "Pixel 9" in panel.phone_list.item(0).text()
        phone_zc.unregister_service(info)
        qtbot.waitUntil(lambda: all("Bo's Pixel" not in panel.phone_list.item(i).text()
                                    for i in range(panel.phone_list.count())), timeout=20000)
    finally:
        phone_zc.close()
