"""AR Quick Look share links through the real server on loopback: the page, the USDZ, expiry,
read-only, who may make one; and ``scanbridge share``."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from qr_reader import decode_png, decode_terminal
from server_test_kit import LiveServer, new_capture

from capture_server.cli_share import add_share_command
from capture_server.share import ShareStore
from core.errors import NotFoundError
from core.workspace import Workspace

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ELEPHANT = SHARED_DATA / "usdwg-elephant-usdz" / "SoC-ElephantWithMonochord.usdz"
if not ELEPHANT.is_file():
    ELEPHANT = Path("/work/shared/data/usdwg-elephant-usdz/SoC-ElephantWithMonochord.usdz")
needs_usdz = pytest.mark.skipif(not ELEPHANT.is_file(), reason="shared data usdwg-elephant-usdz is missing")


def with_export(workspace: Workspace, capture_id: str, poster: bool = True) -> Path:
    """A real AR Quick Look USDZ (and a poster) in the capture's exports/, as recon's export writes."""
    exports = workspace.capture(capture_id).exports_dir
    exports.mkdir(exist_ok=True)
    shutil.copyfile(ELEPHANT, exports / "model.usdz")
    if poster:
        Image.new("RGB", (64, 48), (200, 30, 30)).save(exports / "poster.png")
    return exports


class Anchors(HTMLParser):
    """Each <a> with its attributes and the start tags of its children."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], list[tuple[str, dict[str, str | None]]], str]] = []
        self._open: list | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a":
            self._open = [dict(attrs), [], ""]
        elif self._open is not None:
            self._open[1].append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append(tuple(self._open))
            self._open = None


def make_link(server: LiveServer, token: str, capture_id: str, hours: float | None = None) -> dict:
    with server.client(token) as c:
        r = c.post(f"/v1/captures/{capture_id}/share", json={} if hours is None else {"hours": hours})
    assert r.status_code == 201, r.text
    return r.json()


@needs_usdz
def test_share_link_serves_the_ar_quick_look_page_and_the_usdz(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
    exports = with_export(live_server.workspace, cid)
    link = make_link(live_server, token, cid)
    assert link["url"].startswith(live_server.url + "/s/") and link["usdz"] == link["url"] + "/model.usdz"
    assert 6.9 * 86400 < link["expires"] - link["created"] <= 7 * 86400  # the default: 7 days
    with live_server.client() as c:  # no token: anyone with the link may look
        page = c.get(link["url"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        parser = Anchors()
        parser.feed(page.text)
        ar = [a for a in parser.anchors if a[0].get("rel") == "ar"]
        assert len(ar) == 1
        attrs, children, text = ar[0]
        assert attrs["href"] == "/s/" + link["url"].rsplit("/", 1)[1] + "/model.usdz"
        assert [tag for tag, _ in children] == ["img"] and text.strip() == ""  # the img is the only child
        assert c.get(children[0][1]["src"]).content == (exports / "poster.png").read_bytes()

        usdz = c.get(attrs["href"])
        assert usdz.status_code == 200 and usdz.headers["content-type"] == "model/vnd.usdz+zip"
        assert hashlib.sha256(usdz.content).hexdigest() == hashlib.sha256(ELEPHANT.read_bytes()).hexdigest()
        head = c.head(link["usdz"])
        assert head.status_code == 200 and int(head.headers["content-length"]) == ELEPHANT.stat().st_size
        assert head.content == b""
        part = c.get(link["usdz"], headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == ELEPHANT.read_bytes()[100:200]

        poster = c.get(link["poster"])
        assert poster.headers["content-type"] == "image/png"
        qr = c.get(link["qr_png"])
        assert qr.headers["content-type"] == "image/png" and Image.open(io.BytesIO(qr.content)).size[0] > 50
        assert decode_png(qr.content) == link["url"]  # what a phone's camera reads: the page


@needs_usdz
def test_share_links_are_read_only(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
    exports = with_export(live_server.workspace, cid)
    before = (exports / "model.usdz").read_bytes()
    link = make_link(live_server, token, cid)
    for auth in (None, token):  # refused without a token (401) and with one (405)
        with live_server.client(auth) as c:
            for method in ("PUT", "POST", "DELETE", "PATCH"):
                for url in (link["url"], link["usdz"], link["poster"]):
                    r = c.request(method, url, content=b"overwrite")
                    assert r.status_code in (401, 405), (method, url, r.status_code)
    assert (exports / "model.usdz").read_bytes() == before


@needs_usdz
def test_unknown_and_expired_links_are_the_same_404(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
    with_export(live_server.workspace, cid)
    link = make_link(live_server, token, cid, hours=1)
    now = [0.0]
    store = ShareStore(live_server.workspace, clock=lambda: now[0])
    expired = store.create(cid, hours=1.0)  # made at t=0, so long expired in real time
    base = live_server.url + "/s/"
    with live_server.client() as c:
        assert c.get(link["url"]).status_code == 200
        answers = set()
        for bad in (expired.token, "A" * 32, "x", "..%2F..%2Fserver%2Fdevices.json"):
            for suffix in ("", "/model.usdz", "/poster.png", "/qr.png"):
                r = c.get(base + bad + suffix)
                assert r.status_code == 404, (bad, suffix)
                answers.add(r.text)
        assert answers == {r.text} and "no such share link" in r.text  # no hint which
    now[0] = link["expires"] + 1  # the first link expires too
    with pytest.raises(NotFoundError):
        store.resolve(link["url"].rsplit("/", 1)[1])


def test_making_a_link_needs_a_token_and_an_export(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
        r = c.post(f"/v1/captures/{cid}/share", json={})
        assert r.status_code == 404 and "exports/model.usdz" in r.json()["error"]
        assert c.post("/v1/captures/no-such-capture/share", json={}).status_code == 404
        for hours in (0, -1, "7", 10**6, True):
            r = c.post(f"/v1/captures/{cid}/share", json={"hours": hours})
            assert r.status_code == 400 and r.json()["where"] == "hours", hours
    with live_server.client() as c:
        r = c.post(f"/v1/captures/{cid}/share", json={})
        assert r.status_code == 401
    with live_server.client("not-a-token") as c:
        assert c.post(f"/v1/captures/{cid}/share", json={}).status_code == 401
    assert not (live_server.workspace.root / "server" / "shares.json").exists()  # nothing was stored


@needs_usdz
def test_links_survive_a_restart_and_keep_only_hashes(workspace: Workspace, tmp_path: Path) -> None:
    from core.settings import Settings

    server = LiveServer(workspace, Settings())
    try:
        token = server.token()
        with server.client(token) as c:
            cid = new_capture(c)
        with_export(workspace, cid, poster=False)
        link = make_link(server, token, cid)
    finally:
        server.stop()
    stored = (workspace.root / "server" / "shares.json").read_text()
    secret = link["url"].rsplit("/", 1)[1]
    assert secret not in stored and hashlib.sha256(secret.encode()).hexdigest() in stored
    server = LiveServer(workspace, Settings())
    try:
        with server.client() as c:
            url = server.url + "/s/" + secret
            assert c.get(url).status_code == 200
            poster = c.get(url + "/poster.png")  # no poster exported: a placeholder, still an image
            assert poster.status_code == 200 and Image.open(io.BytesIO(poster.content)).format == "PNG"
    finally:
        server.stop()


def run_share_cli(workspace: Workspace, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_share_command(parser.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["share", *argv, "--workspace", str(workspace.root)])
    return args.func(args)


@needs_usdz
def test_share_command_prints_a_link_and_a_terminal_qr(live_server: LiveServer, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
    with_export(live_server.workspace, cid)
    assert run_share_cli(live_server.workspace, cid, "--hours", "2", "--json",
                         "--qr-png", str(tmp_path / "qr.png")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["url"].startswith(live_server.url + "/s/")  # the running server's address
    assert 2 * 3600 - 5 < out["expires"] - out["created"] <= 2 * 3600
    assert Image.open(tmp_path / "qr.png").format == "PNG"
    assert decode_png((tmp_path / "qr.png").read_bytes()) == out["url"]
    with live_server.client() as c:  # made by a local call, served by the running server
        r = c.get(out["usdz"])
        assert r.status_code == 200 and r.headers["content-type"] == "model/vnd.usdz+zip"

    assert run_share_cli(live_server.workspace, cid) == 0
    text = capsys.readouterr().out
    url = next(line.split()[-1] for line in text.splitlines() if line.startswith("share link"))
    assert decode_terminal(text) == url  # the terminal QR code, read back, is the link

    assert run_share_cli(live_server.workspace, "--list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    second_id = hashlib.sha256(url.rsplit("/", 1)[1].encode()).hexdigest()[:12]
    assert [s["id"] for s in listed] == [out["id"], second_id] and {s["capture_id"] for s in listed} == {cid}
    assert run_share_cli(live_server.workspace, "--revoke", out["id"]) == 0
    capsys.readouterr()
    with live_server.client() as c:
        assert c.get(out["url"]).status_code == 404  # revoked at once in the running server


def test_share_command_errors_name_the_capture(workspace: Workspace) -> None:
    from core.errors import InputError

    with pytest.raises(NotFoundError, match="no-such-capture"):
        run_share_cli(workspace, "no-such-capture")
    with pytest.raises(InputError, match="CAPTURE_ID"):
        run_share_cli(workspace)
    with pytest.raises(NotFoundError, match="abc"):
        run_share_cli(workspace, "--revoke", "abc")
