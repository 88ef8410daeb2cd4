"""How the estimator moves magnitude images to the network's (Gaussian) domain and back.

For ``noise_model_`` "rician"/"ncchi" and ``magnitude_correction="vst"`` the network trains and
denoises the variance-stabilised magnitude (:mod:`c2s_denoise.physics.variance_stabilisation`), whose noise
is close to Gaussian of level ``sigma`` everywhere, air included, and its output goes back through
the exact unbiased inverse; with ``"mean"`` it trains on the magnitude itself and its output's
mean is inverted (:func:`c2s_denoise.physics.magnitude.unbias_magnitude`). Gaussian noise passes through.
"""

from __future__ import annotations

import math

import numpy as np

from ..physics.magnitude import unbias_magnitude
from ..physics.variance_stabilisation import stabilise, stabilised_mean, unstabilise_denoised
from ._noise_levels import coils

__all__ = ["MAGNITUDE_CORRECTIONS", "air_factor", "from_network", "to_network"]

#: ``magnitude_correction`` values: the stabilised path and the first-moment inversion.
MAGNITUDE_CORRECTIONS = ("vst", "mean")


def _stabilised(noise_model: str, correction: str) -> bool:
    return noise_model != "gaussian" and correction == "vst"


def to_network(
    items: list[np.ndarray], sigmas: np.ndarray, noise_model: str, n_coils: float, correction: str
) -> list[np.ndarray]:
    """Items ``(C, D, H, W)`` as the network sees them: stabilised for the "vst" magnitude path, else as they are.

    ``sigmas`` is ``(n_items, C)``, in input units. New arrays; the inputs are not modified.
    """
    if not _stabilised(noise_model, correction):
        return items
    n = coils(noise_model, n_coils)
    return [stabilise(item, sigma[:, None, None, None], n) for item, sigma in zip(items, sigmas)]


def from_network(
    denoised: np.ndarray,
    sigma: float,
    noise_model: str,
    n_coils: float,
    correction: str,
    floor_shrinkage: float = 0.0,
) -> np.ndarray:
    """The amplitude estimate from the network's output (input units) for one item's channel.

    Gaussian noise: the output itself; magnitude noise: the inverse of the stabilised mean
    ("vst"; in the air the estimate of ``A**2`` is soft-thresholded by ``floor_shrinkage`` times
    the output's own error spread, measured on this output by
    :func:`~c2s_denoise.physics.variance_stabilisation.floor_error`; over dark tissue
    :func:`~c2s_denoise.physics.variance_stabilisation.floor_weights` lifts it) or of the
    magnitude mean ("mean"). ``denoised`` is ``(D, H, W)``: whole slices, which the weights need.
    """
    if noise_model == "gaussian":
        return denoised
    n = coils(noise_model, n_coils)
    if correction == "vst":
        return unstabilise_denoised(denoised, sigma, n, floor_shrinkage=floor_shrinkage)
    return unbias_magnitude(denoised, sigma, n)


def air_factor(noise_model: str, n_coils: float, correction: str) -> float:
    """Root-mean-square of pure noise (as the network sees it) in units of sigma, per denoised channel."""
    if noise_model == "gaussian":
        return 1.0
    n = coils(noise_model, n_coils)
    if correction == "vst":
        return math.sqrt(float(stabilised_mean(0.0, 1.0, n)) ** 2 + 1.0)
    return math.sqrt(2.0 * n)
