"""Noise-level estimators for magnitude MRI (METHOD.md section 7).

Both work on one image ``(H, W)`` or one volume ``(D, H, W)`` (slices along the first axis) and
return the noise standard deviation in the image's own units.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NOISE_ESTIMATORS", "estimate_sigma", "estimate_sigma_rayleigh", "estimate_sigma_wavelet"]

NOISE_ESTIMATORS = ("wavelet", "rayleigh")

# median(|N(0, 1)|): turns a median absolute deviation into a standard deviation.
_MAD_TO_STD = 0.6744897501960817


def _as_slices(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"expected an image (H, W) or a volume (D, H, W), got shape {array.shape}")
    if array.size == 0:
        raise ValueError("cannot estimate the noise of an empty image")
    return array


def estimate_sigma_wavelet(image: np.ndarray) -> float:
    """Wavelet MAD estimate of Donoho & Johnstone (1994), the estimator used in the paper.

    The finest diagonal sub-band of the orthonormal Haar transform,
    ``HH = (a - b - c + d) / 2`` over each 2x2 block, holds mostly noise; for white Gaussian noise
    of level ``sigma`` its coefficients are ``N(0, sigma**2)``, so
    ``sigma = median(|HH|) / 0.6745``.

    Images with fewer than 2 pixels along an axis use first differences along the other axis
    (``(a - b) / sqrt(2)``); a single pixel gives 0.
    """
    slices = _as_slices(image)
    height, width = slices.shape[-2:]
    if height >= 2 and width >= 2:
        s = slices[:, : height - height % 2, : width - width % 2]
        coefficients = (s[:, 0::2, 0::2] - s[:, 0::2, 1::2] - s[:, 1::2, 0::2] + s[:, 1::2, 1::2]) / 2.0
    elif width >= 2:
        s = slices[:, :, : width - width % 2]
        coefficients = (s[:, :, 0::2] - s[:, :, 1::2]) / math.sqrt(2.0)
    elif height >= 2:
        s = slices[:, : height - height % 2, :]
        coefficients = (s[:, 0::2, :] - s[:, 1::2, :]) / math.sqrt(2.0)
    else:
        return 0.0
    return float(np.median(np.abs(coefficients)) / _MAD_TO_STD)


def _truncated_rayleigh_mean(k: float) -> float:
    """``E[R | R < k sigma] / sigma`` for a Rayleigh variable ``R`` of scale ``sigma``."""
    integral = -k * math.exp(-k * k / 2.0) + math.sqrt(math.pi / 2.0) * math.erf(k / math.sqrt(2.0))
    return integral / (1.0 - math.exp(-k * k / 2.0))


def estimate_sigma_rayleigh(image: np.ndarray, *, cutoff: float = 2.0, max_iter: int = 50) -> float:
    """Background (Rayleigh) estimate for magnitude images with signal-free background.

    In air, the magnitude of complex Gaussian noise of level ``sigma`` is Rayleigh distributed
    with mean ``sigma sqrt(pi/2)``. The background is taken as the pixels below
    ``cutoff * sigma`` and ``sigma`` is solved by fixed-point iteration on the mean of that
    truncated Rayleigh distribution, ``sigma = mean(background) / g(cutoff)``; without
    truncation this is the textbook ``sigma = mean(background) / sqrt(pi/2)``. Exact zeros (zero
    filling, masking) are ignored.

    Raises
    ------
    ValueError
        If the image has no positive pixel (no background to measure).
    """
    values = np.abs(_as_slices(image)).ravel()
    values = values[values > 0]
    if values.size == 0:
        raise ValueError("the Rayleigh estimator needs positive background pixels; the image has none")
    g = _truncated_rayleigh_mean(cutoff)
    # start from the darkest decile, which in an MRI magnitude image is background
    sigma = float(np.mean(values[values <= np.quantile(values, 0.1)])) / g * 2.0
    for _ in range(max_iter):
        background = values[values < cutoff * sigma]
        if background.size == 0:
            break
        updated = float(background.mean()) / g
        if abs(updated - sigma) <= 1e-6 * sigma:
            sigma = updated
            break
        sigma = updated
    return sigma


def estimate_sigma(image: np.ndarray, method: str = "wavelet") -> float:
    """Estimate the noise standard deviation of an image or volume.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (D, H, W)
        Magnitude image or volume.
    method : {"wavelet", "rayleigh"}, default="wavelet"
        ``"wavelet"``: MAD of the finest diagonal wavelet sub-band (the paper's choice; works
        everywhere, slightly high on very textured images). ``"rayleigh"``: signal-free
        background of a magnitude image (needs air around the object).

    Returns
    -------
    float
        Noise standard deviation in the image's units.
    """
    if method == "wavelet":
        return estimate_sigma_wavelet(image)
    if method == "rayleigh":
        return estimate_sigma_rayleigh(image)
    raise ValueError(f"unknown noise estimator {method!r}; use one of {NOISE_ESTIMATORS}")
