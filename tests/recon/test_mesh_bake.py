"""Texture baking: a baked box re-rendered from held-out cameras reproduces its photos."""

from __future__ import annotations

import numpy as np
import pytest
from mesh_synth import box_mesh, camera, orbit_poses, orbit_views, psnr, render_object

from recon.mesh.bake import bake_texture, fill_texture, rasterize_uv
from recon.mesh.raycast import render_textured
from recon.mesh.uv import unwrap
from recon.mesh.views import PosedView

# Photo -> texture -> render resamples an 8-bit image twice (bilinear each time); on this
# smooth pattern that costs ~38-43 dB. 33 dB (RMS error ~6 of 255 levels) leaves margin for
# platform differences, while a texture shifted by a small pose error (below) scores < 30 dB.
MIN_PSNR_DB = 33.0
SIZE = 512


@pytest.fixture(scope="module")
def scene():
    mesh = box_mesh(3)
    views = orbit_views(mesh, 12)
    return mesh, views, unwrap(mesh, SIZE)


def held_out_psnr(mesh, textured) -> list[float]:
    cam = camera()
    out = []
    for c2w in orbit_poses(4, heights=(0.25,), phase=0.4):  # between the baking views
        photo, on_object = render_object(mesh, cam, c2w)
        rgb, hit = render_textured(textured, cam, c2w)
        assert (on_object == hit).mean() > 0.999  # same geometry
        out.append(psnr(photo, rgb, on_object & hit))
    return out


def test_baked_texture_reproduces_held_out_views(scene):
    mesh, views, uv_mesh = scene
    textured = bake_texture(uv_mesh, views, SIZE)
    assert textured.texture.shape == (SIZE, SIZE, 3) and textured.texture.dtype == np.uint8
    assert textured.face_count == mesh.n_faces
    assert min(held_out_psnr(mesh, textured)) > MIN_PSNR_DB


def test_misregistered_photos_fall_below_the_threshold(scene):
    """The PSNR check can fail: photos whose poses are off by 1.5 degrees bake a worse texture."""
    mesh, views, uv_mesh = scene
    a = np.radians(1.5)
    tilt = np.array([[np.cos(a), 0, np.sin(a), 0], [0, 1, 0, 0], [-np.sin(a), 0, np.cos(a), 0], [0, 0, 0, 1]])
    wrong = [PosedView(v.id, v.image, v.camera, v.c2w @ tilt) for v in views]
    textured = bake_texture(uv_mesh, wrong, SIZE)
    assert np.mean(held_out_psnr(mesh, textured)) < MIN_PSNR_DB - 3


def test_occluded_view_does_not_paint_the_hidden_side(scene):
    """One photo of the front only: the back faces get no colour from it (visibility test)."""
    mesh, views, uv_mesh = scene
    textured = bake_texture(uv_mesh, views[:1], SIZE)
    cam = camera()
    back = orbit_poses(2, heights=(0.25,), phase=np.pi)[0]  # the opposite side
    rgb, hit = render_textured(textured, cam, back)
    photo, on_object = render_object(mesh, cam, back)
    # The back is filled from surrounding texels, not baked: it cannot match its true colours.
    assert psnr(photo, rgb, on_object & hit) < 25.0


def test_every_texel_is_filled_and_padding_extends_charts(scene):
    _, _, uv_mesh = scene
    inside, _, bary = rasterize_uv(uv_mesh, SIZE)
    assert 0.3 * SIZE * SIZE < len(inside) < SIZE * SIZE
    assert np.allclose(bary.sum(1), 1.0, atol=1e-5) and bary.min() > -1e-4
    colour = np.zeros((8, 8, 3), np.float32)
    valid = np.zeros((8, 8), bool)
    colour[2, 2], valid[2, 2] = (200, 10, 10), True
    colour[6, 6], valid[6, 6] = (10, 10, 200), True
    filled = fill_texture(colour, valid, dilate_px=1)
    assert np.allclose(filled[1, 1], (200, 10, 10)) and np.allclose(filled[7, 7], (10, 10, 200))
    assert np.isfinite(filled).all() and filled.min() >= 10 - 1e-3 and filled.max() <= 200 + 1e-3
