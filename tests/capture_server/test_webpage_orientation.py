"""The orientation the web page sends with each guided photo: checked as hostile input by the real
server's tus endpoint, and turned into ring coverage (capture_server.orientation, coverage)."""

from __future__ import annotations

import base64
import json
import math

import httpx
import numpy as np
import pytest
from server_test_kit import LiveServer, new_capture

from capture_server.errors import RequestError
from capture_server.orientation import parse_orientation


def w3c_rotation(alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Device frame -> earth frame (east, north, up), as the DeviceOrientation spec defines it:
    R = Rz(alpha) Rx(beta) Ry(gamma), angles in degrees."""
    a, b, g = np.radians([alpha, beta, gamma])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(g), 0, np.sin(g)], [0, 1, 0], [-np.sin(g), 0, np.cos(g)]])
    return rz @ rx @ ry


@pytest.mark.parametrize("alpha,beta,gamma", [(0, 90, 0), (30, 60, 0), (200, 75, -20), (350, 10, 80),
                                              (90, 120, 45), (0, -170, 0)])
def test_the_camera_direction_follows_the_w3c_rotation(alpha: float, beta: float, gamma: float) -> None:
    o = parse_orientation(json.dumps({"alpha": alpha, "beta": beta, "gamma": gamma}))
    looking = w3c_rotation(alpha, beta, gamma) @ np.array([0.0, 0.0, -1.0])  # the back camera: -z
    assert np.allclose(o.camera_direction(), looking, atol=1e-9)
    # The phone is on the far side of the object from where the camera looks.
    to_phone = -looking
    horizontal = math.hypot(to_phone[0], to_phone[1])
    if horizontal > 1e-6:
        expected_azimuth = math.degrees(math.atan2(to_phone[0], to_phone[1])) % 360.0
        assert math.isclose(o.view_azimuth_deg(), expected_azimuth, abs_tol=1e-6)
    assert math.isclose(o.view_elevation_deg(), math.degrees(math.asin(to_phone[2])), abs_tol=1e-6)


def test_upright_phone_facing_north_sees_north_from_the_south() -> None:
    o = parse_orientation('{"alpha": 0, "beta": 90, "gamma": 0, "heading": 12.5, "t": 1700000000000}')
    assert np.allclose(o.camera_direction(), (0.0, 1.0, 0.0), atol=1e-12)
    assert math.isclose(o.view_azimuth_deg(), 180.0) and abs(o.view_elevation_deg()) < 1e-9
    tilted = parse_orientation('{"alpha": 0, "beta": 60, "gamma": 0}')  # looking 30 degrees down
    assert math.isclose(tilted.view_elevation_deg(), 30.0)
    assert o.heading == 12.5 and o.t == 1.7e12 and tilted.heading is None


@pytest.mark.parametrize("text,where", [
    ('{"alpha": NaN, "beta": 0, "gamma": 0}', "orientation"),
    ('{"alpha": 0, "beta": Infinity, "gamma": 0}', "orientation"),
    ('{"alpha": 0, "beta": 1e400, "gamma": 0}', "orientation.beta"),
    ('{"alpha": 0, "beta": 0, "gamma": ' + "9" * 400 + "}", "orientation.gamma"),
    ('{"alpha": "90", "beta": 0, "gamma": 0}', "orientation.alpha"),
    ('{"alpha": true, "beta": 0, "gamma": 0}', "orientation.alpha"),
    ('{"alpha": {"deg": 1}, "beta": 0, "gamma": 0}', "orientation.alpha"),
    ('{"alpha": 0, "beta": 180.5, "gamma": 0}', "orientation.beta"),
    ('{"alpha": 0, "beta": 0, "gamma": -90.01}', "orientation.gamma"),
    ('{"alpha": -1, "beta": 0, "gamma": 0}', "orientation.alpha"),
    ('{"alpha": 0, "beta": 0, "gamma": 0, "heading": 361}', "orientation.heading"),
    ('{"alpha": 0, "beta": 0, "gamma": 0, "t": -5}', "orientation.t"),
    ('{"alpha": 0, "beta": 0}', "orientation.gamma"),
    ('{"alpha": 0, "beta": 0, "gamma": null}', "orientation.gamma"),
    ('{"alpha": 0, "beta": 0, "gamma": 0, "pose": [1]}', "orientation"),
    ("[0, 0, 0]", "orientation"),
    ("alpha=0", "orientation"),
    ('{"alpha": 0, "beta": 0, "gamma": 0, "t": ' + "1" * 600 + "}", "orientation"),
])
def test_bad_orientations_are_refused_naming_the_field(text: str, where: str) -> None:
    with pytest.raises(RequestError) as e:
        parse_orientation(text)
    assert e.value.where == f"Upload-Metadata {where}"


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def tus_upload(c: httpx.Client, capture_id: str, name: str, body: bytes,
               orientation: str | None) -> httpx.Response:
    meta = {"capture_id": capture_id, "filename": name, "kind": "image"}
    if orientation is not None:
        meta["orientation"] = orientation
    created = c.post("/v1/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(body)),
                                             "Upload-Metadata": tus_metadata(**meta)})
    if created.status_code != 201:
        return created
    return c.patch(created.headers["location"], content=body,
                   headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                            "Content-Type": "application/offset+octet-stream"})


def test_the_server_refuses_a_bad_orientation_and_rings_the_good_ones(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c, "guided")
        bad = tus_upload(c, cid, "a.jpg", b"jpeg bytes", '{"alpha": 0, "beta": NaN, "gamma": 0}')
        assert bad.status_code == 400 and bad.json()["where"] == "Upload-Metadata orientation"
        bad = tus_upload(c, cid, "a.jpg", b"jpeg bytes", '{"alpha": 0, "beta": 0, "gamma": 95}')
        assert bad.status_code == 400 and bad.json()["where"] == "Upload-Metadata orientation.gamma"
        assert c.get(f"/v1/captures/{cid}").json()["uploads"] == []  # nothing was created
        before = c.get(f"/v1/captures/{cid}/coverage").json()
        assert before["available"] is False

        # Three photos looking 30 degrees down (beta 60) from three sides; one without orientation.
        for i, alpha in enumerate((0, 90, 180)):
            text = json.dumps({"alpha": alpha, "beta": 60, "gamma": 0, "heading": None, "t": 1e12 + i})
            assert tus_upload(c, cid, f"shot{i}.jpg", b"jpeg %d" % i, text).status_code == 204
        assert tus_upload(c, cid, "picked.jpg", b"jpeg 9", None).status_code == 204
        cov = c.get(f"/v1/captures/{cid}/coverage").json()
        files = {f["name"]: f for f in c.get(f"/v1/captures/{cid}").json()["files"]}

    assert cov["available"] is True and cov["source"] == "orientation" and cov["views"] == 3
    counts = np.asarray(cov["counts"])
    # alpha 0 looks north (phone south of the object: 180 degrees), alpha 90 looks west (phone
    # east: 90 degrees), alpha 180 looks south (phone north: 0 degrees); 30 degrees up: band 15..45.
    expected = np.zeros((4, 12), dtype=int)
    expected[2, [6, 3, 0]] = 1
    assert counts.tolist() == expected.tolist()
    assert cov["azimuth_covered_fraction"] == 0.25
    assert files["shot1.jpg"]["orientation"] == {"alpha": 90.0, "beta": 60.0, "gamma": 0.0, "heading": None,
                                                 "t": 1e12 + 1}
    assert "orientation" not in files["picked.jpg"]
