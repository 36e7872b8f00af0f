import json

import pytest

from core.capture import SCHEMA_VERSION, Camera, CaptureFolder, Frame, Manifest, parse_manifest, utc_now
from core.errors import ManifestError, SchemaVersionError


def _manifest_dict(**over):
    d = {
        "schema_version": SCHEMA_VERSION,
        "id": "cap-1",
        "name": "mug",
        "created": "2026-11-25T10:00:00Z",
        "mode": "free",
        "frames": [
            {
                "id": "000",
                "image": "images/a.jpg",
                "camera": {"width": 640, "height": 480, "fx": 500, "fy": 500, "cx": 320, "cy": 240},
                "pose": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2], [0, 0, 0, 1]],
            }
        ],
    }
    d.update(over)
    return d


def test_roundtrip_through_disk(tmp_path):
    cam = Camera(640, 480, 500.0, 501.0, 320.0, 240.0, "OPENCV", (0.1, 0.0, 0.0, 0.0))
    pose = ((1.0, 0, 0, 0.5), (0, 1.0, 0, 0), (0, 0, 1.0, 0), (0, 0, 0, 1.0))
    m = Manifest(
        id="cap", name="x", created=utc_now(), mode="rgbd", scale="metric",
        frames=(Frame("0", cam, depth="depth/0.png", pose=pose, confidence="confidence/0.png"),),
    )
    cap = CaptureFolder(tmp_path)
    cap.save(m)
    assert cap.load() == m
    assert json.loads(cap.manifest_path.read_text())["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("mode"), "mode"),
        (lambda d: d.update(mode="orbit"), "mode"),
        (lambda d: d["frames"][0]["camera"].update(fx=-1), "frames[0].camera.fx"),
        (lambda d: d["frames"][0]["camera"].update(width=0), "frames[0].camera.width"),
        (lambda d: d["frames"][0].update(pose=[[1, 0, 0], [0, 1, 0]]), "frames[0].pose"),
        (lambda d: d["frames"][0]["pose"][1].__setitem__(3, float("nan")), "frames[0].pose[1][3]"),
        (lambda d: d["frames"][0].update(image="../../etc/passwd"), "frames[0].image"),
        (lambda d: d["frames"][0].update(image=None), "frames[0]"),
        (lambda d: d["frames"].append(dict(d["frames"][0])), "frames[1].id"),
        (lambda d: d["frames"][0]["camera"].update(distortion=[0.1]), "frames[0].camera.distortion"),
    ],
)
def test_invalid_field_is_named(mutate, field):
    d = _manifest_dict()
    mutate(d)
    with pytest.raises(ManifestError) as e:
        parse_manifest(d)
    assert e.value.where == field
    assert str(e.value).startswith(field + ":")


def test_future_schema_is_refused_with_its_field(tmp_path):
    cap = CaptureFolder(tmp_path)
    cap.manifest_path.write_text(json.dumps(_manifest_dict(schema_version=SCHEMA_VERSION + 1)))
    with pytest.raises(SchemaVersionError) as e:
        cap.load()
    assert "schema_version" in str(e.value) and str(cap.manifest_path) in str(e.value)


def test_broken_json_names_the_file(tmp_path):
    cap = CaptureFolder(tmp_path)
    cap.manifest_path.write_text('{"schema_version": 1,')
    with pytest.raises(ManifestError, match="capture.json: not valid JSON"):
        cap.load()


def test_save_refuses_invalid_manifest_and_keeps_old(tmp_path):
    cap = CaptureFolder(tmp_path)
    good = parse_manifest(_manifest_dict())
    cap.save(good)
    before = cap.manifest_path.read_bytes()
    bad = Manifest(id="cap-1", name="", created="now", mode="free")
    with pytest.raises(ManifestError):
        cap.save(bad)
    assert cap.manifest_path.read_bytes() == before


def test_camera_scaled_to_depth_resolution():
    cam = Camera(1920, 1440, 1500.0, 1500.0, 960.0, 720.0)
    d = cam.scaled(256, 192)
    assert (d.width, d.height) == (256, 192)
    assert d.fx == pytest.approx(200.0) and d.cx == pytest.approx(128.0) and d.cy == pytest.approx(96.0)
