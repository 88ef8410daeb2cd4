"""A volume through a 2-D network along each of its three axes, the three results mixed by SURE.

Part of :class:`~c2s_denoise.estimator.C2SDenoiser` (``multiplanar=True``; docs/method.md section 6,
"Three slicing planes"). A 2-D (or 2.5-D) network trained on the acquired slices denoises the
volume slice by slice along axis 0, then along axis 1 and along axis 2 (for axial slices: axially,
coronally and sagittally). Where voxels are close to isotropic the three results err differently
and their mean is better than any one; where slices are thick or far apart the other two planes
are worse. Which mix to use is read from the volume itself: the weights minimise Stein's unbiased
risk estimate of the mix (:func:`~c2s_denoise.sure_weights.sure_weights`), with each plane's
divergence from one Monte-Carlo probe through a single forward pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..metrics import SURE_PROBE_STEP
from ..sure_weights import sure_weights

__all__ = ["MIN_SLICES", "SLICING_PLANES", "multiplanar_volume"]

#: Orders of the axes of a ``(D, H, W)`` volume that put each axis first: the acquired slices, then the others.
SLICING_PLANES = ((0, 1, 2), (1, 0, 2), (2, 1, 0))
#: Fewest slices a volume needs for the other two planes: across fewer, their slices are thinner than the
#: network's receptive field, and many thin slices cost far more than they can bring (a 3 x 128 x 128 volume
#: took 90 times its one-plane time).
MIN_SLICES = 16
#: Seed of the divergence probe: fixed, so that ``transform`` is deterministic and each item's result is its own.
PROBE_SEED = 0

Denoise = Callable[[np.ndarray], np.ndarray]


def _along(denoise: Denoise, volume: np.ndarray, order: tuple[int, int, int]) -> np.ndarray:
    """``denoise`` applied to ``volume`` ``(C, D, H, W)`` sliced along ``order[0]``, back in ``volume``'s axes."""
    axes = (0, *(1 + axis for axis in order))
    return denoise(np.ascontiguousarray(volume.transpose(axes))).transpose(np.argsort(axes))


def multiplanar_volume(
    denoise: Denoise, denoise_once: Denoise, volume: np.ndarray, channels: slice, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """The SURE-weighted mix of ``volume`` denoised along each of its three axes.

    The weights are those of the single-pass estimates (``denoise_once``: their residuals and
    divergences); ``denoise`` then runs only along the planes that get weight, so a volume whose
    weights go to its acquired slices costs little more than those.

    Parameters
    ----------
    denoise : callable
        ``(C, D, H, W) -> (len(channels), D, H, W)``: the network's estimate of the denoised
        channels (self-ensemble included), slice by slice along the first spatial axis, in the
        units of ``volume``.
    denoise_once : callable
        The same in one forward pass (or ``denoise`` itself): it gives the weights.
    volume : ndarray of shape (C, D, H, W)
        The item as the network sees it (stabilised, for magnitude noise), noise of level
        ``sigma`` in ``volume[channels]``; not modified.
    channels : slice
        The denoised channels of ``volume`` (one, or the real and imaginary parts).
    sigma : float
        Noise level per real component of ``volume[channels]``, > 0.

    Returns
    -------
    mix : ndarray of shape (len(channels), D, H, W)
    weights : ndarray of shape (3,)
        The weight of each plane of :data:`SLICING_PLANES`.
    """
    noisy = volume[channels]
    probe = np.random.default_rng(PROBE_SEED).standard_normal(noisy.shape).astype(volume.dtype)
    epsilon = SURE_PROBE_STEP * sigma
    perturbed = volume.copy()
    perturbed[channels] += epsilon * probe
    singles, divergences = [], []
    for order in SLICING_PLANES:
        singles.append(_along(denoise_once, volume, order))
        response = _along(denoise_once, perturbed, order) - singles[-1]
        divergences.append(float(np.vdot(probe.astype(np.float64), response.astype(np.float64))) / epsilon / probe.size)
    residuals = np.stack([(single - noisy).ravel() for single in singles])
    weights = sure_weights(residuals, np.array(divergences), sigma)
    estimates = {
        plane: single if denoise is denoise_once else _along(denoise, volume, SLICING_PLANES[plane])
        for plane, single in enumerate(singles)
        if weights[plane] > 0
    }
    mix = sum(weights[plane] * estimate for plane, estimate in estimates.items())
    return np.asarray(mix, dtype=singles[0].dtype), weights
