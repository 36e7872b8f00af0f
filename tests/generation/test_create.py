"""`scanbridge create`: tiny random Shap-E pipelines built in code, saved as folders and loaded through
the model registry, make a USDZ that passes OpenUSD's ARKit checker at the height asked for, standing
on y = 0; a model that is not on the machine is one clear error naming it and where to put it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.cli import main
from core.settings import Settings, save_settings
from core.workspace import Workspace
from recon.export.check import check_usdz
from recon.export.inspect import inspect_usdz


@pytest.fixture(scope="module")
def shap_e_workspace(tmp_path_factory, tiny_sd15):
    from tiny_models import save_tiny_shap_e, save_tiny_shap_e_img2img

    root = tmp_path_factory.mktemp("tiny-shap-e")
    text, image = save_tiny_shap_e(root / "text"), save_tiny_shap_e_img2img(root / "image")
    ws = Workspace(tmp_path_factory.mktemp("create-ws"))
    save_settings(ws.settings_path, Settings(model_paths={"shap-e": str(text), "shap-e-img2img": str(image),
                                                          "sd15": str(tiny_sd15[0])}))
    return ws


def _usdz_points(path) -> np.ndarray:
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(path))
    mesh = next(UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh))
    xform = UsdGeom.Xformable(mesh.GetPrim()).ComputeLocalToWorldTransform(Usd.TimeCode.Default())
    points = np.array(mesh.GetPointsAttr().Get(), float)
    m = np.array(xform, float)  # row-vector convention
    return points @ m[:3, :3] + m[3, :3]


def _check_asset(path, height_m: float) -> None:
    report = check_usdz(path)
    assert report.passed, report
    info = inspect_usdz(path)
    assert info.up_axis == "Y"
    points = _usdz_points(path) * info.meters_per_unit
    assert points[:, 1].min() == pytest.approx(0.0, abs=1e-4)  # standing on the ground
    assert np.ptp(points[:, 1]) == pytest.approx(height_m, rel=1e-3)


FAST = ["--steps", "2", "--grid", "24", "--detail", "preview"]


def test_create_from_a_prompt_refined_writes_an_ar_usdz_at_the_asked_height(shap_e_workspace, tmp_path,
                                                                            capsys):
    out = tmp_path / "chair.usdz"
    rc = main(["create", "--workspace", str(shap_e_workspace.root), "--prompt", "a small chair",
               "--size", "0.45", "--refine-steps", "3", "-o", str(out), *FAST])
    assert rc == 0, capsys.readouterr().err
    _check_asset(out, 0.45)
    runs = [r for c in shap_e_workspace.captures() for r in c.runs_dir.glob("create-*")]
    results = [json.loads((r / "status.json").read_text())["result"] for r in runs]
    refined = [r for r in results if r.get("prompt") == "a small chair"]
    assert refined and refined[0]["refine"]["steps"] == 3 and refined[0]["refine"]["model"] == "sd15"


def test_create_from_a_photo_writes_an_ar_usdz_of_the_default_height(shap_e_workspace, tmp_path):
    photo = tmp_path / "mug.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "mug.usdz"
    assert main(["create", "--workspace", str(shap_e_workspace.root), "--image", str(photo),
                 "-o", str(out), *FAST]) == 0
    _check_asset(out, 0.30)


def test_a_missing_shap_e_model_is_one_error_naming_it_and_where_to_put_it(tmp_path, capsys):
    ws = Workspace(tmp_path / "empty-ws")
    rc = main(["create", "--workspace", str(ws.root), "--prompt", "a lamp", "-o", str(tmp_path / "l.usdz"),
               *FAST])
    err = capsys.readouterr().err
    assert rc != 0 and not (tmp_path / "l.usdz").exists()
    assert "'shap-e'" in err and str(ws.root / "models" / "shap-e") in err
