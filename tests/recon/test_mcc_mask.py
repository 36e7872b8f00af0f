"""The object's pixels from depth alone: the table it stands on and the background are not it,
and the object's own big flat face is not mistaken for a table."""

from __future__ import annotations

import math

import numpy as np
import torch

from recon.mcc.data import BOX, CYLINDER, PLAIN, GeneratedObject, look_at, render
from recon.mcc.data import Camera as RenderCamera
from recon.mcc.frame import backproject
from recon.mcc.mask import mask_from_box, mask_from_depth


def _thing(kind: int, centre, half) -> GeneratedObject:
    t = torch.tensor
    return GeneratedObject(kind=t([kind]), centre=t([centre], dtype=torch.float32),
                           half=t([half], dtype=torch.float32), yaw=t([0.3]),
                           colour_a=t([[0.5, 0.5, 0.5]]), colour_b=t([[0.5, 0.5, 0.5]]),
                           pattern=t([PLAIN]), frequency=t([10.0]))


def _camera(size: int = 96) -> RenderCamera:
    eye = np.array([0.0, 0.45, 0.55])
    f = size / 2 / math.tan(math.radians(30))
    return RenderCamera(size, size, f, f, size / 2, size / 2, look_at(eye, np.array([0.0, 0.06, 0.0])))


def test_a_can_on_a_table_is_found_and_the_table_is_not():
    cam = _camera()
    can = _thing(CYLINDER, [0.0, 0.08, 0.0], [0.05, 0.08, 0.05])  # stands on y = 0
    table = _thing(BOX, [0.0, -0.02, 0.0], [1.5, 0.02, 1.5])  # top at y = 0, fills the lower view
    _, can_depth = render(can, cam)
    _, table_depth = render(table, cam)
    in_front = (can_depth > 0) & ((table_depth == 0) | (can_depth < table_depth))
    depth = np.where(in_front, can_depth, table_depth)
    truth = (can_depth > 0) & (depth == can_depth)
    assert truth.sum() > 200 and (table_depth > 0).sum() > 3 * truth.sum()

    mask = mask_from_depth(backproject(depth, cam.fx, cam.fy, cam.cx, cam.cy))

    assert (mask & truth).sum() / truth.sum() > 0.9
    assert (mask & ~truth).sum() < 0.1 * truth.sum()


def test_an_object_with_a_big_flat_face_is_kept_whole():
    cam = _camera()
    crate = _thing(BOX, [0.0, 0.1, 0.0], [0.15, 0.1, 0.12])  # its top face is most of what is seen
    _, depth = render(crate, cam)
    mask = mask_from_depth(backproject(depth, cam.fx, cam.fy, cam.cx, cam.cy))
    assert mask.sum() > 0.95 * (depth > 0).sum()


def test_a_box_drawn_by_the_user_keeps_what_is_inside_it_off_the_table():
    cam = _camera()
    can = _thing(CYLINDER, [0.0, 0.08, 0.0], [0.05, 0.08, 0.05])
    table = _thing(BOX, [0.0, -0.02, 0.0], [1.5, 0.02, 1.5])
    _, can_depth = render(can, cam)
    _, table_depth = render(table, cam)
    in_front = (can_depth > 0) & ((table_depth == 0) | (can_depth < table_depth))
    depth = np.where(in_front, can_depth, table_depth)
    truth = (can_depth > 0) & (depth == can_depth)
    ys, xs = np.nonzero(truth)
    box = (xs.min() - 8, ys.min() - 8, xs.max() + 9, ys.max() + 9)
    mask = mask_from_box(backproject(depth, cam.fx, cam.fy, cam.cx, cam.cy), box)
    assert (mask & truth).sum() / truth.sum() > 0.9
    assert (mask & ~truth).sum() < 0.1 * truth.sum()
