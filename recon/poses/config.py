"""The poses stage's configuration and the SfM settings of one attempt."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

MATCHERS = ("auto", "exhaustive", "sequential", "retrieval")
MAPPERS = ("incremental", "global")


@dataclass(frozen=True)
class PosesConfig:
    """Options of the poses stage (every field has a default; see ``scanbridge poses --help``)."""

    matcher: str = "auto"  # auto picks by capture kind and size (see pairs.choose_matcher)
    mapper: str = "incremental"
    use_device_poses: bool = True  # when every frame has a pose, keep it and only triangulate
    max_image_size: int = 1024  # first attempt; retries go larger
    max_num_features: int = 4096  # first attempt; retries take more
    min_registered_fraction: float = 0.9  # below this, retry with stronger settings
    max_attempts: int = 3
    exhaustive_limit: int = 40  # photo sets up to this size are matched exhaustively
    sequential_overlap: int = 8  # neighbours in capture order matched by sequential matching
    retrieval_neighbors: int = 10  # most similar frames matched by retrieval / loop detection
    num_threads: int = -1  # -1: all cores
    seed: int = 0
    # Thresholds behind the reasons given for unregistered frames.
    min_keypoints: int = 100
    min_inliers: int = 15
    blur_ratio: float = 0.25  # Laplacian variance below this fraction of the median is "blurry"

    def __post_init__(self) -> None:
        if self.matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {', '.join(MATCHERS)}, got {self.matcher!r}")
        if self.mapper not in MAPPERS:
            raise ValueError(f"mapper must be one of {', '.join(MAPPERS)}, got {self.mapper!r}")
        for name in ("max_image_size", "max_num_features", "max_attempts", "exhaustive_limit",
                     "sequential_overlap", "retrieval_neighbors", "min_keypoints", "min_inliers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        if not 0.0 < float(self.min_registered_fraction) <= 1.0:
            raise ValueError(
                f"min_registered_fraction must be in (0, 1], got {self.min_registered_fraction!r}")
        if not 0.0 <= float(self.blur_ratio) < 1.0:
            raise ValueError(f"blur_ratio must be in [0, 1), got {self.blur_ratio!r}")
        threads = self.num_threads
        if isinstance(threads, bool) or not isinstance(threads, int) or threads == 0 or threads < -1:
            raise ValueError(f"num_threads must be -1 (all cores) or positive, got {self.num_threads!r}")


@dataclass(frozen=True)
class AttemptSettings:
    """Everything one SfM attempt varies: features, pairs, verification and mapper thresholds."""

    name: str
    max_image_size: int
    max_num_features: int
    matcher: str  # exhaustive | sequential | retrieval (resolved, never auto)
    sequential_overlap: int
    retrieval_neighbors: int
    loop_detection: bool  # add retrieval pairs to sequential ones
    guided_matching: bool = False
    domain_size_pooling: bool = False
    min_num_inliers: int = 15  # two-view verification
    init_min_num_inliers: int = 100
    init_min_tri_angle: float = 16.0
    abs_pose_min_num_inliers: int = 30
    abs_pose_min_inlier_ratio: float = 0.25
    min_num_matches: int = 15

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def attempt_ladder(config: PosesConfig, matcher: str, num_frames: int, video: bool) -> list[AttemptSettings]:
    """The first attempt and the stronger retries, in order; ``matcher`` is already resolved."""
    first = AttemptSettings(
        name="fast",
        max_image_size=config.max_image_size,
        max_num_features=config.max_num_features,
        matcher=matcher,
        sequential_overlap=config.sequential_overlap,
        retrieval_neighbors=config.retrieval_neighbors,
        loop_detection=video or matcher == "sequential",
    )
    # Retry 1: twice the features, larger images, exhaustive pairs where affordable, lower
    # thresholds for starting the model and for adding images to it.
    stronger_matcher = "exhaustive" if num_frames <= 4 * config.exhaustive_limit else matcher
    second = replace(
        first,
        name="more features, exhaustive, lower thresholds",
        max_image_size=max(config.max_image_size, 1600),
        max_num_features=max(config.max_num_features * 2, 8192),
        matcher=stronger_matcher,
        sequential_overlap=config.sequential_overlap * 2,
        retrieval_neighbors=config.retrieval_neighbors * 2,
        min_num_inliers=12,
        init_min_num_inliers=50,
        init_min_tri_angle=8.0,
        abs_pose_min_num_inliers=15,
        abs_pose_min_inlier_ratio=0.15,
        min_num_matches=12,
    )
    # Retry 2: full-size images, domain-size pooling and guided matching, lowest thresholds.
    third = replace(
        second,
        name="full resolution, guided matching, lowest thresholds",
        max_image_size=max(config.max_image_size, 3200),
        max_num_features=max(config.max_num_features * 4, 16384),
        guided_matching=True,
        domain_size_pooling=True,
        min_num_inliers=10,
        init_min_num_inliers=30,
        init_min_tri_angle=4.0,
        abs_pose_min_num_inliers=10,
        abs_pose_min_inlier_ratio=0.1,
        min_num_matches=10,
    )
    return [first, second, third][: config.max_attempts]
