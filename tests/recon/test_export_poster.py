"""The poster rasteriser: nearest surface wins, texture colours show, background is transparent."""

from __future__ import annotations

import numpy as np

from recon.export import TexturedMesh, render_poster
from recon.export.samples import uv_sphere


def _quad(z: float, colour: tuple[int, int, int], half: float = 0.5) -> tuple:
    v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]], float)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    tex = np.zeros((4, 4, 3), np.uint8)
    tex[:] = colour
    return v, f, uv, tex


def _two_quads(front_colour, back_colour) -> TexturedMesh:
    """A small front quad (z = +0.3) over a big back quad (z = 0); texture left half / right half."""
    vf, ff, uvf, _ = _quad(0.3, front_colour, half=0.2)
    vb, fb, uvb, _ = _quad(0.0, back_colour, half=0.6)
    tex = np.zeros((4, 8, 3), np.uint8)
    tex[:, :4] = front_colour
    tex[:, 4:] = back_colour
    uvf = uvf * [0.25, 1.0] + [0.0625, 0.0]  # inside the left half
    uvb = uvb * [0.25, 1.0] + [0.5625, 0.0]  # inside the right half
    faces = np.concatenate([ff, fb + 4])
    return TexturedMesh(np.concatenate([vf, vb]), faces, np.concatenate([uvf, uvb]), tex)


def _centre(img):
    return img[img.shape[0] // 2, img.shape[1] // 2]


def test_nearest_surface_wins_in_either_face_order():
    green, red = (0, 200, 0), (200, 0, 0)
    mesh = _two_quads(green, red)
    reversed_mesh = TexturedMesh(mesh.vertices, mesh.faces[::-1].copy(), mesh.uvs, mesh.texture)
    for m in (mesh, reversed_mesh):
        img = render_poster(m, 64, azimuth_deg=0.0, elevation_deg=0.0)
        r, g, b, a = (int(x) for x in _centre(img))
        assert a == 255
        assert g > 100 and r < 30, (r, g, b)


def test_texture_colours_and_transparent_background():
    mesh = _two_quads((0, 200, 0), (0, 0, 220))
    img = render_poster(mesh, 64, azimuth_deg=0.0, elevation_deg=0.0)
    assert img.shape == (64, 64, 4) and img.dtype == np.uint8
    assert img[0, 0, 3] == 0 and img[-1, -1, 3] == 0  # corners: nothing there
    ring = img[32, 3:20]  # left of the front quad: the back quad is blue
    visible = ring[ring[:, 3] == 255]
    assert len(visible) > 3
    assert (visible[:, 2] > 100).all() and (visible[:, 1] < 30).all()


def test_sphere_poster_is_round_and_centered():
    img = render_poster(uv_sphere(rows=16, cols=32), 128)
    alpha = img[..., 3] > 0
    ys, xs = np.nonzero(alpha)
    assert abs(xs.mean() - 63.5) < 2 and abs(ys.mean() - 63.5) < 2
    width, height = xs.max() - xs.min(), ys.max() - ys.min()
    assert abs(width - height) <= 2
    assert 0.3 < alpha.mean() < 0.8
