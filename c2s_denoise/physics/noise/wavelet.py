"""The wavelet MAD noise estimator (Donoho & Johnstone 1994) and the Haar blocks it rests on.

Also the helpers every estimator of :mod:`c2s_denoise.physics.noise` shares: images as slices, the
constant-mask detection and the tie-aware median of quantised data.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["estimate_sigma_wavelet"]

# median(|N(0, 1)|): turns a median absolute deviation into a standard deviation.
_MAD_TO_STD = 0.6744897501960817
# A value covering more than this fraction of the pixels at the minimum is a mask, not noise.
_MASK_FRACTION = 0.05
_PASS_SIGMA = "pass sigma explicitly (a number) instead of estimating it"


def _as_slices(image: np.ndarray, *, allow_complex: bool = False) -> np.ndarray:
    """``image`` as float64 (or complex128) slices ``(D, H, W)``."""
    array = np.asarray(image)
    if np.iscomplexobj(array):
        if not allow_complex:
            raise ValueError("expected a real image")
        array = array.astype(np.complex128)
    else:
        array = array.astype(np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"expected an image (H, W) or a volume (D, H, W), got shape {array.shape}")
    if array.size == 0:
        raise ValueError("cannot estimate the noise of an empty image")
    return array


def _magnitude_slices(image: np.ndarray) -> np.ndarray:
    """Real slices of a magnitude image; complex input gives its magnitude."""
    slices = _as_slices(image, allow_complex=True)
    return np.abs(slices) if np.iscomplexobj(slices) else slices


def _constant_mask(slices: np.ndarray) -> np.ndarray:
    """Pixels at the minimum (of the magnitude, for complex slices) if it repeats on > 5% of them.

    (And on 2 pixels at least: in a tiny image one pixel is more than 5%.) Such a plateau is a
    mask (background set to 0 or another constant, zero filling), not noise: continuous noise
    never repeats one value that often, and quantised noise puts far fewer pixels at its
    lowest grey level.
    """
    values = np.abs(slices) if np.iscomplexobj(slices) else slices
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, dtype=bool)
    lowest = finite.min()
    masked = values == lowest
    count = np.count_nonzero(masked)
    if count < 2 or count <= _MASK_FRACTION * values.size:  # a single pixel is no plateau
        masked[...] = False
    return masked


def _haar_finest(
    slices: np.ndarray, masked: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Finest Haar sub-bands of real slices over 2x2 blocks, flattened.

    Over each block ``[[a, b], [c, d]]``: the diagonal detail ``HH = (a - b - c + d) / 2``, the
    block mean ``(a + b + c + d) / 4``, an edge statistic (the largest of the horizontal and
    vertical details ``|a + b - c - d| / 2``, ``|a - b + c - d| / 2`` and the steps
    ``|mean - neighbour mean| * sqrt(2)`` to the 4 neighbouring blocks; 0 for images one pixel
    high or wide, which use ``(a - b) / sqrt(2)`` over pairs instead) and whether the block is
    usable: finite, not all pixels equal (all-equal blocks are masked background or
    saturation, not noise) and without a pixel of ``masked`` (blocks straddling the edge of a
    mask would read the step to the mask as noise). For white Gaussian noise of level ``sigma``
    every term of the edge statistic has standard deviation ``sigma`` and is independent of
    ``HH``. Returns ``(coefficients, block_means, edge_details, usable)``.
    """
    if masked is None:
        masked = np.zeros(slices.shape, dtype=bool)
    height, width = slices.shape[-2:]
    if height >= 2 and width >= 2:
        s = slices[:, : height - height % 2, : width - width % 2]
        a, b, c, d = s[:, 0::2, 0::2], s[:, 0::2, 1::2], s[:, 1::2, 0::2], s[:, 1::2, 1::2]
        coefficients = (a - b - c + d) / 2.0
        means = (a + b + c + d) / 4.0
        details = np.maximum(np.abs(a + b - c - d), np.abs(a - b + c - d)) / 2.0
        # steps between the means of neighbouring blocks, in units of their noise std sigma / sqrt(2)
        for axis in (1, 2):
            step = np.abs(np.diff(means, axis=axis)) * math.sqrt(2.0)
            pad_before = [(0, 0)] * 3
            pad_after = [(0, 0)] * 3
            pad_before[axis], pad_after[axis] = (1, 0), (0, 1)
            details = np.fmax(details, np.pad(step, pad_before, constant_values=np.nan))
            details = np.fmax(details, np.pad(step, pad_after, constant_values=np.nan))
        constant = (a == b) & (a == c) & (a == d)
        m = masked[:, : height - height % 2, : width - width % 2]
        constant |= m[:, 0::2, 0::2] | m[:, 0::2, 1::2] | m[:, 1::2, 0::2] | m[:, 1::2, 1::2]
    elif width >= 2 or height >= 2:
        s = slices.reshape(slices.shape[0], -1)  # one row or one column
        s = s[:, : s.shape[1] - s.shape[1] % 2]
        a, b = s[:, 0::2], s[:, 1::2]
        coefficients = (a - b) / math.sqrt(2.0)
        means = (a + b) / 2.0
        details = np.zeros_like(means)
        m = masked.reshape(masked.shape[0], -1)[:, : s.shape[1]]
        constant = (a == b) | m[:, 0::2] | m[:, 1::2]
    else:
        empty = np.empty(0)
        return empty, empty, empty, np.empty(0, dtype=bool)
    usable = ~constant & np.isfinite(coefficients) & np.isfinite(means) & np.isfinite(details)
    return coefficients.ravel(), means.ravel(), details.ravel(), usable.ravel()


def _tie_aware_median(values: np.ndarray) -> float:
    """Median of non-negative ``values``, interpolated within a run of tied values.

    Quantised data (integer images, ``uint8``) give Haar coefficients on a lattice, whose plain
    median jumps by a whole lattice step. The tied median value ``v`` is read as the interval
    halfway to its neighbouring distinct values (from 0 for ``v = 0``, the fold of ``|HH|``)
    and the median is interpolated linearly inside it (the grouped-data median). Without ties
    this is the plain median.
    """
    v = float(np.median(values))
    n_equal = int(np.count_nonzero(values == v))
    if n_equal <= 1:
        return v
    below = values[values < v]
    above = values[values > v]
    lower_neighbour = float(below.max()) if below.size else None
    upper_neighbour = float(above.min()) if above.size else None
    if lower_neighbour is None and upper_neighbour is None:
        return v
    if upper_neighbour is None:
        upper_neighbour = 2.0 * v - lower_neighbour  # type: ignore[operator]
    if lower_neighbour is None:
        lower_neighbour = max(-v, 2.0 * v - upper_neighbour)  # v = 0: the interval starts at 0
    low, high = (lower_neighbour + v) / 2.0, (v + upper_neighbour) / 2.0
    return low + (values.size / 2.0 - below.size) / n_equal * (high - low)


def _sigma_from_coefficients(coefficients: np.ndarray, what: str) -> float:
    if coefficients.size == 0:
        raise ValueError(
            f"cannot estimate the noise level of {what}: no 2x2 block has varying pixels "
            f"(the image is constant or masked); {_PASS_SIGMA}"
        )
    sigma = _tie_aware_median(np.abs(coefficients)) / _MAD_TO_STD
    if not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(
            f"the wavelet noise estimate of {what} is {sigma} (more than half of the varying 2x2 "
            f"blocks have no diagonal detail); {_PASS_SIGMA}"
        )
    return sigma


def estimate_sigma_wavelet(image: np.ndarray) -> float:
    """Wavelet MAD estimate of Donoho & Johnstone (1994), the estimator used in the paper.

    The finest diagonal sub-band of the orthonormal Haar transform,
    ``HH = (a - b - c + d) / 2`` over each 2x2 block, holds mostly noise; for white Gaussian noise
    of level ``sigma`` its coefficients are ``N(0, sigma**2)``, so
    ``sigma = median(|HH|) / 0.6745``. Blocks whose four pixels are all equal (background masked
    to a constant, saturation) or not finite are ignored, and so are blocks with a pixel of a
    constant mask at the minimum (the minimum covering more than 5% of the pixels; for complex
    input, the minimum of the magnitude); on quantised data (integer images) the median is
    interpolated within the tied lattice value. Images with fewer than 2 pixels along an axis
    use first differences along the other axis, ``(a - b) / sqrt(2)``.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (D, H, W)
        Real image or volume, or a complex one: then the coefficients of the real and
        imaginary parts are pooled and the result is the per-component ``sigma``.

    Returns
    -------
    float
        Noise standard deviation (per real component) in the image's units.

    Raises
    ------
    ValueError
        If the image is empty, has no usable block (constant, fully masked, a single pixel) or
        the estimate is 0 or not finite; pass sigma explicitly then.
    """
    slices = _as_slices(image, allow_complex=True)
    masked = _constant_mask(slices)
    parts = (slices.real, slices.imag) if np.iscomplexobj(slices) else (slices,)
    pooled = []
    for part in parts:
        coefficients, _, _, usable = _haar_finest(part, masked)
        pooled.append(coefficients[usable])
    return _sigma_from_coefficients(np.concatenate(pooled), "this image")
