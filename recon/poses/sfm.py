"""Structure from motion with automatic retries: extract, match, map; again with stronger
settings while too few frames register; keep the attempt whose main model is largest.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycolmap

from core.capture import Camera
from core.progress import CancelToken, Progress
from recon.poses.config import AttemptSettings, PosesConfig, attempt_ladder
from recon.poses.features import ImageEntry, extract, match
from recon.poses.mapping import extend_model, map_global, map_incremental


@dataclass
class Attempt:
    settings: AttemptSettings
    work_dir: Path
    models: list[pycolmap.Reconstruction] = field(default_factory=list)  # largest first
    num_pairs: int = 0
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)  # extract, match, map
    extended: int = 0  # frames the relaxed second mapping pass added to the main model

    @property
    def database(self) -> Path:
        return self.work_dir / "database.db"

    @property
    def registered(self) -> int:
        return self.models[0].num_reg_images() if self.models else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.settings.name, "settings": self.settings.to_json(), "pairs": self.num_pairs,
            "registered": self.registered, "models": [m.num_reg_images() for m in self.models],
            "extended": self.extended,
            "seconds": round(self.seconds, 2),
            "step_seconds": {k: round(v, 2) for k, v in self.step_seconds.items()},
        }


def registered_names(model: pycolmap.Reconstruction) -> set[str]:
    return {model.image(i).name for i in model.reg_image_ids()}


def run_attempt(
    capture_root: Path,
    entries: Sequence[ImageEntry],
    cameras: Sequence[Camera],
    settings: AttemptSettings,
    config: PosesConfig,
    work_dir: Path,
    *,
    prior_focal: bool,
    progress: Progress,
    cancel: CancelToken,
) -> Attempt:
    started = time.monotonic()
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    attempt = Attempt(settings, work_dir)
    progress.log(f"attempt '{settings.name}': images up to {settings.max_image_size} px, "
                 f"{settings.max_num_features} features, {settings.matcher} matching")
    extract_start = time.monotonic()
    extract(attempt.database, capture_root, entries, cameras, settings, prior_focal=prior_focal,
            for_sfm=True, num_threads=config.num_threads, progress=progress.sub(0.0, 0.3), cancel=cancel)
    match_start = time.monotonic()
    pairs = match(attempt.database, entries, settings, num_threads=config.num_threads, seed=config.seed,
                  work_dir=work_dir, progress=progress.sub(0.3, 0.6), cancel=cancel)
    attempt.num_pairs = len(pairs)
    match_end = time.monotonic()
    attempt.step_seconds["extract"] = match_start - extract_start
    attempt.step_seconds["match"] = match_end - match_start
    map_progress = progress.sub(0.6, 1.0)
    if config.mapper == "global":
        attempt.models = map_global(attempt.database, capture_root, work_dir / "models",
                                    num_threads=config.num_threads, seed=config.seed,
                                    progress=map_progress, cancel=cancel)
    else:
        attempt.models = map_incremental(attempt.database, capture_root, work_dir / "models", settings,
                                         len(entries), num_threads=config.num_threads, seed=config.seed,
                                         progress=map_progress, cancel=cancel)
    if config.mapper == "incremental" and attempt.models and attempt.registered < len(entries):
        before = attempt.registered
        grown = extend_model(attempt.database, capture_root, attempt.models[0], work_dir / "extend", settings,
                             num_threads=config.num_threads, seed=config.seed, cancel=cancel)
        if grown is not None:
            attempt.models[0] = grown
            attempt.extended = attempt.registered - before
            progress.log(f"attempt '{settings.name}': {attempt.extended} more frame(s) registered with "
                         "relaxed registration thresholds")
    attempt.seconds = time.monotonic() - started
    attempt.step_seconds["map"] = time.monotonic() - match_end
    progress.log(f"attempt '{settings.name}': {attempt.registered}/{len(entries)} frames registered "
                 f"in the main model ({len(attempt.models)} model(s), {attempt.num_pairs} pairs, "
                 f"{attempt.seconds:.1f} s)")
    return attempt


def run_sfm(
    capture_root: Path,
    entries: Sequence[ImageEntry],
    cameras: Sequence[Camera],
    config: PosesConfig,
    matcher: str,
    *,
    video: bool,
    prior_focal: bool,
    work_dir: Path,
    progress: Progress,
    cancel: CancelToken,
) -> tuple[Attempt, list[Attempt]]:
    """Run attempts until the main model holds ``min_registered_fraction`` of the frames.

    Returns the best attempt and all attempts in order. Only the best attempt's folder is kept.
    """
    ladder = attempt_ladder(config, matcher, len(entries), video)
    attempts: list[Attempt] = []
    done = 0.0
    for k, settings in enumerate(ladder):
        share = 0.85 if k == 0 else 1.0 / (len(ladder) - k)
        span = progress.sub(done, done + (1.0 - done) * share)
        attempts.append(run_attempt(capture_root, entries, cameras, settings, config,
                                    work_dir / f"attempt-{k + 1}", prior_focal=prior_focal,
                                    progress=span, cancel=cancel))
        done += (1.0 - done) * share
        best = max(attempts, key=lambda a: a.registered)
        if best.registered >= config.min_registered_fraction * len(entries):
            break
        if k + 1 < len(ladder):
            progress.warning(f"only {best.registered}/{len(entries)} frames registered; "
                             f"retrying with '{ladder[k + 1].name}'")
    best = max(attempts, key=lambda a: a.registered)
    for a in attempts:
        if a is not best:
            shutil.rmtree(a.work_dir, ignore_errors=True)
    return best, attempts
