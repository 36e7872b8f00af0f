"""Splat PLY round trip (what another tool or our own CUDA run wrote loads back into the same
parameters) and hostile PLYs as one InputError naming the file."""

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from core.errors import InputError
from recon.splat.export import read_splat_ply, write_splat_ply
from recon.splat.gaussians import PARAM_NAMES, init_params


def _params(n=50):
    g = torch.Generator().manual_seed(1)
    p = init_params(torch.rand(n, 3, generator=g).numpy(), torch.rand(n, 3, generator=g).numpy(), 1)
    p["sh_rest"] = torch.randn(n, 3, 3, generator=g)
    p["quats"] = torch.randn(n, 4, generator=g)
    return p


def test_ply_round_trip_keeps_every_parameter(tmp_path):
    p = _params()
    back = read_splat_ply(write_splat_ply(tmp_path / "s.ply", p))
    for name in PARAM_NAMES:
        assert torch.allclose(back[name], p[name]), name
    # f_rest is channel-major: f_rest_0..2 are red's three degree-1 coefficients.
    vertex = PlyData.read(str(tmp_path / "s.ply"))["vertex"]
    assert np.allclose(vertex["f_rest_1"], p["sh_rest"][:, 1, 0].numpy())
    assert np.allclose(vertex["f_rest_3"], p["sh_rest"][:, 0, 1].numpy())


def test_missing_or_non_finite_properties_are_one_input_error(tmp_path):
    bad = np.zeros(3, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    path = tmp_path / "points.ply"
    PlyData([PlyElement.describe(bad, "vertex")]).write(str(path))
    with pytest.raises(InputError, match="missing properties") as e:
        read_splat_ply(path)
    assert str(path) in str(e.value)

    p = _params(4)
    p["means"][2, 0] = float("nan")
    nan_path = write_splat_ply(tmp_path / "nan.ply", p)
    with pytest.raises(InputError, match="non-finite"):
        read_splat_ply(nan_path)
    (tmp_path / "junk.ply").write_bytes(b"not a ply at all")
    with pytest.raises(InputError, match="not a splat PLY"):
        read_splat_ply(tmp_path / "junk.ply")
