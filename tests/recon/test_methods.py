"""The method registry (recon.methods): which methods apply to a capture and why not, and what
each expands into. Small hand-made captures: a few 8x6 depth maps at a known distance."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.capture import Camera, CaptureFolder, Frame, Manifest, utc_now
from core.errors import ConfigError
from core.stages import load_stage, make_config, run_hash
from core.submit import method_names, registered_stages
from recon.methods import PlanRequest, availability, capture_facts, load_method, methods, plan

CAMERA = Camera(8, 6, 6.0, 6.0, 4.0, 3.0)
POSE = tuple(tuple(float(i == j) for j in range(4)) for i in range(4))


def make_capture(root, *, depth_mm: int | None, photos: bool, metric: bool = True, frames: int = 3):
    capture = CaptureFolder(root)
    capture.root.mkdir(parents=True)
    made = []
    for i in range(frames):
        depth = image = None
        if depth_mm is not None:
            capture.depth_dir.mkdir(exist_ok=True)
            depth = f"depth/{i}.png"
            cv2.imwrite(str(capture.path(depth)), np.full((6, 8), depth_mm, np.uint16))
        if photos:
            capture.images_dir.mkdir(exist_ok=True)
            image = f"images/{i}.png"
            cv2.imwrite(str(capture.path(image)), np.full((6, 8, 3), 100 + i, np.uint8))
        made.append(Frame(id=str(i), camera=CAMERA, image=image, depth=depth,
                          pose=POSE if depth_mm is not None else None))
    capture.save(Manifest(id=root.name, name="Desk lamp", created=utc_now(), mode="rgbd", frames=tuple(made),
                          scale="metric" if metric else "unscaled"))
    return capture


def stages(chosen):
    return [s.stage for s in chosen.steps]


def test_auto_picks_by_the_frames_and_fusion_picks_its_preset_by_distance(tmp_path):
    near = make_capture(tmp_path / "near", depth_mm=600, photos=True)
    far = make_capture(tmp_path / "far", depth_mm=3200, photos=False)
    photos = make_capture(tmp_path / "photos", depth_mm=None, photos=True)
    assert capture_facts(near).median_depth_m == pytest.approx(0.6)

    chosen = plan(near, "auto", "preview")
    assert (chosen.requested, chosen.method) == ("auto", "fusion")
    assert stages(chosen) == ["fusion", "mesh", "export", "publish"]
    assert chosen.steps[0].config["preset"] == "object"
    assert chosen.steps[1].config["detail"] == "preview"
    assert chosen.steps[2].config["name"] == "Desk lamp" and chosen.steps[2].config["detail"] == "preview"
    assert plan(far).steps[0].config["preset"] == "room"
    assert plan(photos).method == "mvs" and stages(plan(photos)) == ["poses", "mvs", "mesh", "export",
                                                                      "publish"]
    assert stages(plan(near, "poses")) == ["poses"]  # no model, so nothing to publish


def test_methods_say_why_they_do_not_apply(tmp_path):
    photos = make_capture(tmp_path / "photos", depth_mm=None, photos=True)
    depth_only = make_capture(tmp_path / "depth", depth_mm=800, photos=False)
    unscaled = make_capture(tmp_path / "unscaled", depth_mm=800, photos=True, metric=False)
    empty = make_capture(tmp_path / "empty", depth_mm=None, photos=False, frames=0)

    why = {m.name: reason for m, reason in availability(photos)}
    assert why["mvs"] is None and why["auto"] is None and "depth map" in why["fusion"]
    assert "photos" in dict((m.name, r) for m, r in availability(depth_only))["mvs"]
    assert "metres" in dict((m.name, r) for m, r in availability(unscaled))["fusion"]
    # create makes a model from a prompt, so it applies to a capture without frames (a generated one)
    assert all("no frames" in r for m, r in availability(empty) if m.name != "create")
    with pytest.raises(ConfigError, match="depth map") as refused:
        plan(photos, "fusion")
    assert refused.value.where == "method"
    with pytest.raises(ConfigError, match="no frames"):
        plan(empty, "auto")


def test_names_options_and_overrides_are_checked(tmp_path):
    near = make_capture(tmp_path / "near", depth_mm=600, photos=True)
    with pytest.raises(ConfigError, match="known: auto, ") as unknown:
        plan(near, "no-such-method")
    assert unknown.value.where == "method"
    with pytest.raises(ConfigError) as no_stage:
        plan(near, "fusion", overrides={"mvs": {"max_views": 3}})
    assert no_stage.value.where == "overrides.mvs"
    with pytest.raises(ConfigError) as bad_option:
        plan(near, "fusion", overrides={"mesh": {"texture_sise": 512}})
    assert bad_option.value.where == "mesh.texture_sise"
    chosen = plan(near, "fusion", overrides={"mesh": {"texture_size": 512}})
    assert chosen.steps[1].config["texture_size"] == 512


def test_planned_configs_are_complete_and_hash_like_the_methods_own(tmp_path):
    """A planned step's config holds every option of its stage, and its run hash is the one of
    the partial config the method wrote (so filling in defaults changes no run folder)."""
    near = make_capture(tmp_path / "near", depth_mm=600, photos=True)
    facts = capture_facts(near)
    for name in ("fusion", "mvs"):
        partial = load_method(name).steps(facts, PlanRequest("reduced"))
        full = plan(near, name, "reduced").steps
        assert [s.stage for s in full] == [s.stage for s in partial] + ["publish"]
        for own, planned in zip(partial, full, strict=False):
            spec = load_stage(own.stage)
            assert set(planned.config) == set(spec.config_cls.__dataclass_fields__)
            assert run_hash(spec, make_config(spec, planned.config), {}) == \
                run_hash(spec, make_config(spec, own.config), {})


def test_the_registry_is_what_entry_points_name(tmp_path):
    names = method_names()
    assert names[0] == "auto" and {"fusion", "mvs", "poses"} <= set(names)
    assert [m.name for m in methods()] == names
    for method in methods():
        assert method.description and method.needs.gpu in ("none", "optional", "required")
        assert load_method(method.name) is method
    assert {"plan", "publish"} <= registered_stages()
