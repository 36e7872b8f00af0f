"""core.checkpoints: how many checkpoints a run keeps, what save_json hands back, and a first
attempt's sweep on a run folder that does not exist yet."""

from __future__ import annotations

import pytest

from core.checkpoints import Checkpoint, Checkpoints


def _fill(cps: Checkpoints, steps: range) -> list[int]:
    for step in steps:
        cps.save_json(step, {"step": step})
    return [c.step for c in cps.all()]


def test_by_default_the_two_newest_are_kept(tmp_path):
    assert _fill(Checkpoints(tmp_path / "cp"), range(1, 6)) == [4, 5]


@pytest.mark.parametrize(("keep", "kept"), [(1, [5]), (0, [5]), (-3, [5]), (3, [3, 4, 5])])
def test_keep_is_at_least_one(tmp_path, keep, kept):
    assert _fill(Checkpoints(tmp_path / "cp", keep=keep), range(1, 6)) == kept


def test_save_json_returns_the_published_checkpoint(tmp_path):
    cps = Checkpoints(tmp_path / "cp")
    saved = cps.save_json(12, {"loss": 0.5})
    assert saved == Checkpoint(12, tmp_path / "cp" / "step-000000012")
    assert saved == cps.latest() and saved.read_json() == {"loss": 0.5}


def test_sweep_on_a_first_attempt_makes_the_folder(tmp_path):
    root = tmp_path / "runs" / "nerf-abc" / "checkpoints"
    cps = Checkpoints(root)
    cps.sweep_partial()
    assert root.is_dir() and cps.latest() is None
