"""A procedural, brain-like MRI phantom (NumPy only, deterministic).

The phantom imitates an axial T1-weighted head slice: bright scalp, dark
skull, cerebrospinal fluid (CSF) around a folded cortex of grey matter, white
matter, deep grey nuclei, dark CSF ventricles, thin sulci and a few small
bright lesions, under a gentle coil-shading bias field. Intensities are in
[0, 1] with a zero background, so noisy versions behave like magnitude MRI.
It needs no download and no data file, which makes it suitable for demos and
tests.
"""

from __future__ import annotations

import numpy as np

__all__ = ["brain_phantom"]

# Tissue intensities (T1-like contrast).
_SCALP, _SKULL, _CSF, _GREY, _WHITE, _NUCLEI, _LESION = 0.78, 0.08, 0.22, 0.55, 0.82, 0.63, 0.97


def _rotated(x: np.ndarray, y: np.ndarray, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = x - cx, y - cy
    return c * dx + s * dy, -s * dx + c * dy


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float, angle: float = 0.0) -> np.ndarray:
    if a <= 0 or b <= 0:
        return np.zeros(x.shape, dtype=bool)
    u, v = _rotated(x, y, cx, cy, angle)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _features(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random but seed-determined details shared by all slices of a volume."""
    n_lesions = 7
    return {
        "phases": rng.uniform(0, 2 * np.pi, size=4),
        "sulci": np.sort(rng.uniform(0, 2 * np.pi, size=16)),
        "lesion_angle": rng.uniform(0, 2 * np.pi, size=n_lesions),
        "lesion_radius": rng.uniform(0.35, 0.6, size=n_lesions),
        "lesion_size": rng.uniform(0.012, 0.04, size=n_lesions),
        # The first three lesions sit on the central slice, so every 2-D phantom shows some.
        "lesion_z": np.concatenate([np.zeros(3), rng.uniform(-0.35, 0.35, size=n_lesions - 3)]),
    }


def _slice(x: np.ndarray, y: np.ndarray, z: float, feat: dict[str, np.ndarray]) -> np.ndarray:
    """One axial slice at height ``z`` in [-1, 1] on the grid ``(x, y)``."""
    out = np.zeros(x.shape, dtype=np.float64)
    # Normalised head radius: 1 on the scalp surface.
    zz = (z / 0.95) ** 2
    if zz >= 1.0:
        return out
    hx, hy = x / 0.72, y / 0.92
    r = np.sqrt(hx**2 + hy**2 + zz)
    theta = np.arctan2(hy, hx)
    p = feat["phases"]
    out[r <= 1.0] = _SCALP
    out[r <= 0.95] = _SKULL
    out[r <= 0.90] = _CSF
    cortex = 0.87 * (1 + 0.025 * np.cos(14 * theta + p[0]) + 0.01 * np.cos(23 * theta + p[1]))
    out[r <= cortex] = _GREY
    white = 0.70 * (1 + 0.06 * np.cos(9 * theta + p[2]) + 0.03 * np.cos(17 * theta + p[3]))
    out[r <= white] = _WHITE
    # Sulci: thin CSF clefts running in from the cortical surface.
    for angle in feat["sulci"]:
        gap = np.abs(np.angle(np.exp(1j * (theta - angle))))
        out[(gap * r < 0.012) & (r > 0.66) & (r <= cortex)] = _CSF
    # Deep structures shrink towards the top and bottom of the head.
    depth = np.sqrt(max(0.0, 1.0 - (z / 0.6) ** 2))
    for side in (-1.0, 1.0):
        out[_ellipse(x, y, side * 0.2, 0.08, 0.09 * depth, 0.13 * depth, side * 0.3)] = _NUCLEI
        out[_ellipse(x, y, side * 0.085, -0.08, 0.055 * depth, 0.24 * depth, -side * 0.25)] = _CSF
    for angle, radius, size, lz in zip(
        feat["lesion_angle"], feat["lesion_radius"], feat["lesion_size"], feat["lesion_z"], strict=True
    ):
        half = size**2 * (1.0 - ((z - lz) / 0.12) ** 2)  # squared radius of the lesion's cross-section
        if half > 0:
            cx, cy = 0.72 * radius * np.cos(angle), 0.92 * radius * np.sin(angle)
            out[(x - cx) ** 2 + (y - cy) ** 2 <= half] = _LESION
    # Smooth receive-coil shading.
    return out * (1.0 + 0.08 * x - 0.05 * y)


def brain_phantom(shape: tuple[int, ...] = (128, 128), *, seed: int = 0, supersample: int = 2) -> np.ndarray:
    """Make a brain-like phantom image or volume.

    Parameters
    ----------
    shape : tuple of int, default (128, 128)
        ``(H, W)`` for one axial slice through the middle of the head, or
        ``(D, H, W)`` for ``D`` axial slices through a central slab.
    seed : int, default 0
        Seed of the small random details (sulci, lesions, folding phases);
        the same seed always gives the same phantom.
    supersample : int, default 2
        Each pixel is the mean of ``supersample**2`` sub-pixel samples, which
        smooths the tissue boundaries like a real acquisition's partial volume.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape`` with values in [0, 1] (background 0).

    Examples
    --------
    >>> img = brain_phantom((64, 64))
    >>> img.shape, float(img.min()) >= 0.0, float(img.max()) <= 1.0
    ((64, 64), True, True)
    """
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"shape must be (H, W) or (D, H, W) with positive sizes, got {shape}")
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    feat = _features(np.random.default_rng(seed))
    height, width = shape[-2:]
    s = int(supersample)
    # Sub-pixel centres on [-1, 1] in both directions (square pixels if H == W).
    ys = (np.arange(height * s) + 0.5) / (height * s) * 2 - 1
    xs = (np.arange(width * s) + 0.5) / (width * s) * 2 - 1
    x, y = np.meshgrid(xs, ys)
    depth = 1 if len(shape) == 2 else shape[0]
    zs = [0.0] if depth == 1 else list(np.linspace(-0.45, 0.45, depth))
    slices = []
    for z in zs:
        fine = _slice(x, y, float(z), feat)
        slices.append(fine.reshape(height, s, width, s).mean(axis=(1, 3)))
    volume = np.clip(np.stack(slices), 0.0, 1.0)
    return volume[0] if len(shape) == 2 else volume
