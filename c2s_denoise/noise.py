"""Noise-level estimators for MRI images (docs/method.md section 7).

Every estimator works on one image ``(H, W)`` or one volume ``(D, H, W)`` (slices along the first
axis) and returns ``sigma``, the standard deviation of each real component (real or imaginary
part) of the complex Gaussian noise of one coil image, in the image's own units. A magnitude
image from ``N`` coils combined by root-sum-of-squares is noncentral chi with ``2N`` degrees of
freedom scaled by ``sigma`` (``N = 1``: Rician); its signal-free background is central chi, of
mean ``sigma sqrt(2) Gamma(N + 1/2) / Gamma(N)``.

- ``"wavelet"``: MAD of the finest diagonal Haar band (Donoho & Johnstone 1994), for Gaussian
  noise (complex or real images). On magnitude images it is low where the signal is dark.
- ``"background"``: truncated mean of the chi distributed air around the object of a
  magnitude image (needs air); ``"rayleigh"`` is its single-coil case.
- ``"foreground"``: wavelet MAD over bright blocks without edges of a magnitude image, where
  noncentral-chi noise is nearly Gaussian (needs no air).

:func:`choose_noise_estimator` picks one of them for a noise model.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
from scipy.ndimage import maximum_filter
from scipy.optimize import brentq
from scipy.special import erf, gammainc, gammaincinv, gammaln

from .magnitude import ncchi_mean, unbias_magnitude

__all__ = [
    "NOISE_ESTIMATORS",
    "auto_noise_level",
    "choose_noise_estimator",
    "resolve_noise_model",
    "estimate_sigma",
    "estimate_sigma_background",
    "estimate_sigma_foreground",
    "estimate_sigma_rayleigh",
    "estimate_sigma_wavelet",
]

NOISE_ESTIMATORS = ("wavelet", "background", "foreground", "rayleigh")

# median(|N(0, 1)|): turns a median absolute deviation into a standard deviation.
_MAD_TO_STD = 0.6744897501960817
# A value covering more than this fraction of the pixels at the minimum is a mask, not noise.
_MASK_FRACTION = 0.05
_MIN_BACKGROUND_PIXELS = 50
# Background pixels need their neighbourhood below this quantile of the air's chi distribution.
_NEIGHBOUR_QUANTILE = 0.999
_MIN_FOREGROUND_BLOCKS = 50
# choose_noise_estimator: air must cover this fraction of the non-masked pixels.
_MIN_AIR_FRACTION = 0.10
# ... and its background estimate must not exceed the foreground one by more than this factor.
_MAX_BACKGROUND_EXCESS = 1.1
# ... or by this factor when the foreground estimate rests on fewer than _MIN_FOREGROUND_SUPPORT of
# the usable blocks (SNR below about 5, where it reads up to 20% low).
_MAX_BACKGROUND_EXCESS_LOW_SNR = 1.3
_MIN_FOREGROUND_SUPPORT = 0.10
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


def _chi_truncation(n_coils: float, quantile: float) -> tuple[float, float]:
    """Cut-off ``c`` (the ``quantile`` of the unit chi(2N)) and ``g = E[chi | chi < c]``."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    half_c2 = float(gammaincinv(n_coils, quantile))
    # E[chi 1{chi < c}] = sqrt(2) Gamma(N + 1/2) / Gamma(N) P(N + 1/2, c**2 / 2), P(N, c**2/2) = quantile
    mean = math.sqrt(2.0) * math.exp(gammaln(n_coils + 0.5) - gammaln(n_coils))
    return math.sqrt(2.0 * half_c2), mean * float(gammainc(n_coils + 0.5, half_c2)) / quantile


def _check_n_coils(n_coils: float) -> float:
    n = float(n_coils)
    if not math.isfinite(n) or n < 1:
        raise ValueError(f"n_coils must be a number >= 1, got {n_coils!r}")
    return n


def _unmasked_magnitudes(image: np.ndarray, neighbourhood: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positive finite magnitudes, without a constant mask at the minimum (complex: ``|z|``).

    Also returns, for each, the largest magnitude in its ``neighbourhood`` x ``neighbourhood``
    window of the same slice (the value itself for ``neighbourhood <= 1``).
    """
    slices = _magnitude_slices(image)
    finite = np.isfinite(slices)
    keep = ~_constant_mask(slices) & finite & (slices > 0)
    if neighbourhood > 1:
        window = (1, neighbourhood, neighbourhood)
        local_max = maximum_filter(np.where(finite, slices, np.inf), size=window, mode="nearest")
    else:
        local_max = slices
    return slices[keep], local_max[keep]


def estimate_sigma_background(
    image: np.ndarray, n_coils: float = 1, *, quantile: float = 0.9, max_iter: int = 100, neighbourhood: int = 5
) -> float:
    """Background estimate for magnitude images with signal-free air around the object.

    In air, an RSS magnitude of ``N`` coils is ``sigma`` times a central chi variable with
    ``2N`` degrees of freedom. With ``c`` the ``quantile`` of the unit chi(2N) and
    ``g = E[chi | chi < c]`` (closed form), the background is taken as the pixels below
    ``c sigma`` and ``sigma`` solves the fixed point ``sigma = mean(R[R < c sigma]) / g``,
    iterated from the mean of the darkest decile of the pixels (which starts it below the
    air's level, so that it climbs to the lowest, the air's, fixed point). Exact zeros, and the
    pixels at the minimum when that value covers more than 5% of them (a constant mask), are
    ignored, as are negative values; complex input is replaced by its magnitude.

    The fixed point is then refined from there on the pixels whose ``neighbourhood`` x
    ``neighbourhood`` window (in their slice) stays below the 99.9% quantile of the air,
    ``c' sigma``: noise is independent between pixels, so this does not change the truncated
    mean of air pixels, but it drops the dark tissue next to brighter tissue (skull, partial
    volume at the head's edge) that passes the cut-off at low SNR (on a brain phantom at SNR
    10 it takes the single-coil estimate from 3.7% to 0.1% high). The refinement is skipped
    when it leaves fewer than 50 pixels.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (D, H, W)
        Magnitude image or volume (RSS over ``n_coils`` coils).
    n_coils : float, default=1
        Number of coils ``N`` (1: Rician / Rayleigh background).
    quantile : float, default=0.9
        Fraction of the air below the cut-off; larger uses more air but admits more of the
        darkest tissue.
    max_iter : int, default=100
        Maximum number of fixed-point iterations (it stops at a relative change of 1e-7).
    neighbourhood : int, default=5
        Window of the refinement; 1 or less skips it.

    Returns
    -------
    float
        Noise standard deviation per real component and coil, in the image's units.

    Raises
    ------
    ValueError
        If the image has no positive pixel, or fewer than 50 pixels end up in the background.
    """
    n = _check_n_coils(n_coils)
    values, local_max = _unmasked_magnitudes(image, neighbourhood)
    if values.size == 0:
        raise ValueError(
            "the background estimator needs positive background pixels; the image has none "
            f"(all zero, constant or masked); {_PASS_SIGMA}"
        )
    cutoff, g = _chi_truncation(n, quantile)
    wide = math.sqrt(2.0 * float(gammaincinv(n, _NEIGHBOUR_QUANTILE)))
    darkest = values[values <= np.quantile(values, 0.1)]
    sigma = float(darkest.mean()) / g

    def background_of(sigma: float, isolated: bool) -> np.ndarray:
        below = values < cutoff * sigma
        return values[below & (local_max < wide * sigma)] if isolated else values[below]

    def fixed_point(sigma: float, isolated: bool) -> float:
        for _ in range(max_iter):
            background = background_of(sigma, isolated)
            if background.size == 0:
                break
            updated = float(background.mean()) / g
            converged = abs(updated - sigma) <= 1e-7 * sigma
            sigma = updated
            if converged:
                break
        return sigma

    sigma = fixed_point(sigma, False)
    count = int(background_of(sigma, False).size)
    if neighbourhood > 1 and count >= _MIN_BACKGROUND_PIXELS:
        refined = fixed_point(sigma, True)
        if background_of(refined, True).size >= _MIN_BACKGROUND_PIXELS:
            sigma = refined
    if count < _MIN_BACKGROUND_PIXELS or not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(
            f"too few background pixels for the background estimator ({count} < "
            f"{_MIN_BACKGROUND_PIXELS}); the image needs signal-free air: use the 'foreground' "
            f"estimator or {_PASS_SIGMA}"
        )
    return sigma


def estimate_sigma_rayleigh(image: np.ndarray) -> float:
    """Background estimate for single-coil magnitude images (Rayleigh-distributed air).

    Same as ``estimate_sigma_background(image, 1)``: in air, the magnitude of complex Gaussian
    noise of level ``sigma`` is Rayleigh distributed with mean ``sigma sqrt(pi/2)``; ``sigma`` is
    solved from the truncated mean of the pixels below the Rayleigh 90% quantile
    ``2.146 sigma`` (then refined on the pixels away from brighter tissue, see
    :func:`estimate_sigma_background`). Exact zeros (zero filling, masking) are ignored. (The
    former version, a cut-off of ``2 sigma`` without refinement, agrees on noise-only air but
    read 2-4% high on a single-coil brain phantom at SNR 7-20, where this one is within 0.3%.)

    Raises
    ------
    ValueError
        If the image has no positive pixel (no background to measure) or too few background
        pixels.
    """
    return estimate_sigma_background(image, 1)


def _ncchi_std_factor(a: np.ndarray, n_coils: float) -> np.ndarray:
    """``std(M) / sigma`` of noncentral-chi noise at ``a = A / sigma``: 0.66-0.71 in air, -> 1."""
    a = np.asarray(a, dtype=np.float64)
    near = np.minimum(a, 100.0)
    variance = near * near + 2.0 * n_coils - np.asarray(ncchi_mean(near, 1.0, n_coils)) ** 2
    # far from the background: Var(M) / sigma**2 = 1 - (N - 1/2) / a**2 + O(a**-4)
    far = 1.0 - (n_coils - 0.5) / np.maximum(a, 100.0) ** 2
    return np.sqrt(np.clip(np.where(a > 100.0, far, variance), 1e-12, None))


def _match_median(median: float, factors: np.ndarray) -> float:
    """``sigma`` such that ``median`` is the median of ``|N(0, (factor_i sigma)**2)|`` pooled over i."""
    low, high = float(factors.min()), float(factors.max())
    if high - low <= 1e-9 * high:
        return median / (_MAD_TO_STD * high)
    levels, counts = np.unique(np.round(factors, 5), return_counts=True)
    weights = counts / counts.sum()

    def excess(sigma: float) -> float:
        return float(np.sum(weights * erf(median / (levels * sigma * math.sqrt(2.0))))) - 0.5

    return float(brentq(excess, median / (_MAD_TO_STD * high), median / (_MAD_TO_STD * low), xtol=1e-12 * median))


def estimate_sigma_foreground(
    image: np.ndarray, n_coils: float = 1, *, min_snr: float = 5.0, edge_gate: float = 2.0, max_iter: int = 10
) -> float:
    """Gaussian-regime estimate for magnitude images: wavelet MAD over bright, flat 2x2 blocks.

    Far above the background, noncentral-chi noise is nearly Gaussian with standard deviation
    ``sigma``. Starting from the wavelet estimate ``sigma0`` over all usable blocks, the finest
    diagonal Haar coefficients ``HH`` are taken only over the 2x2 blocks

    - whose mean is above the mean magnitude of an amplitude ``min_snr * sigma`` (about
      ``5 sigma`` for one coil), and
    - without an edge: horizontal and vertical details and steps to the 4 neighbouring
      blocks' means all below ``edge_gate`` times their noise std (for Gaussian noise these are
      independent of ``HH``, so the gate removes anatomy without biasing the noise; without it
      the edges of a brain phantom bias the estimate by +50% at SNR 40),

    and ``sigma`` is recomputed from them; the selection is repeated with the new ``sigma`` until
    it changes by less than 1e-4 (``max_iter`` times at most). The remaining non-Gaussianity is
    corrected: the coefficient of a block has the standard deviation ``h(A / sigma) sigma`` of
    noncentral-chi noise at the block's unbiased amplitude ``A`` (``h -> 1`` far from the
    background, but ``h = 0.85`` at ``A = 5 sigma`` for 16 coils), and ``sigma`` is solved so
    that the median of the pooled ``|HH|`` is the median of that Gaussian mixture. Blocks with a
    pixel of a constant mask at the minimum are ignored. Needs no air around the object.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (D, H, W)
        Magnitude image or volume (RSS over ``n_coils`` coils); complex input is replaced by
        its magnitude.
    n_coils : float, default=1
        Number of coils ``N``.
    min_snr : float, default=5.0
        Blocks count as foreground above the mean magnitude of amplitude ``min_snr * sigma``.
    edge_gate : float, default=2.0
        Blocks with an edge statistic above ``edge_gate * sigma`` are left out.
    max_iter : int, default=10
        Maximum number of re-selections.

    Returns
    -------
    float
        Noise standard deviation per real component and coil, in the image's units.

    Raises
    ------
    ValueError
        If the image has no usable block, or fewer than 50 blocks are bright and flat enough.
    """
    return _foreground(image, _check_n_coils(n_coils), min_snr, edge_gate, max_iter)[0]


def _foreground(
    image: np.ndarray, n_coils: float, min_snr: float = 5.0, edge_gate: float = 2.0, max_iter: int = 10
) -> tuple[float, float]:
    """:func:`estimate_sigma_foreground` and the fraction of the usable blocks it rests on."""
    slices = _magnitude_slices(image)
    coefficients, means, details, usable = _haar_finest(slices, _constant_mask(slices))
    sigma = _sigma_from_coefficients(coefficients[usable], "this image")
    count = 0
    for _ in range(max_iter):
        threshold = float(ncchi_mean(min_snr * sigma, sigma, n_coils))
        selected = usable & (means > threshold) & (details < edge_gate * sigma)
        count = int(np.count_nonzero(selected))
        if count < _MIN_FOREGROUND_BLOCKS:
            raise ValueError(
                f"too few bright 2x2 blocks for the foreground estimator ({count} < "
                f"{_MIN_FOREGROUND_BLOCKS} above {min_snr:g} sigma); use the 'background' "
                f"estimator or {_PASS_SIGMA}"
            )
        amplitude = np.asarray(unbias_magnitude(means[selected], sigma, n_coils)) / sigma
        median = _tie_aware_median(np.abs(coefficients[selected]))
        if not median > 0:
            raise ValueError(f"the foreground noise estimate is 0; {_PASS_SIGMA}")
        updated = _match_median(median, _ncchi_std_factor(amplitude, n_coils))
        converged = abs(updated - sigma) <= 1e-4 * sigma
        sigma = updated
        if converged:
            break
    return sigma, count / np.count_nonzero(usable)


def estimate_sigma(image: np.ndarray, method: str = "wavelet", *, n_coils: float = 1) -> float:
    """Estimate the noise standard deviation of an image or volume.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (D, H, W)
        Image or volume (magnitude, real or complex).
    method : {"wavelet", "background", "foreground", "rayleigh"}, default="wavelet"
        ``"wavelet"``: MAD of the finest diagonal wavelet sub-band (the paper's choice; for
        Gaussian noise, works everywhere, slightly high on very textured images, low on
        magnitude images with dark regions). ``"background"``: chi-distributed signal-free air
        of a magnitude image (needs air around the object). ``"foreground"``: wavelet MAD over
        the bright part of a magnitude image (needs no air). ``"rayleigh"``: ``"background"``
        for a single coil. :func:`choose_noise_estimator` picks one for a noise model.
    n_coils : float, default=1
        Coils combined by root-sum-of-squares into a magnitude image (``"background"`` and
        ``"foreground"``; ignored by ``"wavelet"``, must be 1 with ``"rayleigh"``).

    Returns
    -------
    float
        Noise standard deviation per real component (and coil), in the image's units.

    Raises
    ------
    ValueError
        For an unknown method, or when the estimator cannot measure the noise of ``image``.
    """
    if method == "wavelet":
        return estimate_sigma_wavelet(image)
    if method == "background":
        return estimate_sigma_background(image, n_coils)
    if method == "foreground":
        return estimate_sigma_foreground(image, n_coils)
    if method == "rayleigh":
        if n_coils != 1:
            raise ValueError(
                f"'rayleigh' is the single-coil background estimator; use 'background' for {n_coils} coils"
            )
        return estimate_sigma_rayleigh(image)
    raise ValueError(f"unknown noise estimator {method!r}; use one of {NOISE_ESTIMATORS}")


def choose_noise_estimator(image: np.ndarray, noise_model: str, *, n_coils: float = 1) -> str:
    """Pick the noise estimator for ``image`` under a noise model.

    - ``"gaussian"`` (complex or real images): ``"wavelet"``.
    - ``"rician"`` / ``"ncchi"`` (magnitude images; ``n_coils`` counts for ``"ncchi"`` only):
      ``"background"`` when the image has air, else ``"foreground"``. With ``sigma_f`` the
      foreground estimate and ``sigma_b`` the background one, the image has air when

      1. at least 10% of its non-masked pixels (exact zeros and a constant mask at the minimum
         left out) are air: air is chi(2N) distributed and puts 90% of its pixels below
         ``c sigma_f``, ``c`` the 90% quantile of the unit chi(2N), so the air fraction is
         estimated as ``count(pixels < c sigma_f) / 0.9 / count(pixels)``; and
      2. ``sigma_b <= 1.1 sigma_f``: dark tissue taken for air (no air, low SNR, many coils)
         reads as a higher noise level. When ``sigma_f`` rests on fewer than 10% of the usable
         2x2 blocks (brightest tissue below about 5 sigma), where it can read 20% low, the
         bound is ``1.3 sigma_f``.

      When the foreground estimator fails (too little bright signal), ``"background"`` is
      returned if that one works.

    Measured on a brain phantom with 52% air (8 x 192 x 192, 1/4/8/16 coils, white-matter SNR
    10 and 41), the background estimator is within 0.2% of the truth and the foreground one
    within 1.3% (spread 0.5-1%); so air means "background". Without air (crops inside the head
    or masks) the background estimator reads dark tissue (10% to 30x high) and the foreground
    one is within 2.5% down to SNR 7. Below SNR 5 without air no estimator is reliable.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (D, H, W)
        The image or volume whose noise is to be estimated.
    noise_model : {"gaussian", "rician", "ncchi"}
        Distribution of its noise.
    n_coils : float, default=1
        Coils behind an ``"ncchi"`` magnitude image.

    Returns
    -------
    str
        A name in :data:`NOISE_ESTIMATORS`, for :func:`estimate_sigma`.

    Raises
    ------
    ValueError
        For an unknown noise model, an empty image, or a magnitude image on which no estimator
        works (all zero, constant).
    """
    if noise_model == "gaussian":
        _as_slices(image, allow_complex=True)
        return "wavelet"
    if noise_model not in ("rician", "ncchi"):
        raise ValueError(f"unknown noise model {noise_model!r}; use 'gaussian', 'rician' or 'ncchi'")
    n = 1.0 if noise_model == "rician" else _check_n_coils(n_coils)
    try:
        foreground, support = _foreground(image, n)
    except ValueError:
        estimate_sigma_background(image, n)  # raises when there is no air either
        return "background"
    if _air_fraction(image, foreground, n) < _MIN_AIR_FRACTION:
        return "foreground"
    try:
        background = estimate_sigma_background(image, n)
    except ValueError:
        return "foreground"
    excess = _MAX_BACKGROUND_EXCESS if support >= _MIN_FOREGROUND_SUPPORT else _MAX_BACKGROUND_EXCESS_LOW_SNR
    return "foreground" if background > excess * foreground else "background"


def _air_fraction(image: np.ndarray, sigma: float, n_coils: float) -> float:
    """Estimated fraction of air among the non-masked pixels of a magnitude image.

    Air is ``sigma`` times chi(2N) distributed, so 90% of it lies below ``c sigma`` with ``c``
    the 90% quantile of the unit chi(2N): the fraction is ``count(R < c sigma) / 0.9 / count``
    over the pixels left by :func:`_unmasked_magnitudes` (0 with fewer than 50 such pixels).
    Tissue darker than about ``2 sigma`` counts as air.
    """
    values, _ = _unmasked_magnitudes(image)
    cutoff, _ = _chi_truncation(n_coils, 0.9)
    below = np.count_nonzero(values < cutoff * sigma)
    if below < _MIN_BACKGROUND_PIXELS:
        return 0.0
    return below / 0.9 / values.size


def auto_noise_level(image: np.ndarray, noise_model: str, *, n_coils: float = 1) -> tuple[float, str]:
    """``sigma="auto"``: the noise level of ``image`` under ``noise_model``, and the estimator used.

    Gaussian noise uses the wavelet estimator. Magnitude noise uses the estimator that
    :func:`choose_noise_estimator` picks; when neither magnitude estimator can work on the image
    (too small, too little air and too little bright tissue), the wavelet estimator, which works
    on any image with some varying 2x2 block.

    Returns
    -------
    (float, str)
        The level (per real component of the noise) and the estimator's name.

    Raises
    ------
    ValueError
        When no estimator works (a constant or empty image): an estimate of 0 is never returned.
    """
    if noise_model != "gaussian":
        with contextlib.suppress(ValueError):  # too little air and too little bright tissue
            method = choose_noise_estimator(image, noise_model, n_coils=n_coils)
            return float(estimate_sigma(image, method, n_coils=n_coils)), method
    return float(estimate_sigma_wavelet(image)), "wavelet"


def resolve_noise_model(images: list[np.ndarray], noise_model: str = "auto", *, n_coils: int = 1) -> str:
    """``noise_model`` with ``"auto"`` resolved on the images it describes.

    ``"auto"`` is ``"gaussian"`` for complex images or real images with negative values, and
    otherwise magnitude noise: ``"ncchi"`` for ``n_coils > 1``, ``"rician"`` for one coil.

    Raises
    ------
    ValueError
        For a magnitude noise model given complex images (their noise is Gaussian).
    """
    is_complex = any(np.iscomplexobj(image) for image in images)
    if noise_model != "auto":
        if is_complex and noise_model != "gaussian":
            raise ValueError(
                f"noise_model={noise_model!r} describes magnitude images, but X is complex: the noise of "
                "complex images is Gaussian (use noise_model='gaussian' or 'auto')"
            )
        return noise_model
    if is_complex or any(float(np.min(image)) < 0 for image in images):
        return "gaussian"
    return "ncchi" if n_coils > 1 else "rician"
