"""Seed-fixed simulated noise of the benchmarks (Gaussian or Rician).

``add_noise`` adds, with a fixed seed, either additive Gaussian noise ``y = x + sigma n`` or
Rician (magnitude) noise ``y = |x + sigma (n1 + i n2)|`` with ``sigma`` per real/imaginary
channel, at the levels of ``docs/method.md`` section 7, ``SIGMAS = (13/255, 25/255)``, for images
in [0, 1]. For a given seed the Gaussian noise equals the real-channel noise of the Rician
draw, so the two variants of a benchmark share their noise realisation. Every element gets
its own draw, so the channels of a multi-contrast array ``(n, n_contrasts, H, W)`` and the
slices of a slab have independent noise; ``add_noise(x, ...)[:, c]`` is not
``add_noise(x[:, c], ...)`` (a different part of the stream), so compare single- and
multi-contrast models on one draw over the whole array.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["NOISE_KINDS", "SIGMAS", "TEST_NOISE_SEED", "TRAIN_NOISE_SEED", "add_noise"]

#: Noise standard deviations of the simulated benchmarks (images in [0, 1]).
SIGMAS: tuple[float, float] = (13.0 / 255.0, 25.0 / 255.0)
#: Noise models accepted by :func:`add_noise`.
NOISE_KINDS: tuple[str, str] = ("gaussian", "rician")
#: Conventional seeds of the noise added to training and to test images.
TRAIN_NOISE_SEED: int = 1
TEST_NOISE_SEED: int = 2


def add_noise(
    clean: np.ndarray,
    sigma: float,
    kind: Literal["gaussian", "rician"] = "gaussian",
    *,
    seed: int,
) -> np.ndarray:
    """Return a noisy copy of ``clean`` with seed-fixed Gaussian or Rician noise.

    Parameters
    ----------
    clean : ndarray
        Clean image(s) of any shape, e.g. (n, H, W) in [0, 1].
    sigma : float
        Noise standard deviation (per real/imaginary channel for Rician noise).
    kind : {"gaussian", "rician"}, default="gaussian"
        ``"gaussian"``: ``clean + sigma * n1``. ``"rician"``: the magnitude of complex Gaussian
        noise, ``sqrt((clean + sigma * n1)**2 + (sigma * n2)**2)``; its mean exceeds ``clean``
        (by ``sigma * sqrt(pi / 2)`` where ``clean`` is 0).
    seed : int
        Seed of ``numpy.random.default_rng``; ``n1`` is drawn first, so both kinds share it.

    Returns
    -------
    ndarray, float64, same shape as ``clean``
        Not clipped (Gaussian values can leave [0, 1]).
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    clean = np.asarray(clean, dtype=np.float64)
    rng = np.random.default_rng(seed)
    real = clean + sigma * rng.standard_normal(clean.shape)
    if kind == "gaussian":
        return real
    return np.hypot(real, sigma * rng.standard_normal(clean.shape))
