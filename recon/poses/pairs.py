"""Which image pairs to match: exhaustive, sequential (capture order) and retrieval.

Retrieval needs no downloaded vocabulary tree: a small bag-of-visual-words vocabulary is
trained on the capture's own SIFT descriptors (k-means), each image becomes a TF-IDF vector, and
each image is paired with its most similar images. For video captures the same retrieval adds
loop-closure pairs to the sequential ones.

Guided captures from the phone web page know roughly where around the object each photo was
taken (recon.poses.headings): then each image is also paired with its nearest neighbours by that
direction, which bag-of-words similarity confuses on objects that look alike from several sides.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.errors import ConfigError

Pair = tuple[int, int]  # indices into the ordered list of images, i < j


def choose_matcher(requested: str, num_images: int, source_kind: str | None, exhaustive_limit: int) -> str:
    """Resolve ``auto``: sequential for videos, exhaustive for small photo sets, else retrieval."""
    if requested != "auto":
        return requested
    if source_kind == "video":
        return "sequential"
    return "exhaustive" if num_images <= exhaustive_limit else "retrieval"


def exhaustive_pairs(n: int) -> list[Pair]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def sequential_pairs(n: int, overlap: int) -> list[Pair]:
    """Each image with its ``overlap`` successors, plus successors at quadratic steps 2^k.

    The quadratic steps (as COLMAP's sequential matcher does) bridge short gaps of bad frames.
    """
    pairs: set[Pair] = set()
    for i in range(n):
        for d in range(1, overlap + 1):
            if i + d < n:
                pairs.add((i, i + d))
        d = 2 * overlap
        while i + d < n and d <= 8 * overlap:
            pairs.add((i, i + d))
            d *= 2
    return sorted(pairs)


def _sample_rows(rows: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return rows if len(rows) <= k else rows[rng.choice(len(rows), k, replace=False)]


def bow_vectors(descriptors: list[np.ndarray], num_words: int = 256, seed: int = 0) -> np.ndarray:
    """TF-IDF bag-of-words vectors, one per image, L2-normalised.

    descriptors: list of (M_i, 128) uint8 SIFT descriptors -> (N, num_words) float32
    """
    rng = np.random.default_rng(seed)
    per_image = max(16, 20_000 // max(1, len(descriptors)))
    training = np.concatenate(
        [_sample_rows(d, per_image, rng) for d in descriptors if len(d)], axis=0
    ).astype(np.float32)  # (T, 128)
    num_words = int(min(num_words, max(2, len(training) // 8)))
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, _, centres = cv2.kmeans(training, num_words, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    centres = centres.astype(np.float32)  # (K, 128)
    c_sq = (centres**2).sum(1)  # (K,)
    counts = np.zeros((len(descriptors), num_words), np.float32)  # (N, K)
    for i, d in enumerate(descriptors):
        if not len(d):
            continue
        x = _sample_rows(d, 2000, rng).astype(np.float32)  # (M, 128)
        words = np.argmin(c_sq[None, :] - 2.0 * x @ centres.T, axis=1)  # (M,) nearest centre
        counts[i] = np.bincount(words, minlength=num_words)
    df = (counts > 0).sum(0)  # (K,) images containing each word
    idf = np.log(len(descriptors) / np.maximum(df, 1)).astype(np.float32)
    tfidf = counts / np.maximum(counts.sum(1, keepdims=True), 1.0) * idf[None, :]
    norms = np.linalg.norm(tfidf, axis=1, keepdims=True)
    return tfidf / np.maximum(norms, 1e-12)


def retrieval_pairs(descriptors: list[np.ndarray], neighbors: int, seed: int = 0) -> list[Pair]:
    """Each image with its ``neighbors`` most similar images by bag-of-words similarity."""
    n = len(descriptors)
    if n < 2:
        return []
    vectors = bow_vectors(descriptors, seed=seed)  # (N, K)
    similarity = vectors @ vectors.T  # (N, N)
    np.fill_diagonal(similarity, -np.inf)
    k = min(neighbors, n - 1)
    nearest = np.argsort(-similarity, axis=1)[:, :k]  # (N, k)
    return sorted({(min(i, int(j)), max(i, int(j))) for i in range(n) for j in nearest[i]})


def heading_pairs(directions: np.ndarray, neighbors: int) -> list[Pair]:
    """Each image with a known direction paired with its ``neighbors`` nearest by that direction.

    directions: (N, 3) unit vectors from the object to each camera; a row of NaN is unknown.
    """
    known = np.flatnonzero(np.isfinite(directions).all(axis=1))  # (K,)
    if len(known) < 2:
        return []
    d = directions[known]  # (K, 3)
    cosines = d @ d.T  # (K, K) larger is nearer
    np.fill_diagonal(cosines, -np.inf)
    k = min(neighbors, len(known) - 1)
    nearest = np.argsort(-cosines, axis=1, kind="stable")[:, :k]  # (K, k)
    return sorted({(int(min(known[i], known[j])), int(max(known[i], known[j])))
                   for i in range(len(known)) for j in nearest[i]})


def make_pairs(
    matcher: str, descriptors: list[np.ndarray], overlap: int, neighbors: int, loop_detection: bool,
    seed: int = 0, directions: np.ndarray | None = None,
) -> list[Pair]:
    """The pairs for ``matcher`` over images in capture order (``descriptors`` in that order).

    ``directions`` (N, 3), where known (NaN rows where not), adds each image's nearest neighbours
    by direction around the object to sequential and retrieval pairs.
    """
    n = len(descriptors)
    if matcher == "exhaustive":
        return exhaustive_pairs(n)
    by_heading = set(heading_pairs(directions, neighbors)) if directions is not None else set()
    if matcher == "sequential":
        pairs = set(sequential_pairs(n, overlap)) | by_heading
        if loop_detection:
            pairs |= set(retrieval_pairs(descriptors, max(2, neighbors // 2), seed))
        return sorted(pairs)
    if matcher == "retrieval":
        # Photo sets are usually named in the order taken, so near names are cheap, likely pairs.
        return sorted(set(retrieval_pairs(descriptors, neighbors, seed)) | set(sequential_pairs(n, 2))
                      | by_heading)
    raise ConfigError(f"unknown matcher {matcher!r}", "poses.matcher")
