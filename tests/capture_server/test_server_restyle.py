"""A phone can ask for a restyle of a capture: the server queues the restyle stages by name through
core.submit (it never imports generation), on the capture's newest textured mesh for an AR asset."""

from __future__ import annotations

import json

from server_test_kit import LiveServer, new_capture

from core.jobs import JobQueue


def _finished_mesh_run(capture_root, name: str) -> None:
    run = capture_root / "runs" / name
    run.mkdir(parents=True)
    (run / "textured.npz").write_bytes(b"npz")
    (run / "config.json").write_text(json.dumps({"stage": "mesh", "writes": ["textured_mesh"]}))
    (run / "status.json").write_text(json.dumps({"state": "done", "result": {}}))


def test_a_restyle_request_queues_the_restyle_stages_by_name(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c, "free")
        r = c.post(f"/v1/captures/{cid}/restyle", json={"output": "asset", "options": {"prompt": "gold"}})
        assert r.status_code == 400 and "no textured mesh" in r.text  # nothing processed yet
        _finished_mesh_run(live_server.workspace.capture(cid).root, "mesh-0123456789ab")
        r = c.post(f"/v1/captures/{cid}/restyle",
                   json={"output": "asset", "options": {"prompt": "gold", "name": "gold", "seed": 3}})
        assert r.status_code == 202, r.text
        asset_job = r.json()["job"]
        r = c.post(f"/v1/captures/{cid}/restyle", json={"output": "video", "options": {"prompt": "gold"}})
        assert r.status_code == 202, r.text
        video_job = r.json()["job"]
        for body, where in (({"output": "video", "options": {"mesh": "/etc/passwd"}}, "options"),
                            ({"output": "gif", "options": {"prompt": "x"}}, "output"),
                            ({"output": "video", "options": []}, "body")):
            r = c.post(f"/v1/captures/{cid}/restyle", json=body)
            assert r.status_code == 400 and where in r.text, r.text
    queue = JobQueue(live_server.workspace)
    steps = queue.get(asset_job["id"]).steps
    assert [s.stage for s in steps] == ["restyle-asset", "publish"]
    assert steps[0].config == {"prompt": "gold", "name": "gold", "seed": 3, "mesh_run": "mesh-0123456789ab"}
    video_steps = queue.get(video_job["id"]).steps
    assert [(s.stage, s.config) for s in video_steps] == [("restyle", {"prompt": "gold"})]
