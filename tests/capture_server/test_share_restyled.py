"""A restyled AR asset gets its own share link: the link serves exports/restyled-<name>.usdz and its
poster, while the capture's plain link keeps serving exports/model.usdz."""

from __future__ import annotations

from PIL import Image
from server_test_kit import LiveServer, new_capture

from capture_server.share import ShareStore


def test_a_restyled_asset_has_its_own_share_link(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
    exports = live_server.workspace.capture(cid).exports_dir
    exports.mkdir(exist_ok=True)
    (exports / "model.usdz").write_bytes(b"PK original")
    (exports / "restyled-bronze.usdz").write_bytes(b"PK bronze")
    Image.new("RGB", (8, 8), (10, 200, 10)).save(exports / "restyled-bronze-poster.png")
    with live_server.client(token) as c:
        plain = c.post(f"/v1/captures/{cid}/share", json={}).json()
        bronze = c.post(f"/v1/captures/{cid}/share", json={"asset": "restyled-bronze"})
        assert bronze.status_code == 201, bronze.text
        bronze = bronze.json()
        missing = c.post(f"/v1/captures/{cid}/share", json={"asset": "restyled-gold"})
        hostile = c.post(f"/v1/captures/{cid}/share", json={"asset": "../../server/shares"})
    assert bronze["asset"] == "restyled-bronze" and bronze["url"] != plain["url"]
    assert missing.status_code == 404 and "restyled-gold.usdz" in missing.text
    assert hostile.status_code == 400 and "asset" in hostile.text
    with live_server.client() as c:  # anyone with the link
        assert c.get(bronze["usdz"]).content == b"PK bronze"
        assert c.get(plain["usdz"]).content == b"PK original"
        poster = c.get(bronze["poster"])
        assert poster.status_code == 200
        assert poster.content == (exports / "restyled-bronze-poster.png").read_bytes()
    stored = {s.id: s.asset for s in ShareStore(live_server.workspace).shares(cid)}
    assert stored == {plain["id"]: "", bronze["id"]: "restyled-bronze"}



def test_scanbridge_share_asset_links_the_restyled_asset(live_server: LiveServer, capsys) -> None:
    import argparse
    import json

    from capture_server.cli_share import add_share_command

    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
    exports = live_server.workspace.capture(cid).exports_dir
    exports.mkdir(exist_ok=True)
    (exports / "restyled-gold.usdz").write_bytes(b"PK gold")
    parser = argparse.ArgumentParser(prog="scanbridge")
    add_share_command(parser.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["share", cid, "--asset", "restyled-gold", "--json",
                              "--workspace", str(live_server.workspace.root)])
    assert args.func(args) == 0
    link = json.loads(capsys.readouterr().out)
    assert link["asset"] == "restyled-gold"
    with live_server.client() as c:
        path = "/s/" + link["usdz"].split("/s/", 1)[1]  # the link names the server's LAN address
        assert c.get(live_server.url + path).content == b"PK gold"
