"""Finishing a capture queues its processing through core's job queue, and the phone can read
the job's state and events."""

from __future__ import annotations

import json

from server_test_kit import LiveServer, frame, new_capture, ws_connect

from capture_server import jobs_link
from capture_server.names import encode_tus_metadata
from core.jobs import JobQueue, Step
from core.settings import Settings

TUS = {"Tus-Resumable": "1.0.0"}


def upload_one(c, cid: str) -> None:
    meta = encode_tus_metadata({"capture_id": cid, "filename": "a.jpg"})
    created = c.post("/v1/uploads", headers={**TUS, "Upload-Length": "3", "Upload-Metadata": meta})
    url = created.headers["Location"]
    r = c.patch(url, content=b"abc", headers={**TUS, "Upload-Offset": "0",
                                              "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204


def test_uploaded_files_are_ingested_then_planned_by_the_settings_default_method(live_server: LiveServer
                                                                                ) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c, "free")
        upload_one(c, cid)
        r = c.post(f"/v1/captures/{cid}/finish")
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        assert job["state"] == "queued"
        # The server plans nothing itself: the plan step expands the method after ingest.
        assert [s["stage"] for s in job["steps"]] == ["ingest", "plan"]
        status = c.get(f"/v1/captures/{cid}").json()
        assert status["status"] == "processing" and status["job"]["id"] == job["id"]
        events = c.get(f"/v1/captures/{cid}/events", params={"after": 0}).json()
        assert events["job"]["id"] == job["id"]
        assert [e["message"] for e in events["events"] if e["kind"] == "state"] == ["queued"]
        assert c.get(f"/v1/captures/{cid}/events", params={"after": "x"}).status_code == 400
    queued = JobQueue(live_server.workspace).get(job["id"])
    assert queued.capture_id == cid and queued.state == "queued"
    assert queued.steps[1].config == {"method": "auto", "detail": "medium", "overrides": {}}


def test_the_settings_default_method_and_detail_are_what_the_server_queues(workspace) -> None:
    server = LiveServer(workspace, Settings(default_method="mvs", default_detail="preview"))
    try:
        with server.client(server.token()) as c:
            cid = new_capture(c, "free")
            upload_one(c, cid)
            r = c.post(f"/v1/captures/{cid}/finish")
        assert r.status_code == 202, r.text
        queued = JobQueue(workspace).get(r.json()["job"]["id"])
        assert queued.steps[-1].config == {"method": "mvs", "detail": "preview", "overrides": {}}
    finally:
        server.stop()
    capture = workspace.capture(cid)
    steps, reason = jobs_link.plan_for(capture, capture.load(), Settings(default_method="no-such-method"))
    assert steps == [] and "unknown method 'no-such-method'" in reason


def test_live_depth_frames_need_no_ingest(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c, "rgbd")
    with ws_connect(live_server, cid, token) as ws:
        for i in range(3):
            ws.send(frame(index=i))
        assert sorted(json.loads(ws.recv())["ack"] for _ in range(3)) == [0, 1, 2]
    with live_server.client(token) as c:
        r = c.post(f"/v1/captures/{cid}/finish")
    assert r.status_code == 202, r.text
    assert [s["stage"] for s in r.json()["job"]["steps"]] == ["plan"]


def test_nothing_is_queued_without_the_stages_or_when_turned_off(live_server: LiveServer,
                                                                 monkeypatch) -> None:
    monkeypatch.setattr(jobs_link, "registered_stages", lambda: {"poses", "mvs", "mesh", "export"})
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        upload_one(c, cid)
        r = c.post(f"/v1/captures/{cid}/finish")
        assert r.status_code == 200
        assert r.json()["job"] is None and "'ingest', 'plan'" in r.json()["not_queued_because"]
        assert r.json()["status"] == "new"
    capture = live_server.workspace.capture(cid)
    steps, reason = jobs_link.plan_for(capture, capture.load(), Settings(process_on_finish=False))
    assert steps == [] and "turned off" in reason


def test_results_come_from_the_finished_jobs_export_run(live_server: LiveServer) -> None:
    from core.stages import StageOutcome

    with live_server.client(live_server.token()) as c:
        cid = new_capture(c, "free")
        assert c.get(f"/v1/captures/{cid}/results").json()["results"] == []
        run_dir = live_server.workspace.capture(cid).runs_dir / "export-abc123"
        run_dir.mkdir(parents=True)
        (run_dir / "model.usdz").write_bytes(b"PK usdz")
        (run_dir / "config.json").write_text("{}")
        queue = JobQueue(live_server.workspace)
        job = queue.submit(cid, [Step("export")], validate=False)
        lease = queue.claim(job_id=job.id)
        queue.start_step(lease, 0)
        queue.finish_step(lease, 0, StageOutcome("export", run_dir, {}))
        queue.finish_job(lease, "done")
        listed = c.get(f"/v1/captures/{cid}/results").json()["results"]
        assert [r["name"] for r in listed] == ["model.usdz"]  # not the run's bookkeeping
        r = c.get(f"/v1/captures/{cid}/results/model.usdz")
        assert r.content == b"PK usdz" and r.headers["content-type"] == "model/vnd.usdz+zip"
        assert c.get(f"/v1/captures/{cid}/results/config.json").status_code == 404
        exports = live_server.workspace.capture(cid).exports_dir
        exports.mkdir()
        (exports / "model.glb").write_bytes(b"glTF")  # once published, exports/ is what counts
        assert [r["name"] for r in c.get(f"/v1/captures/{cid}/results").json()["results"]] == ["model.glb"]
