"""generation.restyle.warp against the synthetic scene, whose depth and poses are exact."""

from __future__ import annotations

import numpy as np

from generation.restyle.warp import View, warp_image, warped_error
from recon.sample import render_orbit


def _views(n: int = 3):
    rendered = render_orbit(n * 4, (192, 144), elevations_deg=(25.0,))[:n]  # 30 degrees apart
    return rendered, [View(r.depth_m, r.c2w, r.camera) for r in rendered]


def test_warping_one_rendered_view_into_the_next_reproduces_the_next_where_both_see_the_object():
    rendered, views = _views(2)
    warped, valid = warp_image(rendered[0].rgb, views[1], views[0])
    on_object = valid & rendered[1].mask
    assert on_object.sum() > 300  # the object is seen from both
    error = np.abs(warped - rendered[1].rgb.astype(np.float32))[on_object]
    # A wrong pose convention or a flipped axis lands on other texture: tens of levels off.
    shuffled = np.abs(rendered[0].rgb.astype(np.float32) - rendered[1].rgb)[on_object].mean()
    # Most pixels land within a few levels (the rest are silhouette edges and texture aliasing).
    assert np.median(error) < 5 and error.mean() < shuffled / 2


def test_consistency_figure_is_small_for_a_real_sequence_and_large_for_unrelated_frames():
    rendered, views = _views(3)
    truth = warped_error([r.rgb for r in rendered], views)
    rng = np.random.default_rng(0)
    noise = warped_error([rng.integers(0, 256, r.rgb.shape).astype(np.uint8) for r in rendered], views)
    assert truth < 8 and noise > 60
