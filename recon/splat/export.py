"""Splat files: the standard splat PLY (3DGS/INRIA layout, which SuperSplat, Postshot and
nerfstudio read) and an OpenUSD ``UsdVol.ParticleField3DGaussianSplat``. Both are written to a
temporary name, fsynced and renamed into place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from core.errors import InputError
from core.fsio import atomic_writer
from recon.splat.gaussians import PARAM_NAMES


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def ply_property_names(rest_coefficients: int) -> list[str]:
    """The PLY's vertex properties for ``rest_coefficients`` (K - 1) higher SH bands per channel."""
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(3 * rest_coefficients)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def write_splat_ply(path: Path, params: dict[str, Tensor]) -> Path:
    """Stored as trained: log-scales, opacity logits, (w, x, y, z) quaternions, raw SH.
    f_rest is channel-major (all of red's coefficients, then green's, then blue's), as 3DGS."""
    from plyfile import PlyData, PlyElement

    means = _np(params["means"])
    n = means.shape[0]
    rest = _np(params["sh_rest"])  # [N, K-1, 3]
    columns = [means, np.zeros((n, 3), np.float32), _np(params["sh_dc"]),
               rest.transpose(0, 2, 1).reshape(n, -1), _np(params["opacity_logits"])[:, None],
               _np(params["log_scales"]), _np(params["quats"])]
    data = np.concatenate(columns, axis=1)
    names = ply_property_names(rest.shape[1])
    vertex = np.empty(n, dtype=[(name, "f4") for name in names])
    for i, name in enumerate(names):
        vertex[name] = data[:, i]
    with atomic_writer(path) as f:
        PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(f)
    return path


def read_splat_ply(path: Path) -> dict[str, Tensor]:
    """Parameters back from a standard splat PLY (ours or another tool's, degree 0 or 1 kept)."""
    from plyfile import PlyData, PlyParseError

    try:
        vertex = PlyData.read(str(path))["vertex"]
    except (OSError, ValueError, KeyError, PlyParseError) as e:
        raise InputError(f"not a splat PLY: {e}", path) from None
    names = set(vertex.data.dtype.names or ())
    need = set(ply_property_names(0)) - {"nx", "ny", "nz"}
    if not need <= names:
        raise InputError(f"missing properties: {', '.join(sorted(need - names))}", path)

    def cols(keys: list[str]) -> Tensor:
        arr = np.stack([np.asarray(vertex[k], np.float32) for k in keys], axis=1)
        if not np.isfinite(arr).all():
            raise InputError(f"non-finite values in {keys[0]}..", path)
        return torch.from_numpy(arr)

    n = len(vertex.data)
    total_rest = sum(1 for k in names if k.startswith("f_rest_"))
    per_channel = 3 if total_rest >= 9 else 0  # higher degrees are dropped
    all_rest = total_rest // 3
    rest = torch.zeros(n, per_channel, 3)
    if per_channel:
        full = cols([f"f_rest_{i}" for i in range(3 * all_rest)]).reshape(n, 3, all_rest)
        rest = full[:, :, :per_channel].transpose(1, 2).contiguous()
    out = {
        "means": cols(["x", "y", "z"]), "log_scales": cols(["scale_0", "scale_1", "scale_2"]),
        "quats": cols(["rot_0", "rot_1", "rot_2", "rot_3"]), "opacity_logits": cols(["opacity"])[:, 0],
        "sh_dc": cols(["f_dc_0", "f_dc_1", "f_dc_2"]), "sh_rest": rest,
    }
    assert set(out) == set(PARAM_NAMES)
    return out


def write_splat_usd(path: Path, params: dict[str, Tensor], prim_path: str = "/Splats") -> Path:
    """A .usda/.usdc with one ParticleField3DGaussianSplat: positions, unit quaternions, linear
    scales, opacities in 0..1 and SH coefficients per particle ((degree + 1)^2 RGB triples)."""
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdVol, Vt

    means = _np(params["means"])
    quats = _np(params["quats"])
    quats = quats / np.maximum(np.linalg.norm(quats, axis=1, keepdims=True), 1e-12)
    scales = np.exp(_np(params["log_scales"]))
    opacity = 1.0 / (1.0 + np.exp(-_np(params["opacity_logits"])))
    sh = np.concatenate([_np(params["sh_dc"])[:, None, :], _np(params["sh_rest"])], axis=1)  # [N, K, 3]
    degree = 1 if sh.shape[1] >= 4 else 0

    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    stage = Usd.Stage.CreateNew(str(tmp))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)  # the capture's world frame is y-up metres
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    splat = UsdVol.ParticleField3DGaussianSplat.Define(stage, Sdf.Path(prim_path))
    stage.SetDefaultPrim(splat.GetPrim())
    splat.CreatePositionsAttr(Vt.Vec3fArray.FromNumpy(means))
    splat.CreateOrientationsAttr(Vt.QuatfArray([Gf.Quatf(float(q[0]), float(q[1]), float(q[2]), float(q[3]))
                                                for q in quats]))
    splat.CreateScalesAttr(Vt.Vec3fArray.FromNumpy(scales.astype(np.float32)))
    splat.CreateOpacitiesAttr(Vt.FloatArray.FromNumpy(opacity.astype(np.float32)))
    splat.CreateRadianceSphericalHarmonicsDegreeAttr(degree)
    splat.CreateRadianceSphericalHarmonicsCoefficientsAttr(
        Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(sh[:, :(degree + 1) ** 2].reshape(-1, 3))))
    lo, hi = means.min(axis=0) - scales.max(), means.max(axis=0) + scales.max()
    splat.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, lo)), Gf.Vec3f(*map(float, hi))]))
    stage.GetRootLayer().Save()
    del stage
    with open(tmp, "rb") as src, atomic_writer(path) as dst:
        dst.write(src.read())
    tmp.unlink()
    return path
