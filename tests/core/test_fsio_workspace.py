import pytest

from core.errors import ConfigError, InputError, NotFoundError
from core.fsio import atomic_write_bytes, atomic_writer
from core.settings import Settings, load_settings, save_settings, with_changes
from core.workspace import Workspace


def test_atomic_write_leaves_old_content_on_failure(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as f:
            f.write(b"half of the new")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]  # no temporary left behind
    assert target.stat().st_mode & 0o777 == 0o644  # readable like any other published file


def test_staged_capture_is_published_only_on_success(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(ValueError):
        with ws.staged_capture("broken") as cap:
            (cap.root / "images").mkdir()
            (cap.root / "images" / "x.jpg").write_bytes(b"x")
            raise ValueError("corrupt image")
    assert list(ws.captures_dir.iterdir()) == []
    with ws.staged_capture("good") as cap:
        (cap.root / "capture.json").write_text("{}")
    assert [p.name for p in ws.captures_dir.iterdir()] == ["good"]
    with pytest.raises(InputError):
        with ws.staged_capture("good"):
            pass


def test_capture_lookup_errors(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(NotFoundError, match="nope"):
        ws.capture("nope")
    with pytest.raises(InputError):
        ws.capture("../etc")
    assert ws.new_capture_id("My Fox!").startswith("my-fox-")


def test_settings_roundtrip_and_bad_key(tmp_path):
    path = tmp_path / "settings.json"
    assert load_settings(path) == Settings()
    s = with_changes(Settings(), server_port=9000, https=False)
    save_settings(path, s)
    assert load_settings(path) == s
    path.write_text('{"server_port": "80"}')
    with pytest.raises(ConfigError, match="server_port"):
        load_settings(path)
    path.write_text('{"colour": 1}')
    with pytest.raises(ConfigError, match="colour"):
        load_settings(path)
