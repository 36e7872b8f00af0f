"""The phone's finish request may carry the export options `scanbridge process` takes (formats,
texture format and quality, PLY/OBJ up axis): the real server on loopback checks them (an unknown
value is one 400 naming its field, and the capture stays open) and queues them with the job; the
plan step gives them to the export stage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from server_test_kit import LiveServer, new_capture
from tusclient import client as tus_client

from core.jobs import JobQueue
from core.settings import Settings
from core.workspace import Workspace

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def server(workspace: Workspace) -> Iterator[LiveServer]:
    server = LiveServer(workspace, Settings(max_upload_bytes=8 * 1024 * 1024))
    yield server
    server.stop()


def _capture_with_a_photo(server: LiveServer, c, tmp_path: Path) -> str:
    cid = new_capture(c, "free")
    photo = tmp_path / "IMG_0001.jpg"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8))
    tus = tus_client.TusClient(f"{server.url}/v1/uploads",
                               headers={"Authorization": f"Bearer {server.token()}"})
    tus.uploader(str(photo), metadata={"capture_id": cid, "filename": photo.name}, chunk_size=1 << 20,
                 verify_tls_cert=False).upload()
    return cid


@pytest.mark.parametrize(("body", "field"), [
    ({"export": {"formats": ["obj", "fbx"]}}, "export.formats[1]"),
    ({"export": {"up": "x"}}, "export.up"),
    ({"export": {"texture_format": "webp"}}, "export.texture_format"),
    ({"export": {"texture_quality": 101}}, "export.texture_quality"),
    ({"export": {"texture_quality": 7.5}}, "export.texture_quality"),
    ({"export": {"formats": "obj"}}, "export.formats"),
    ({"export": {"formats": []}}, "export.formats"),
    ({"export": {"colour": "red"}}, "export"),
    ({"exports": {}}, "body"),
])
def test_bad_export_options_are_refused_naming_the_field(server, tmp_path, body, field):
    with server.client(server.token()) as c:
        cid = _capture_with_a_photo(server, c, tmp_path)
        r = c.post(f"/v1/captures/{cid}/finish", json=body)
        assert r.status_code == 400, r.text
        assert field in r.text
        assert c.get(f"/v1/captures/{cid}").json()["status"] == "receiving"  # nothing queued or closed
        assert server.workspace.capture(cid).load().status == "receiving"


def test_export_options_reach_the_export_stage(server, tmp_path):
    options = {"formats": ["obj", "ply"], "texture_format": "jpeg", "texture_quality": 70, "up": "z"}
    with server.client(server.token()) as c:
        cid = _capture_with_a_photo(server, c, tmp_path)
        r = c.post(f"/v1/captures/{cid}/finish", json={"export": options})
        assert r.status_code == 202, r.text
    (job,) = JobQueue(server.workspace).list(capture_id=cid)
    plan = next(s for s in job.steps if s.stage == "plan")
    assert plan.config["overrides"] == {"export": options}
    # The plan step hands the export stage these options; its config takes them as they are.
    from recon.export.stage import ExportStageConfig

    config = ExportStageConfig(**plan.config["overrides"]["export"])
    assert (config.formats, config.texture_format, config.texture_quality, config.up) == \
        (("obj", "ply"), "jpeg", 70, "z")


def test_the_servers_names_are_the_export_stages():
    from capture_server import export_request
    from recon.export.exporter import FORMATS
    from recon.export.texture_io import IMAGE_FORMATS
    from recon.export.up_axis import UP_AXES

    assert export_request.EXPORT_FORMATS == FORMATS
    assert {"jpg" if f == "jpeg" else f for f in export_request.TEXTURE_FORMATS} == set(IMAGE_FORMATS)
    assert export_request.UP_AXES == tuple(UP_AXES)
