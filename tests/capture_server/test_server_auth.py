"""Pairing, device tokens, revocation, and the walk over every route of the app."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from qr_reader import decode_terminal
from server_test_kit import REPO, LiveServer, new_capture
from starlette.routing import Route, WebSocketRoute

from capture_server.app import PUBLIC, build_app
from capture_server.auth import DeviceStore, FailureLimiter
from capture_server.errors import RateLimited, Unauthorized
from capture_server.openapi import openapi_schema


def run_cli(workspace_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "capture_server", *args, "--workspace", str(workspace_root)],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )


def concrete(template: str) -> str:
    """A route path with plausible values for its parameters."""
    return (template.replace("{capture_id}", "some-capture").replace("{upload_id}", "x" * 32)
            .replace("{name}", "some-capture"))


def route_table(live_server: LiveServer) -> list[tuple[str, str]]:
    """(method, concrete path) for every route, path parameters filled with plausible values."""
    out = []
    for route in build_app(live_server.server.state).routes:
        if isinstance(route, WebSocketRoute):
            continue  # the live stream's handshake is walked in test_server_live
        assert isinstance(route, Route)
        path = concrete(route.path)
        assert "{" not in path, path
        for method in sorted(route.methods or ()):
            out.append((method, path))
    return out


def test_pairing_trades_a_one_time_code_for_a_token(live_server: LiveServer) -> None:
    result = run_cli(live_server.workspace.root, "pair", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert set(printed) == {"code", "url", "fingerprint"}
    with live_server.client() as c:
        info = c.get("/v1/info").json()
    assert printed["fingerprint"] == info["fingerprint"]
    assert printed["url"].startswith(live_server.url) and printed["code"] in printed["url"]
    with live_server.client() as c:
        r = c.post("/v1/pair", json={"code": printed["code"], "name": "Ana's iPhone"})
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        assert r.json()["server_id"] == info["server_id"]
        assert len(token) >= 43  # 256 bits, base64url
        again = c.post("/v1/pair", json={"code": printed["code"], "name": "thief"})
        assert again.status_code == 401  # one-time
    stored = (live_server.workspace.root / "server" / "devices.json").read_text()
    assert token not in stored and hashlib.sha256(token.encode()).hexdigest() in stored
    with live_server.client(token) as c:
        assert c.get("/v1/captures").status_code == 200


def test_pair_prints_a_qr_code_in_the_terminal(workspace) -> None:
    result = run_cli(workspace.root, "pair")
    assert result.returncode == 0, result.stderr
    assert "pairing code" in result.stdout and "fingerprint" in result.stdout
    url = next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("url "))
    code = next(line.split()[2] for line in result.stdout.splitlines() if line.startswith("pairing code"))
    assert decode_terminal(result.stdout) == url and code in url  # a phone scanning it gets the code


def test_wrong_codes_are_rate_limited(live_server: LiveServer) -> None:
    code, _ = live_server.devices.new_code()
    with live_server.client() as c:
        for i in range(5):
            r = c.post("/v1/pair", json={"code": f"{i:08d}", "name": "guesser"})
            assert r.status_code == 401 and r.json()["where"] == "code"
        r = c.post("/v1/pair", json={"code": code, "name": "guesser"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert c.post("/v1/pair", json={"name": "no code"}).status_code == 429


def test_pair_request_fields_are_checked(live_server: LiveServer) -> None:
    code, _ = live_server.devices.new_code()
    with live_server.client() as c:
        assert c.post("/v1/pair", json={"code": code}).json()["where"] == "name"
        assert c.post("/v1/pair", json={"code": 5, "name": "x"}).json()["where"] == "code"
        assert c.post("/v1/pair", content=b"[]").status_code == 400
        assert c.post("/v1/pair", json={"code": code, "name": "ok"}).status_code == 200


def test_codes_expire_after_five_minutes(tmp_path: Path) -> None:
    five_minutes = 5 * 60.0
    now = [1000.0]
    store = DeviceStore(tmp_path, clock=lambda: now[0])
    code, expires = store.new_code()
    in_time, _ = store.new_code()
    assert expires == 1000.0 + five_minutes
    now[0] += five_minutes - 1
    assert store.redeem(in_time, "just in time").device.name == "just in time"
    now[0] += 2  # five minutes and one second after the codes were made
    with pytest.raises(Unauthorized):
        store.redeem(code, "late phone")
    fresh, _ = store.new_code()
    assert store.redeem(fresh, "on time").device.name == "on time"


def test_limiter_counts_per_client_and_overall() -> None:
    now = [0.0]
    limiter = FailureLimiter(per_client=2, overall=3, window_s=60, clock=lambda: now[0])
    for _ in range(2):
        limiter.check("a")
        limiter.record_failure("a")
    with pytest.raises(RateLimited):
        limiter.check("a")
    limiter.check("b")
    limiter.record_failure("b")
    with pytest.raises(RateLimited):
        limiter.check("c")  # three failures in the window from anyone
    now[0] = 61.0
    limiter.check("a")


def test_every_protected_route_answers_401_without_a_valid_token(live_server: LiveServer) -> None:
    table = route_table(live_server)
    public = {(m, p) for m, p in table if (m, p) in PUBLIC}
    assert public == {("GET", "/v1/info"), ("HEAD", "/v1/info"), ("POST", "/v1/pair"),
                      ("GET", "/v1/openapi.json"), ("OPTIONS", "/v1/uploads")}
    protected = [mp for mp in table if mp not in PUBLIC]
    assert len(protected) >= 12
    good = live_server.token("good")
    revoked = live_server.token("revoked")
    victim = next(d for d in live_server.devices.devices() if d.name == "revoked")
    with live_server.client(revoked) as c:
        cid = new_capture(c)  # works before revocation
    live_server.devices.revoke(victim.id)
    headers_by_case = {
        "none": {}, "garbage": {"Authorization": "Bearer not-a-token"},
        "wrong scheme": {"Authorization": f"Basic {good}"}, "revoked": {"Authorization": f"Bearer {revoked}"},
    }
    with live_server.client() as c:
        for method, path in protected:
            path = path.replace("some-capture", cid)
            for case, headers in headers_by_case.items():
                r = c.request(method, path, headers={"Tus-Resumable": "1.0.0", **headers})
                assert r.status_code == 401, (method, path, case, r.status_code)
                assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
            r = c.request(method, path, headers={"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {good}"})
            assert r.status_code != 401, (method, path)
        unknown = [("GET", "/v1/nothing"), ("POST", "/v1/devices"), ("GET", "/v2/info"), ("GET", "/admin")]
        for method, path in unknown:
            assert c.request(method, path).status_code == 401, path
        for method, path in public:
            assert c.request(method, path, json={}).status_code != 401, path


def test_devices_cli_lists_and_revokes(live_server: LiveServer) -> None:
    token = live_server.token("Kitchen iPad")
    listed = json.loads(run_cli(live_server.workspace.root, "devices", "--json").stdout)
    assert [d["name"] for d in listed] == ["Kitchen iPad"] and listed[0]["revoked"] is None
    with live_server.client(token) as c:
        assert c.get("/v1/captures").status_code == 200
        result = run_cli(live_server.workspace.root, "devices", "--revoke", listed[0]["id"])
        assert result.returncode == 0 and "revoked" in result.stdout
        assert c.get("/v1/captures").status_code == 401  # the running server sees it at once
    assert "REVOKED" in run_cli(live_server.workspace.root, "devices").stdout
    bad = run_cli(live_server.workspace.root, "devices", "--revoke", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_openapi_describes_every_route(live_server: LiveServer) -> None:
    with live_server.client() as c:
        served = c.get("/v1/openapi.json").json()
    assert served == json.loads(json.dumps(openapi_schema(live_server.server.settings.max_upload_bytes)))
    table = route_table(live_server)
    for method, path in table:
        if method == "HEAD" and ("GET", path) in table:
            continue  # Starlette answers HEAD for every GET route
        routes = [r for r in build_app(live_server.server.state).routes if isinstance(r, Route)]
        template = next(r.path for r in routes if concrete(r.path) == path)
        assert method.lower() in served["paths"][template], (method, template)
