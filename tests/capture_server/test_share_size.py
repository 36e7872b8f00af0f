"""An unscaled model's size is a guess (recon's mesh stage sets its longest side to 30 cm): the
server's capture JSON and the share page say so, read from the job's export step; a measured
model says nothing of the kind. Real server on loopback, real job queue."""

from __future__ import annotations

import pytest
from server_test_kit import LiveServer, new_capture
from test_share import make_link, needs_usdz, with_export

from core.jobs import JobQueue, Step
from core.stages import StageOutcome


def finished_job(live_server: LiveServer, capture_id: str, export_result: dict) -> None:
    """A done job whose export step returned ``export_result`` (as recon's export stage does)."""
    queue = JobQueue(live_server.workspace)
    queue.submit(capture_id, [Step("plan", {"method": "auto", "detail": "medium"}), Step("export"),
                              Step("publish")], validate=False)
    lease = queue.claim()
    assert lease is not None
    run = live_server.workspace.capture(capture_id).root / "runs"
    for index, (stage, result) in enumerate([("plan", {}), ("export", export_result), ("publish", {})]):
        queue.start_step(lease, index)
        queue.finish_step(lease, index, StageOutcome(stage, run / stage, result))
    queue.finish_job(lease, "done")


@needs_usdz
@pytest.mark.parametrize("scale, estimated, note", [
    ("estimated", True, "Size is an estimate (longest side 30 cm)"),
    ("metric", False, None),
])
def test_the_server_and_the_share_page_say_when_the_size_is_an_estimate(live_server, scale, estimated, note):
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
    with_export(live_server.workspace, cid)
    finished_job(live_server, cid, {"files": {"usdz": "model.usdz"}, "scale": scale,
                                    "size_estimated": estimated, "longest_side_m": 0.3,
                                    "units": "metres"})
    with live_server.client(token) as c:
        capture = c.get(f"/v1/captures/{cid}").json()
    assert capture["job"]["size"] == {"scale": scale, "estimated": estimated, "longest_side_m": 0.3}

    link = make_link(live_server, token, cid)
    with live_server.client() as c:
        page = c.get(link["url"]).text
    if note is None:
        assert "estimate" not in page
    else:
        assert note in page and 'class="size-estimated"' in page
