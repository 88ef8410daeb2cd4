"""A volume through a 2-D network along each of its three axes, the three results mixed by SURE.

Part of :class:`~c2s_denoise.estimator.C2SDenoiser` (``multiplanar=True``; docs/method.md section 6,
"Three slicing planes"). A 2-D (or 2.5-D) network trained on the acquired slices denoises the
volume slice by slice along axis 0, then along axis 1 and along axis 2 (for axial slices: axially,
coronally and sagittally). Where voxels are close to isotropic the three results err differently
and their mean is better than any one; where slices are thick or far apart the other two planes
are worse. Which mix to use is read from the volume itself: the weights minimise Stein's unbiased
risk estimate of the mix (:func:`~c2s_denoise.sure_weights.sure_weights`), with each plane's
divergence from one Monte-Carlo probe through a single forward pass. With ``sure_filter``, the planes
that get weight are then mixed by the small linear filter over their neighbourhoods that minimises
SURE (:mod:`c2s_denoise.sure_filter`; :func:`sure_filtered`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..metrics import SURE_PROBE_STEP
from ..sure_filter import apply_sure_filter, fit_sure_filter
from ..sure_weights import sure_weights

__all__ = ["FILTER_RADIUS", "MIN_SLICES", "SLICING_PLANES", "multiplanar_volume", "probed", "sure_filtered"]

#: Orders of the axes of a ``(D, H, W)`` volume that put each axis first: the acquired slices, then the others.
SLICING_PLANES = ((0, 1, 2), (1, 0, 2), (2, 1, 0))
#: Fewest slices a volume needs for the other two planes: across fewer, their slices are thinner than the
#: network's receptive field, and many thin slices cost far more than they can bring (a 3 x 128 x 128 volume
#: took 90 times its one-plane time).
MIN_SLICES = 16
#: Seed of the divergence probe: fixed, so that ``transform`` is deterministic and each item's result is its own.
PROBE_SEED = 0
#: Half-width of the SURE filter's neighbourhood: 3 x 3 x 3 voxels of each plane (5 x 5 x 5 gained 0.05 dB more on 1 mm
#: MNI152 volumes for five times the coefficients, and lost SSIM).
FILTER_RADIUS = 1

Denoise = Callable[[np.ndarray], np.ndarray]


def _along(denoise: Denoise, volume: np.ndarray, order: tuple[int, int, int]) -> np.ndarray:
    """``denoise`` applied to ``volume`` ``(C, D, H, W)`` sliced along ``order[0]``, back in ``volume``'s axes."""
    axes = (0, *(1 + axis for axis in order))
    return denoise(np.ascontiguousarray(volume.transpose(axes))).transpose(np.argsort(axes))


def probed(volume: np.ndarray, channels: slice, sigma: float) -> tuple[np.ndarray, np.ndarray, float]:
    """``(volume with its channels probed, probe, epsilon)``: the seeded probe of SURE's divergence term."""
    probe = np.random.default_rng(PROBE_SEED).standard_normal(volume[channels].shape).astype(volume.dtype)
    epsilon = SURE_PROBE_STEP * sigma
    perturbed = volume.copy()
    perturbed[channels] += epsilon * probe
    return perturbed, probe, epsilon


def sure_filtered(
    estimates: list[np.ndarray],
    singles: list[np.ndarray],
    responses: list[np.ndarray],
    probe: np.ndarray,
    epsilon: float,
    noisy: np.ndarray,
    sigma: float,
) -> np.ndarray:
    """``estimates`` mixed by the SURE filter fitted on their single passes (:mod:`c2s_denoise.sure_filter`).

    ``singles`` and ``responses`` are the single-pass estimates of the input and of the probed
    input (:func:`probed`), ``estimates`` the estimates to filter (self-ensembled, or ``singles``).
    """
    coefficients = fit_sure_filter(np.stack(singles), np.stack(responses), probe, epsilon, noisy, sigma, FILTER_RADIUS)
    return apply_sure_filter(np.stack(estimates), coefficients, FILTER_RADIUS)


def multiplanar_volume(
    denoise: Denoise, denoise_once: Denoise, volume: np.ndarray, channels: slice, sigma: float, sure_filter: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The SURE-weighted mix of ``volume`` denoised along each of its three axes.

    The weights are those of the single-pass estimates (``denoise_once``: their residuals and
    divergences); ``denoise`` then runs only along the planes that get weight, so a volume whose
    weights go to its acquired slices costs little more than those. With ``sure_filter``, the
    planes that get weight are mixed by the SURE filter over their neighbourhoods instead
    (:func:`sure_filtered`), fitted on the same single passes.

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
    sure_filter : bool, default=True
        Mix the planes with weight by the SURE filter rather than by their convex weights.

    Returns
    -------
    mix : ndarray of shape (len(channels), D, H, W)
    weights : ndarray of shape (3,)
        The convex weight of each plane of :data:`SLICING_PLANES`.
    """
    noisy = volume[channels]
    perturbed, probe, epsilon = probed(volume, channels, sigma)
    singles, responses, divergences = [], [], []
    for order in SLICING_PLANES:
        singles.append(_along(denoise_once, volume, order))
        responses.append(_along(denoise_once, perturbed, order))
        change = (responses[-1] - singles[-1]).astype(np.float64)
        divergences.append(float(np.vdot(probe.astype(np.float64), change)) / epsilon / probe.size)
    residuals = np.stack([(single - noisy).ravel() for single in singles])
    weights = sure_weights(residuals, np.array(divergences), sigma)
    planes = [plane for plane in range(len(SLICING_PLANES)) if weights[plane] > 0]
    estimates = [
        singles[plane] if denoise is denoise_once else _along(denoise, volume, SLICING_PLANES[plane])
        for plane in planes
    ]
    if sure_filter:
        mix = sure_filtered(
            estimates, [singles[p] for p in planes], [responses[p] for p in planes], probe, epsilon, noisy, sigma
        )
    else:
        mix = sum(weights[plane] * estimate for plane, estimate in zip(planes, estimates))
    return np.asarray(mix, dtype=singles[0].dtype), weights
