"""The mcc stage and method end to end: one generated RGB-D frame to an ARKit-clean USDZ.

A tiny model overfitted here on the very object (so the geometry is known to be learnable at
this size) comes in as the user's own weights through the settings' model_paths; what is
checked is the plumbing: mask, crop, normalisation, grid, marching cubes, back to the world
through the frame's pose, mesh, texture and export at true size, standing on the ground."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.errors import ConfigError, DependencyError
from core.settings import Settings, save_settings
from core.workspace import Workspace
from recon.export.check import check_usdz
from recon.mcc.data import surface_points
from recon.mcc.model import MCC, MCCConfig
from recon.mcc.sample import generated_view_images, write_generated_capture
from recon.mcc.train import TrainSettings, train, training_view
from recon.mcc.weights import save_model
from recon.methods import plan
from recon.pipeline import process

CONFIG = MCCConfig(rgb_size=32, patch_size=8, embed_dim=32, depth=1, heads=2, xyz_size=16, window=4,
                   decoder_dim=32, decoder_depth=2, decoder_heads=2, colour_bins=8, occupancy="solid")


def usdz_points(path):
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(path))
    mesh = next(UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh))
    return np.array(mesh.GetPointsAttr().Get(), np.float64)


def to_world(points, mesh_run):
    matrix = np.array(json.loads((mesh_run / "placement.json").read_text())["matrix"])
    return (points - matrix[:3, 3]) @ np.linalg.inv(matrix[:3, :3]).T


@pytest.fixture(scope="module")
def overfitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("mcc")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: threads only fight
    torch.manual_seed(0)
    seen = generated_view_images(seed=4242, size=128)
    rng = np.random.default_rng(0)
    view = training_view(seen.obj, seen.camera, seen.rgb, seen.depth, CONFIG, rng)
    model = MCC(CONFIG)
    train(model, TrainSettings(steps=250, batch=1, queries=512, lr=3e-3, pool=1, seed=0), lambda _r: view)
    torch.set_num_threads(threads)
    save_model(model, root / "mine.pt", half=False)
    ws = Workspace(root / "ws")
    save_settings(ws.settings_path, Settings(model_paths={"my-mcc": str(root / "mine.pt")}))
    return ws, write_generated_capture(ws, seen), seen


def test_user_weights_complete_the_frame_into_a_true_size_usdz(overfitted, tmp_path):
    ws, cap, seen = overfitted
    out = tmp_path / "model.usdz"
    result = process(ws, cap, method="mcc", detail="preview", out=out, mesh_options={"texture_size": 256},
                     overrides={"mcc": {"weights": "my-mcc", "frame": 0, "resolution": 64,
                                              "threshold": 0.5}})
    assert result.method == "mcc"
    assert [o.stage for o in result.outcomes][-4:] == ["mcc", "mesh", "export", "publish"]
    mcc = next(o for o in result.outcomes if o.stage == "mcc")
    assert mcc.result["weights_source"] == "scanbridge" and mcc.result["weights_sha256"]
    assert mcc.result["mask"] == "depth" and mcc.result["frame_in_world"]
    report = check_usdz(out)
    assert report.passed, (report.errors, report.warnings, report.failed_checks)

    # true size: the exported model mapped back to the capture's world against the object itself
    mesh_run = next(o.run_dir for o in result.outcomes if o.stage == "mesh")
    world = to_world(usdz_points(out), mesh_run)
    truth = surface_points(seen.obj, 20000, np.random.default_rng(1)).numpy()
    size, true_size = np.ptp(world, axis=0), np.ptp(truth, axis=0)
    assert np.all(np.abs(size - true_size) / true_size <= 0.05), (size, true_size)
    assert abs(world[:, 1].min()) < 0.01  # stands on the ground (the capture's y = 0 is the floor)
    # it covers the side the camera never saw: surface points facing away from the camera
    centre = seen.camera.c2w[:3, 3]
    behind = truth[(truth - truth.mean(0)) @ (centre - truth.mean(0)) < 0]
    from scipy.spatial import cKDTree

    assert (cKDTree(world).query(behind)[0] < 0.02).mean() > 0.7


def test_plan_and_refusals(overfitted, tmp_path):
    ws, cap, _ = overfitted
    chosen = plan(cap, "mcc")
    assert [s.stage for s in chosen.steps] == ["mcc", "mesh", "export", "publish"]
    assert chosen.steps[0].config["frame"] is None and chosen.steps[1].config["crop"] == "none"
    with pytest.raises(ConfigError, match="frames 0..0"):
        process(ws, cap, method="mcc", overrides={"mcc": {"frame": 5}})
    with pytest.raises(ConfigError) as e:
        plan(cap, "mcc", overrides={"mcc": {"threshold": float("nan")}})
    assert e.value.where == "mcc.threshold"
    with pytest.raises(ConfigError, match="no mcc stage"):
        plan(cap, "fusion", overrides={"mcc": {"frame": 0}})
    with pytest.raises(DependencyError, match="not installed"):
        process(ws, cap, method="mcc", overrides={"mcc": {"weights": "nobody-installed-this"}})
