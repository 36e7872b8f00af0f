"""A phone asks for the mcc method (and the frame to complete) when it finishes a capture; the
server queues that method by name, and refuses what it cannot mean before closing the capture."""

from __future__ import annotations

import json

import pytest
from server_test_kit import LiveServer, frame, new_capture, ws_connect

from core.jobs import JobQueue


def _streamed(live_server: LiveServer, frames: int = 3) -> tuple[str, str]:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c, "rgbd")
    with ws_connect(live_server, cid, token) as ws:
        for i in range(frames):
            ws.send(frame(index=i))
        assert sorted(json.loads(ws.recv())["ack"] for _ in range(frames)) == list(range(frames))
    return cid, token


def test_finish_with_method_mcc_queues_it_on_the_chosen_frame(live_server: LiveServer) -> None:
    cid, token = _streamed(live_server)
    with live_server.client(token) as c:
        r = c.post(f"/v1/captures/{cid}/finish", json={"method": "mcc", "frame": 1})
    assert r.status_code == 202, r.text
    job = JobQueue(live_server.workspace).get(r.json()["job"]["id"])
    assert [s.stage for s in job.steps] == ["plan"]
    assert job.steps[0].config == {"method": "mcc", "detail": "medium", "overrides": {"mcc": {"frame": 1}}}


@pytest.mark.parametrize(("body", "field"), [
    ({"method": "no-such-method"}, "method"),
    ({"method": 7}, "method"),
    ({"frame": 1}, "frame"),  # a frame only means something to mcc
    ({"method": "mcc", "frame": -1}, "frame"),
    ({"method": "mcc", "frame": True}, "frame"),
    ({"method": "mcc", "frame": 10**400}, "body"),  # the JSON reader refuses it first
    ({"method": "mcc", "path": "../x"}, "body"),
])
def test_what_the_server_cannot_mean_is_refused_and_the_capture_stays_open(live_server: LiveServer, body,
                                                                           field) -> None:
    cid, token = _streamed(live_server, frames=1)
    with live_server.client(token) as c:
        r = c.post(f"/v1/captures/{cid}/finish", content=json.dumps(body),
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert field in r.text
        assert c.get(f"/v1/captures/{cid}").json()["status"] == "receiving"
        ok = c.post(f"/v1/captures/{cid}/finish", json={"method": "mcc", "frame": 0})
        assert ok.status_code == 202, ok.text
