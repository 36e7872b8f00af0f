import zipfile

from test_ingest_support import write_jpeg

from core.cli import main
from core.workspace import Workspace


def test_import_command_prints_the_capture_and_respects_workspace_flags(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCANBRIDGE_WORKSPACE", str(tmp_path / "not-this-one"))
    src = tmp_path / "photos"
    for i in range(3):
        write_jpeg(src / f"p{i}.jpg", seed=i)
    ws_dir = tmp_path / "ws"

    assert main(["--workspace", str(ws_dir), "import", str(src), "--name", "Mug", "--mode", "free"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    capture_id, folder = first.split("\t")
    cap = Workspace(ws_dir).capture(capture_id)
    assert folder == str(cap.root)
    m = cap.load()
    assert (m.name, m.mode, len(m.frames)) == ("Mug", "free", 3)

    # The flag also works after the command.
    assert main(["import", str(src), "--workspace", str(ws_dir)]) == 0
    assert len(Workspace(ws_dir).captures()) == 2
    assert not (tmp_path / "not-this-one").exists()


def test_import_command_reports_one_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../escape.jpg", b"x")
    ws_dir = tmp_path / "ws"
    assert main(["--workspace", str(ws_dir), "import", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and str(bad) in err[-1] and "../../escape.jpg" in err[-1]
    assert Workspace(ws_dir).captures() == []
