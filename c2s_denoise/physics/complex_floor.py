"""The floor of a denoised complex image: what is left of the noise where the signal is zero, and its removal.

A denoised complex image ``z = x + e`` keeps a small zero-mean error ``e``, complex Gaussian of
spread ``s`` per component. Where the object is absent (``x = 0``) its magnitude ``|z| = |e|`` is
Rayleigh of parameter ``s``: a speckle floor of mean ``s sqrt(pi / 2)`` that the magnitude shown to a
reader keeps, although every component is unbiased. Since ``E|z|^2 = |x|^2 + 2 s^2``, the squared
amplitude ``|x|^2`` is estimated without bias by ``|z|^2 - 2 s^2``; soft-thresholding it,
``|x|^2 ~ max(|z|^2 - t 2 s^2, 0)`` with ``t >= 1``, sets most of the air to 0 and moves amplitudes
well above ``s`` by ``t s^2 / |x|``: nothing. The phase of ``z`` is kept.

``s`` is measured from the image itself: the pixels below ``threshold`` (in units of the input
noise, which the denoiser brought well below 1) are mostly air, and their truncated second
moment gives the Rayleigh parameter (:func:`complex_floor_error`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["complex_floor_error", "shrink_complex_floor"]


def _truncated_rayleigh_moment(s: float, threshold: float) -> float:
    """``E[|z|^2 | |z| < threshold]`` for ``|z|`` Rayleigh of parameter ``s``."""
    u = threshold**2 / (2 * s**2)
    return 2 * s**2 - threshold**2 * np.exp(-u) / -np.expm1(-u)


def complex_floor_error(image: np.ndarray, threshold: float, min_count: int = 100) -> float:
    """The spread ``s`` per component of the error left in a denoised complex image, from its air.

    Parameters
    ----------
    image : ndarray, complex
        A denoised complex image or stack, in units where the input noise was of known level.
    threshold : float
        Magnitudes below it count as air (with the input noise level 1, about 1: the denoised
        tissue is far above it, the remaining error far below).
    min_count : int, default=100
        Fewer pixels below ``threshold`` give 0 (no air in view: nothing to measure).

    Returns
    -------
    float
        The Rayleigh parameter fitted to the truncated second moment of the magnitudes below
        ``threshold``; 0 without enough air.
    """
    magnitude = np.abs(np.asarray(image))
    below = magnitude[magnitude < threshold]
    if below.size < min_count:
        return 0.0
    moment = float(np.mean(below**2))
    low, high = 1e-9 * threshold, 10.0 * threshold  # the truncated moment increases with s
    for _ in range(100):
        middle = 0.5 * (low + high)
        if _truncated_rayleigh_moment(middle, threshold) < moment:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def shrink_complex_floor(image: np.ndarray, error: float, shrinkage: float) -> np.ndarray:
    """``image`` with its amplitude soft-thresholded in the square: ``|x|^2 = max(|z|^2 - shrinkage 2 s^2, 0)``.

    Parameters
    ----------
    image : ndarray, complex
        The denoised complex image(s).
    error : float
        ``s``, the error's spread per component (:func:`complex_floor_error`).
    shrinkage : float
        ``t``: 0 keeps the image; 1 removes the floor's mean square; larger values clear more of
        the air's speckle.

    Returns
    -------
    ndarray
        A new complex array, of the input's dtype, with the phase of ``image``.
    """
    z = np.asarray(image)
    if shrinkage <= 0 or error <= 0:
        return z.copy()
    power = np.abs(z) ** 2
    kept = np.maximum(power - shrinkage * 2 * error**2, 0.0)
    factor = np.sqrt(np.divide(kept, power, out=np.zeros_like(power), where=power > 0))
    return (z * factor).astype(z.dtype, copy=False)
