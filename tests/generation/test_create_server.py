"""A phone asks the real server (loopback, TLS, token) for a model from a prompt and for a video of
it; the server queues the same jobs as the CLI (it imports no generation code), a real worker runs
them with tiny random Shap-E weights, and the phone downloads model.usdz and clip.mp4. Bad fields
are one 400 naming the field, and nothing is queued for them."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "capture_server"))

from server_test_kit import LiveServer  # noqa: E402

from core.jobs import JobQueue  # noqa: E402
from core.settings import Settings, save_settings  # noqa: E402
from core.worker import Worker  # noqa: E402
from core.workspace import Workspace  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tiny_models import save_tiny_shap_e

    ws = Workspace(tmp_path_factory.mktemp("create-server-ws"))
    settings = Settings(model_paths={"shap-e": str(save_tiny_shap_e(tmp_path_factory.mktemp("shap-e")))})
    save_settings(ws.settings_path, settings)
    live = LiveServer(ws, settings)
    yield live
    live.stop()


def _run(workspace: Workspace, job_id: int) -> None:
    run = Worker(JobQueue(workspace)).run_job(job_id)
    job = JobQueue(workspace).get(job_id)
    assert job.state == "done", (run, job.error)


def test_a_phone_gets_a_model_from_a_prompt_and_a_video_of_it(server: LiveServer, tmp_path) -> None:
    with server.client(server.token()) as c:
        r = c.post("/v1/create", json={"prompt": "a red stool", "size": 0.2, "steps": 2, "grid": 24,
                                        "detail": "preview"})
        assert r.status_code == 202, r.text
        cid, job = r.json()["capture_id"], r.json()["job"]
        assert [s["stage"] for s in job["steps"]] == ["plan"]
        plan = JobQueue(server.workspace).get(job["id"]).steps[0].config
        assert plan["method"] == "create"
        assert plan["overrides"]["create"] == {"prompt": "a red stool", "height_m": 0.2, "steps": 2,
                                               "grid_size": 24}
        _run(server.workspace, job["id"])
        results = {x["name"]: x for x in c.get(f"/v1/captures/{cid}/results").json()["results"]}
        assert results["model.usdz"]["content_type"] == "model/vnd.usdz+zip"
        usdz = c.get(f"/v1/captures/{cid}/results/model.usdz")
        assert usdz.status_code == 200 and usdz.content[:2] == b"PK"

        r = c.post(f"/v1/captures/{cid}/video", json={"seconds": 1, "fps": 4, "width": 64, "height": 48})
        assert r.status_code == 202, r.text
        video_job = r.json()["job"]
        assert [s["stage"] for s in video_job["steps"]] == ["video", "video-publish"]
        _run(server.workspace, video_job["id"])
        results = {x["name"]: x for x in c.get(f"/v1/captures/{cid}/results").json()["results"]}
        assert results["clip.mp4"]["content_type"] == "video/mp4"
        clip = tmp_path / "clip.mp4"
        clip.write_bytes(c.get(f"/v1/captures/{cid}/results/clip.mp4").content)
    cap = cv2.VideoCapture(str(clip))
    frames = 0
    while cap.read()[0]:
        frames += 1
    size = (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    assert frames == 4 and size == (64, 48)


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/create", {"prompt": 5}, "prompt"),
    ("/v1/create", {"prompt": ""}, "prompt"),
    ("/v1/create", {"prompt": "x" * 1001}, "prompt"),
    ("/v1/create", b'{"prompt": "a cup", "size": 1e400}', "1e400"),  # refused by the JSON reader
    ("/v1/create", {"prompt": "a cup", "size": True}, "size"),
    ("/v1/create", {"prompt": "a cup", "steps": 10**6}, "steps"),
    ("/v1/create", {"prompt": "a cup", "steps": 2.5}, "steps"),
    ("/v1/create", {"prompt": "a cup", "model": "/etc"}, "model"),
    ("/v1/create", {"prompt": "a cup", "detail": "huge"}, "detail"),
    ("/v1/create", ["a cup"], "body"),
])
def test_bad_create_fields_are_one_400_naming_the_field_and_queue_nothing(server: LiveServer, path, body,
                                                                         field) -> None:
    before = len(JobQueue(server.workspace).list())
    captures = len(server.workspace.captures())
    with server.client(server.token()) as c:
        r = c.post(path, content=body) if isinstance(body, bytes) else c.post(path, json=body)
    assert r.status_code == 400, r.text
    assert field in r.text
    assert len(JobQueue(server.workspace).list()) == before
    assert len(server.workspace.captures()) == captures


def test_bad_video_fields_are_refused(server: LiveServer) -> None:
    with server.client(server.token()) as c:
        cid = c.post("/v1/captures", json={"mode": "free"}).json()["id"]
        for body, field in [({"width": 63}, "width"), ({"path": "../x"}, "path"), ({"fps": 0}, "fps"),
                            ({"seconds": "1"}, "seconds"), ({"mesh_run": "x"}, "mesh_run")]:
            r = c.post(f"/v1/captures/{cid}/video", json=body)
            assert r.status_code == 400 and field in r.text, (body, r.text)
        assert c.post("/v1/captures/nope-1/video", json={}).status_code == 404
