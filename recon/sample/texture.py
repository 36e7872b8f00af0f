"""Procedural solid textures for the synthetic scene: hashed value noise, soft checkers, palettes.

A solid texture is a function of the 3D surface point, so a surface looks the same from every
view (the scene is static) and never repeats across the object, which keeps SIFT matches unique.
Everything is smooth (no hard edges), so one ray per pixel does not alias.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Large odd constants for the lattice hash (any such constants work; these mix well).
_PRIMES = (np.uint32(0x8DA6B343), np.uint32(0xD8163841), np.uint32(0xCB1AB31F))
_MIX = np.uint32(0x5BD1E995)


def _mix(h: np.ndarray) -> np.ndarray:
    """Scramble uint32 keys into [0, 1) floats. (N,) uint32 -> (N,) float32"""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(15))
        h *= _MIX
        h ^= h >> np.uint32(13)
        h *= _MIX
        h ^= h >> np.uint32(16)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def lattice_hash(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """A pseudo-random value in [0, 1) per integer lattice point.

    ix, iy, iz: (N,) int64 -> (N,) float32
    """
    with np.errstate(over="ignore"):
        h = (ix.astype(np.uint32) * _PRIMES[0]) ^ (iy.astype(np.uint32) * _PRIMES[1])
        h ^= iz.astype(np.uint32) * _PRIMES[2]
        h ^= np.uint32(seed * 0x9E3779B1 & 0xFFFFFFFF)
    return _mix(h)


def value_noise(points: np.ndarray, frequency: float, seed: int) -> np.ndarray:
    """Smooth 3D value noise in [0, 1] with about ``frequency`` features per metre.

    points: (N, 3) metres -> (N,) float32
    """
    p = points.astype(np.float32, copy=False) * np.float32(frequency)
    cell = np.floor(p)
    f = p - cell  # (N, 3) position inside the cell
    w = f * f * (np.float32(3.0) - np.float32(2.0) * f)  # smoothstep weights, (N, 3)
    c = cell.astype(np.int32).view(np.uint32)  # wraps negatives; only equality matters
    salt = np.uint32(seed * 0x9E3779B1 & 0xFFFFFFFF)
    with np.errstate(over="ignore"):
        # Per-axis key parts of the cell's two corners, combined by xor below: (2, N) each.
        kx = np.stack([c[:, 0], c[:, 0] + np.uint32(1)]) * _PRIMES[0] ^ salt
        ky = np.stack([c[:, 1], c[:, 1] + np.uint32(1)]) * _PRIMES[1]
        kz = np.stack([c[:, 2], c[:, 2] + np.uint32(1)]) * _PRIMES[2]
    wx, wy, wz = w[:, 0], w[:, 1], w[:, 2]
    layers = []
    for dz in (0, 1):
        rows = []
        for dy in (0, 1):
            kyz = ky[dy] ^ kz[dz]
            v0, v1 = _mix(kx[0] ^ kyz), _mix(kx[1] ^ kyz)
            rows.append(v0 + wx * (v1 - v0))
        layers.append(rows[0] + wy * (rows[1] - rows[0]))
    return layers[0] + wz * (layers[1] - layers[0])


def fbm(points: np.ndarray, frequency: float, octaves: int, seed: int) -> np.ndarray:
    """Fractal sum of value noise (each octave twice the frequency, half the weight), in [0, 1].

    points: (N, 3) -> (N,) float32
    """
    points = points.astype(np.float32, copy=False)
    total = np.zeros(len(points), np.float32)
    weight, norm = 1.0, 0.0
    for k in range(octaves):
        total += weight * value_noise(points, frequency * 2.0**k, seed + 101 * k)
        norm += weight
        weight *= 0.5
    return total / norm


def soft_checker(points: np.ndarray, cell_m: float, sharpness: float = 6.0) -> np.ndarray:
    """A 3D checkerboard of ``cell_m`` cells with smooth edges, in [0, 1].

    points: (N, 3) -> (N,) float32
    """
    s = np.sin(points * (np.pi / cell_m)).prod(axis=1)  # (N,)
    return (0.5 + 0.5 * np.tanh(sharpness * s)).astype(np.float32)


def cosine_palette(t: np.ndarray, phase: tuple[float, float, float]) -> np.ndarray:
    """Map t in [0, 1] to saturated colours along a cosine curve per channel.

    t: (N,) -> (N, 3) float32 in [0, 1]
    """
    ph = np.asarray(phase, np.float32)
    return (0.5 + 0.45 * np.cos(2.0 * np.pi * (t[:, None] * 1.3 + ph[None, :]))).astype(np.float32)


def _contrast(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def object_albedo(points: np.ndarray, seed: int) -> np.ndarray:
    """The object's colour: bold colour patches, fine contrasty blobs (a few mm to 1 cm, which
    SIFT finds at 240 to 640 pixel wide views) and a soft 3 cm checker.

    points: (N, 3) metres -> (N, 3) float32 in [0, 1]
    """
    hue = fbm(points, 12.0, 2, seed + 1)
    detail = _contrast(fbm(points, 120.0, 3, seed + 2), 0.4, 0.6)
    checker = soft_checker(points + 0.013, 0.03)
    colour = cosine_palette(hue, (0.0, 0.33, 0.67))
    return colour * (0.15 + 0.85 * detail)[:, None] * (0.6 + 0.4 * checker)[:, None]


def ground_albedo(points: np.ndarray, seed: int) -> np.ndarray:
    """The ground disc's colour: earthy tones, blotches and a soft 5 cm checker.

    points: (N, 3) metres -> (N, 3) float32 in [0, 1]
    """
    tone = fbm(points, 6.0, 2, seed + 11)
    detail = _contrast(fbm(points, 40.0, 3, seed + 12), 0.35, 0.65)
    checker = soft_checker(points + 0.007, 0.05)
    base = np.stack([0.55 + 0.3 * tone, 0.45 + 0.2 * tone, 0.3 + 0.15 * (1.0 - tone)], axis=1)
    return base * (0.35 + 0.65 * detail)[:, None] * (0.75 + 0.25 * checker)[:, None]


@dataclass(frozen=True)
class PlaneTexture:
    """A solid texture baked on the plane y = 0 over a square grid, read back bilinearly.

    Reading is several times cheaper than evaluating the noise, so a ground seen in many views
    is evaluated once. Texel (i, j) holds the colour at x = -half + j * texel, z = -half + i * texel.
    """

    texels: np.ndarray  # (N, N, 3) float32
    half_extent_m: float
    texel_m: float

    @classmethod
    def bake(
        cls, albedo: Callable[[np.ndarray], np.ndarray], half_extent_m: float, texel_m: float
    ) -> PlaneTexture:
        """Evaluate ``albedo`` ((M, 3) points -> (M, 3) colours) on the grid."""
        n = int(np.ceil(2.0 * half_extent_m / texel_m)) + 2
        coords = -half_extent_m + texel_m * np.arange(n)
        zz, xx = np.meshgrid(coords, coords, indexing="ij")  # (N, N)
        pts = np.stack([xx.ravel(), np.zeros(n * n), zz.ravel()], axis=1)
        return cls(albedo(pts).reshape(n, n, 3).astype(np.float32), half_extent_m, texel_m)

    def lookup(self, points: np.ndarray) -> np.ndarray:
        """Bilinear colour at the (x, z) of ``points``. (M, 3) -> (M, 3) float32"""
        n = self.texels.shape[0]
        u = np.clip((points[:, 0] + self.half_extent_m) / self.texel_m, 0.0, n - 1.001)  # column
        v = np.clip((points[:, 2] + self.half_extent_m) / self.texel_m, 0.0, n - 1.001)  # row
        j, i = u.astype(np.int64), v.astype(np.int64)
        fu, fv = (u - j).astype(np.float32)[:, None], (v - i).astype(np.float32)[:, None]
        t = self.texels
        top = t[i, j] + fu * (t[i, j + 1] - t[i, j])
        bottom = t[i + 1, j] + fu * (t[i + 1, j + 1] - t[i + 1, j])
        return top + fv * (bottom - top)
