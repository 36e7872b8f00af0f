"""The plain-torch splat rasterizer against gsplat's own pure-torch reference functions
(gsplat/cuda/_torch_impl.py) and against compositing written out pixel by pixel."""

import math

import pytest
import torch

from recon.splat.gaussians import colors_from_sh, covariances, init_params
from recon.splat.raster import ALPHA_MAX, ALPHA_MIN, project, rasterize

torch_impl = pytest.importorskip("gsplat.cuda._torch_impl", reason="gsplat is not installed")

W, H = 40, 30


def _camera():
    K = torch.tensor([[35.0, 0.0, 19.5], [0.0, 33.0, 15.25], [0.0, 0.0, 1.0]])
    # A camera 1 m back along -z, turned a little: world-to-camera.
    a = 0.2
    R = torch.tensor([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    viewmat = torch.eye(4)
    viewmat[:3, :3], viewmat[:3, 3] = R, torch.tensor([0.05, -0.02, 1.0])
    return viewmat, K


def _gaussians(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * torch.tensor([0.6, 0.5, 0.4])
    params = init_params(means.numpy(), torch.rand(n, 3, generator=g).numpy(), sh_degree=1)
    params["log_scales"] = torch.log(0.01 + 0.04 * torch.rand(n, 3, generator=g))
    params["quats"] = torch.randn(n, 4, generator=g)
    params["opacity_logits"] = torch.randn(n, generator=g)
    params["sh_rest"] = 0.3 * torch.randn(n, 3, 3, generator=g)
    return params


def test_covariances_match_gsplat():
    p = _gaussians()
    scales = torch.exp(p["log_scales"])
    ref, _ = torch_impl._quat_scale_to_covar_preci(p["quats"], scales, compute_preci=False)
    assert torch.allclose(covariances(p["quats"], scales), ref, atol=1e-7)


def test_projection_matches_gsplat_fully_fused_projection():
    p = _gaussians()
    viewmat, K = _camera()
    covars = covariances(p["quats"], torch.exp(p["log_scales"]))
    ours = project(p["means"], covars, viewmat, K, W, H)
    radii, means2d, depths, conics, _ = torch_impl._fully_fused_projection(
        p["means"], covars, viewmat[None], K[None], W, H)
    drawn = radii[0] > 0
    assert drawn.sum() > 20  # most of them are in view
    assert torch.equal(ours.radii > 0, drawn)
    assert torch.allclose(ours.means2d[drawn], means2d[0][drawn], atol=1e-4)
    assert torch.allclose(ours.depths, depths[0], atol=1e-6)
    assert torch.allclose(ours.conics[drawn], conics[0][drawn], rtol=1e-4, atol=1e-6)
    assert torch.equal(ours.radii[drawn], radii[0][drawn])


def test_view_dependent_colour_matches_gsplat_spherical_harmonics():
    p = _gaussians()
    campos = torch.tensor([0.3, -0.1, -1.2])
    coeffs = torch.cat([p["sh_dc"][:, None], p["sh_rest"]], dim=1)  # [N, 4, 3]
    ref = torch_impl._spherical_harmonics(1, p["means"] - campos, coeffs) + 0.5
    assert torch.allclose(colors_from_sh(p, campos), ref.clamp(min=0.0), atol=1e-5)


def test_compositing_matches_front_to_back_pixel_loop():
    p = _gaussians(n=25, seed=3)
    viewmat, K = _camera()
    background = torch.tensor([0.2, 0.4, 0.6])
    out = rasterize(p, viewmat, K, W, H, background)

    # Independent: every pixel walks all drawn Gaussians sorted by depth (gsplat's projection).
    covars = covariances(p["quats"], torch.exp(p["log_scales"]))
    radii, means2d, depths, conics, _ = torch_impl._fully_fused_projection(
        p["means"], covars, viewmat[None], K[None], W, H)
    campos = -viewmat[:3, :3].T @ viewmat[:3, 3]
    colors = colors_from_sh(p, campos)
    opacity = torch.sigmoid(p["opacity_logits"])
    order = [int(i) for i in torch.argsort(depths[0]) if radii[0, i] > 0]
    checked_median = 0
    densest = [divmod(int(i), W) for i in out.alpha.flatten().topk(3).indices]  # covered pixels too
    for row, col in [(3, 4), (15, 20), (10, 30), (22, 8), (29, 39), (0, 0), (17, 13), *densest]:
        x, y = col + 0.5, row + 0.5
        T, rgb, median = 1.0, torch.zeros(3), 0.0
        for i in order:
            dx, dy = x - float(means2d[0, i, 0]), y - float(means2d[0, i, 1])
            a, b, c = (float(v) for v in conics[0, i])
            sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
            alpha = min(ALPHA_MAX, float(opacity[i]) * math.exp(-sigma))
            if sigma < 0 or alpha < ALPHA_MIN:
                continue
            rgb += T * alpha * colors[i]
            T *= 1 - alpha
            if T < 0.5 and median == 0.0:
                median = float(depths[0, i])
        rgb += T * background
        assert torch.allclose(out.rgb[row, col], rgb, atol=1e-4), (row, col)
        assert out.alpha[row, col] == pytest.approx(1 - T, abs=1e-4)
        assert out.median_depth[row, col] == pytest.approx(median, abs=1e-5)
        checked_median += median > 0
    assert checked_median >= 2  # some of the pixels are covered


def test_gradients_reach_every_parameter():
    p = {k: v.requires_grad_(True) for k, v in _gaussians().items()}
    viewmat, K = _camera()
    out = rasterize(p, viewmat, K, W, H, torch.zeros(3))
    out.rgb.sum().backward()
    for name, tensor in p.items():
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all(), name
        assert tensor.grad.abs().sum() > 0, name
    assert out.means2d.grad is not None
