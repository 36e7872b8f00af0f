"""Restyling a sequence of capture frames: Gen-1's stylize, mask, render and storyboard modes, temporally
consistent.

stylize: img2img from the photo, structure from depth. mask: the same, only on the subject.
render: text-to-image from depth alone (untextured geometry -> a finished look; the photos are unused).
storyboard: rough mock-up frames (sketches, lines, blocky renders) -> a finished look: img2img from the
mock-up, structure from its edges (a canny/lineart ControlNet) instead of depth.

Keyframes (every ``keyframe_every``-th frame, and the last) go through the depth-ControlNet
pipeline in batches; with ``cross_frame`` on, each batch also carries the first keyframe and the
previous one as anchors for CrossFrameAttention, and every frame starts from the same noise (one
seed). The frames between two keyframes are those keyframes' results warped into them with the
capture's depth and poses, blended by distance, and the pixels neither saw are inpainted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from core.errors import ConfigError
from core.progress import CancelToken, Progress
from generation.restyle.attention import FrameLayout, cross_frame_attention
from generation.restyle.frames import RestyleFrame, control_images, edge_images, subject_mask
from generation.restyle.warp import warp_image

MODES = ("stylize", "mask", "render", "storyboard")


@dataclass(frozen=True)
class RestyleSettings:
    prompt: str
    negative_prompt: str = ""
    mode: str = "stylize"
    fidelity: float = 0.7  # structure kept: 0 loose .. 1 strict (ControlNet scale up, depth blur down)
    strength: float = 0.75  # how far from the photo the style may go
    steps: int = 20
    guidance: float = 7.5
    seed: int = 0
    keyframe_every: int = 1
    cross_frame: bool = True
    batch: int = 1  # new keyframes per pipeline call

    def check(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"must be one of {', '.join(MODES)}, got {self.mode!r}", "mode")
        for name, lo, hi in (("fidelity", 0.0, 1.0), ("strength", 0.05, 1.0), ("guidance", 0.0, 30.0)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ConfigError(f"must be a number from {lo} to {hi}, got {value!r}", name)
        for name, hi in (("steps", 200), ("keyframe_every", 100), ("batch", 64)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
                raise ConfigError(f"must be a whole number from 1 to {hi}, got {value!r}", name)
        if self.mode != "render" and self.steps * self.strength < 1:
            raise ConfigError("steps x strength must be at least 1", "steps")

    @property
    def controlnet_scale(self) -> float:
        return 0.4 + 1.2 * self.fidelity

    @property
    def depth_blur(self) -> float:
        """Gaussian sigma of the depth hint as a fraction of its width."""
        return 0.02 * (1.0 - self.fidelity)


@dataclass(frozen=True)
class RestyleResult:
    frames: list[np.ndarray]  # (H, W, 3) uint8 each
    keyframes: list[int]
    inpainted_fraction: float  # of the in-between pixels, those no keyframe saw


def keyframe_indices(frames: Sequence[RestyleFrame], every: int) -> list[int]:
    """Every ``every``-th frame and the last; a frame without depth or pose cannot be warped to, so it
    is a keyframe too, and so are its neighbours."""
    n = len(frames)
    keys = set(range(0, n, every)) | {n - 1}
    for i, f in enumerate(frames):
        if f.view is None:
            keys |= {max(i - 1, 0), i, min(i + 1, n - 1)}
    return sorted(keys)


def _batches(keys: list[int], batch: int, cross_frame: bool) -> list[tuple[list[int], int]]:
    """(frame indices to denoise together, how many leading ones are anchors only) per call."""
    out = []
    for start in range(0, len(keys), batch):
        chunk = keys[start:start + batch]
        anchors: list[int] = []
        if cross_frame and start > 0:
            anchors = [keys[0]] if keys[start - 1] == keys[0] else [keys[0], keys[start - 1]]
        out.append((anchors + chunk, len(anchors)))
    return out


def restyle_frames(pipe: Any, frames: Sequence[RestyleFrame], settings: RestyleSettings, *,
                   reference: np.ndarray | None = None, done: Mapping[int, np.ndarray] | None = None,
                   on_keyframes: Callable[[dict[int, np.ndarray]], None] | None = None,
                   progress: Progress | None = None, cancel: CancelToken | None = None) -> RestyleResult:
    """Restyle ``frames`` with a loaded depth-ControlNet pipeline (img2img for stylize, its inpainting
    twin for mask) and return one image per frame. ``reference``: an (H, W, 3) uint8 image whose look
    the pipeline's IP-Adapter carries over (the pipeline must have one loaded).

    Resuming: ``done`` holds keyframes an earlier attempt finished (by frame index); a pipeline call
    whose new keyframes are all there is skipped, and the rest are made exactly as in one go (the
    same batches, anchors and seed). ``on_keyframes`` hears every keyframe finished so far after
    each call (to checkpoint them)."""
    import torch

    from generation.models.loader import reference_embeddings

    settings.check()
    progress = progress or Progress("restyle")
    cancel = cancel or CancelToken()
    if settings.mode == "storyboard":
        hints = edge_images(frames, settings.fidelity)
    else:
        hints = control_images(frames, settings.depth_blur)
    masks = [subject_mask(f) for f in frames] if settings.mode == "mask" else None
    keys = keyframe_indices(frames, settings.keyframe_every)
    outputs: dict[int, np.ndarray] = {i: image for i, image in (done or {}).items() if i in keys}
    layout = FrameLayout(1)

    def check_cancel(_pipe: Any, _step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        cancel.check()
        return kwargs

    reference_embeds = None
    if reference is not None:
        if getattr(pipe, "image_encoder", None) is None:
            raise ConfigError("a reference image needs an IP-Adapter loaded with the pipeline", "image")
        reference_embeds = reference_embeddings(pipe, Image.fromarray(reference), settings.guidance > 1)
    calls = _batches(keys, settings.batch, settings.cross_frame)
    keys_share = 0.95 if len(keys) < len(frames) else 1.0
    with cross_frame_attention(pipe.unet, layout) if settings.cross_frame else _nothing():
        for n_call, (indices, n_anchors) in enumerate(calls):
            cancel.check()
            if all(i in outputs for i in indices[n_anchors:]):
                continue
            layout.frames = len(indices)
            extra: dict[str, Any] = {}
            if reference_embeds is not None:
                extra["ip_adapter_image_embeds"] = reference_embeds
            if masks is not None:
                extra["mask_image"] = [Image.fromarray((masks[i] * 255).astype(np.uint8)) for i in indices]
            h, w = frames[indices[0]].rgb.shape[:2]
            hint_batch = np.stack([hints[i] for i in indices])
            if settings.mode == "render":  # text-to-image: the depth hint is the pipeline's image
                extra["image"] = hint_batch
            else:
                extra.update(image=np.stack([frames[i].rgb for i in indices]).astype(np.float32) / 255.0,
                             control_image=hint_batch, strength=settings.strength)
            images = pipe(
                prompt=[settings.prompt] * len(indices),
                negative_prompt=[settings.negative_prompt] * len(indices) if settings.guidance > 1 else None,
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance, controlnet_conditioning_scale=settings.controlnet_scale,
                generator=[torch.Generator().manual_seed(settings.seed) for _ in indices],
                height=h, width=w, output_type="np", callback_on_step_end=check_cancel, **extra,
            ).images
            for i, image in zip(indices[n_anchors:], images[n_anchors:], strict=True):
                out = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
                if masks is not None:
                    out = _composite(out, frames[i].rgb, masks[i])
                outputs[i] = out
            if on_keyframes is not None:
                on_keyframes(dict(outputs))
            progress.update(keys_share * (n_call + 1) / len(calls), f"keyframe {len(outputs)}/{len(keys)}")
    holes = total = 0
    for i in range(len(frames)):
        if i in outputs:
            continue
        cancel.check()
        before = max(k for k in keys if k < i)
        after = min(k for k in keys if k > i)
        image, unseen = _between(frames, outputs, i, before, after)
        if masks is not None:
            image = _composite(image, frames[i].rgb, masks[i])
        outputs[i] = image
        holes += int(unseen.sum())
        total += unseen.size
        progress.update(keys_share + (1 - keys_share) * len(outputs) / len(frames), f"frame {i + 1}")
    return RestyleResult([outputs[i] for i in range(len(frames))], keys, holes / total if total else 0.0)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _composite(restyled: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The restyled subject over the untouched photo, with a soft two-pixel edge."""
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)[..., None]
    return np.clip(np.rint(alpha * restyled + (1 - alpha) * original), 0, 255).astype(np.uint8)


def _between(frames: Sequence[RestyleFrame], outputs: dict[int, np.ndarray], i: int, before: int,
             after: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``i`` from the keyframes around it warped into it, blended by distance; inpainted holes."""
    target = frames[i].view
    assert target is not None  # keyframe_indices makes frames without geometry keyframes
    weight_sum = np.zeros(frames[i].rgb.shape[:2], np.float32)
    colour = np.zeros(frames[i].rgb.shape, np.float32)
    for k, weight in ((before, (after - i) / (after - before)), (after, (i - before) / (after - before))):
        source = frames[k].view
        assert source is not None
        warped, valid = warp_image(outputs[k], target, source)
        colour += warped * (weight * valid)[..., None]
        weight_sum += weight * valid
    seen = weight_sum > 1e-6
    # Pixels without depth (sky, or no sensor reading) take the nearer keyframe's pixel in place.
    nearer = before if i - before <= after - i else after
    image = outputs[nearer].copy()
    image[seen] = np.clip(np.rint(colour[seen] / weight_sum[seen, None]), 0, 255).astype(np.uint8)
    unseen = ~seen & (target.depth > 0)
    if unseen.any():
        image = cv2.inpaint(image, unseen.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return image, unseen
