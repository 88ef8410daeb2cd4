"""A variance-stabilising transform for noncentral-chi (Rician) magnitude noise, and its exact unbiased inverse.

A magnitude ``M = sigma * chi`` of ``N`` coils (:mod:`c2s_denoise.physics.magnitude`) has a spread that
depends on the signal, about ``0.66 sigma`` in air for one coil and ``sigma`` in bright tissue,
and a skewed law near the background. A monotone ``f`` applied to ``M / sigma`` can make
``f(M / sigma)`` close to a Gaussian of spread 1 for *every* noise-free amplitude ``A`` (after
Foi 2011, "Noise estimation and removal in MR imaging: the variance-stabilization approach"); a
Gaussian denoiser then works where its assumption holds, air included, and its output, an
estimate of ``E[f(M / sigma) | A]``, is mapped back by the inverse of that mean
(docs/method.md section 10).

``f`` is designed once per ``N`` (in under a second) on the whole law, not only its variance: a
transform with the right variance but near-flat stretches piles the air into spikes, which a
score-based denoiser reads as signal. Its slope is piecewise linear in ``m = M / sigma`` on 30
knots over ``[0, 3 sqrt(N) + 6]`` and 1 beyond (``f(m) = m + c`` where ``M`` is already Gaussian
of spread ``sigma``), and the knot slopes minimise the squared 2-Wasserstein distance between
the law of ``f(M / sigma)`` (shifted) and ``N(0, 1)``, summed over noncentralities ``a = A / sigma``
in ``[0, 3 sqrt(N) + 10]``: for an increasing ``f`` the quantiles of ``f(M)`` are ``f`` of the
noncentral-chi quantiles, and ``f`` is linear in its slopes, so this is a non-negative least
squares problem. The result (one coil): spread 0.91 in air and 0.99-1.04 elsewhere, Kolmogorov
distance to a Gaussian below 0.015 at every ``a``. The mean ``g(a) = E[f(M / sigma) | a]`` is
tabulated by quadrature of the noncentral-chi density and by ``E[M / sigma | a] + c`` beyond;
``f`` is shifted so that ``g(0) = 0`` (the stabilised air is zero-mean); ``g`` is increasing, so
``g**-1`` is the exact unbiased inverse of the mean (values at or below 0 map to 0), with an
optional soft threshold near the floor (``floor_shrinkage``, see :func:`unstabilise`).

Everything is in units of ``sigma``: :func:`stabilise` returns ``sigma * f(M / sigma)``, whose
noise has spread close to ``sigma``, the level the Gaussian denoiser is given.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter
from scipy.optimize import nnls
from scipy.special import gammaln, ive, ndtri
from scipy.stats import chi2, ncx2

from .magnitude import _check_n_coils, _check_sigma, _in_sigma_units, ncchi_mean, unbias_magnitude

__all__ = [
    "FLOOR_GATE",
    "floor_error",
    "floor_weights",
    "stabilise",
    "stabilised_mean",
    "stabilised_std",
    "unstabilise",
    "unstabilise_denoised",
]

#: ``(low, high, size)`` of :func:`floor_weights`: full shrinkage where the in-plane ``size x size``
#: median of the estimate is below ``low`` error spreads, none above ``high``.
FLOOR_GATE = (2.0, 4.0, 5)

_KNOTS = 30
_QUANTILES = 200  # quantile levels (i + 1/2) / 200 matched to the Gaussian's
_SMOOTHING = 1.0  # weight of the slopes' second differences in the design
_GRID_STEP = 0.005  # quadrature step in m = M / sigma


@dataclass(frozen=True)
class _Transform:
    """The designed ``f`` on a grid of ``m`` and the table of its mean ``g(a)``."""

    m: np.ndarray  # grid of m = M / sigma, from _GRID_STEP to m[-1]
    f: np.ndarray  # f(m) on the grid; beyond it f(m) = f[-1] + (m - m[-1])
    start: float  # f(0)
    offset: float  # c = f(m) - m beyond the last knot
    mean_table: np.ndarray  # g(a) on a_table
    a_table: np.ndarray
    n_coils: float
    floor_slope: float  # k = dg / d(a**2) at a = 0


def _log_density(a: np.ndarray, m: np.ndarray, n: float) -> np.ndarray:
    """``log p(m | a)`` of the unit-sigma noncentral chi with ``2n`` degrees of freedom (rows ``a``, columns ``m``)."""
    a_col, m_row = a[:, None], m[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = (
            n * np.log(m_row)
            - (n - 1.0) * np.log(np.where(a_col > 0, a_col, 1.0))
            - 0.5 * (m_row - a_col) ** 2
            + np.log(ive(n - 1.0, a_col * m_row))
        )
        central = (2.0 * n - 1.0) * np.log(m_row) - 0.5 * m_row**2 - (n - 1.0) * math.log(2.0) - gammaln(n)
    return np.where(a_col > 0, positive, central)


def _weights(a: np.ndarray, m: np.ndarray, n: float) -> np.ndarray:
    """Quadrature weights ``p(m | a) dm``, each row normalised to sum to 1."""
    density = np.exp(_log_density(a, m, n))
    density[~np.isfinite(density)] = 0.0
    return density / density.sum(axis=1, keepdims=True)


def _integrated_hats(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """``int_0^x hat_k(t) dt`` for the hat function ``hat_k`` of each knot (columns), equally spaced knots from 0."""
    width = knots[1] - knots[0]
    lo, hi = knots - width, knots + width
    t = np.clip(x[:, None], np.maximum(lo, 0.0), hi)

    def antiderivative(u: np.ndarray) -> np.ndarray:  # of hat_k, from lo_k
        rising = (u - lo) ** 2 / (2.0 * width)
        falling = 0.5 * width + (u - knots) - (u - knots) ** 2 / (2.0 * width)
        return np.where(u <= knots, rising, falling)

    return antiderivative(t) - antiderivative(np.maximum(lo, 0.0)[None, :])


def _fixed_part(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """The part of ``f`` that the design does not choose: slope 1 at the last knot and beyond it."""
    return _integrated_hats(np.minimum(x, knots[-1]), knots)[:, -1] + np.maximum(x - knots[-1], 0.0)


def _slope_design(n: float, knots: np.ndarray) -> np.ndarray:
    """Knot slopes (the last one is fixed at 1) of the ``f`` whose quantiles best match a unit Gaussian's.

    For a monotone ``f`` the ``p``-quantile of ``f(M)`` is ``f(q_a(p))``, with ``q_a`` the
    noncentral-chi quantile, and ``f`` is linear in its knot slopes, so the least-squares
    distance ``sum_a sum_p (f(q_a(p)) - c_a - Phi**-1(p))**2`` (each ``c_a`` free: a shift) with
    non-negative slopes is a non-negative least-squares problem; a small penalty on the slopes'
    second differences keeps ``f`` smooth.
    """
    knot_max = knots[-1]
    p = (np.arange(_QUANTILES) + 0.5) / _QUANTILES
    gaussian = ndtri(p)
    rows, targets = [], []
    for a in np.concatenate([np.linspace(0.0, 4.0, 41), np.linspace(4.2, knot_max + 4.0, 20)]):
        quantiles = np.sqrt(ncx2.ppf(p, 2.0 * n, a * a) if a > 0 else chi2.ppf(p, 2.0 * n))
        free = _integrated_hats(quantiles, knots)[:, :-1]
        fixed = _fixed_part(quantiles, knots)
        rows.append(free - free.mean(axis=0))  # centring removes the free shift c_a
        targets.append(gaussian - (fixed - fixed.mean()))
    smoothing = _SMOOTHING * np.diff(np.eye(len(knots) - 1), 2, axis=0)
    matrix = np.vstack([*rows, smoothing])
    target = np.concatenate([*targets, np.zeros(len(smoothing))])
    slopes, _ = nnls(matrix, target, maxiter=50 * matrix.shape[1])
    return np.append(slopes, 1.0)


@functools.lru_cache(maxsize=16)
def _transform(n: float) -> _Transform:
    """Design ``f`` for ``n`` coils (see the module docstring) and tabulate its mean."""
    knot_max = 3.0 * math.sqrt(n) + 6.0
    knots = np.linspace(0.0, knot_max, _KNOTS + 1)
    slopes = _slope_design(n, knots)
    m = np.arange(1, int(round((knot_max + 20.0) / _GRID_STEP)) + 1) * _GRID_STEP
    f = _integrated_hats(m, knots)[:, :-1] @ slopes[:-1] + _fixed_part(m, knots)
    # the mean table: quadrature up to knot_max + 10 (beyond, f(M) = M + c except with probability < 1e-20)
    a_table = np.concatenate([np.linspace(0.0, 4.0, 201)[:-1], np.linspace(4.0, knot_max + 10.0, 200)])
    mean_table = _weights(a_table, m, n) @ f
    air = mean_table[0]  # anchored so that the air's stabilised mean is 0: f(0) = -air
    f, mean_table = f - air, mean_table - air
    offset = float(f[-1] - m[-1])
    if np.any(np.diff(mean_table) <= 0):  # pragma: no cover - guards the monotonicity np.interp relies on
        raise RuntimeError("the stabilised mean table is not increasing")
    floor_slope = float(mean_table[1] / a_table[1] ** 2)
    return _Transform(
        m=m, f=f, start=-air, offset=offset, mean_table=mean_table, a_table=a_table, n_coils=n, floor_slope=floor_slope
    )


def _unit_f(values: np.ndarray, transform: _Transform) -> np.ndarray:
    """``f(m)`` for ``m >= 0`` (negative values, which a magnitude never has, are treated as 0)."""
    m = np.maximum(values, 0.0)
    inside = np.interp(m, np.concatenate([[0.0], transform.m]), np.concatenate([[transform.start], transform.f]))
    return np.where(m > transform.m[-1], m + transform.offset, inside)


def _unit_mean(a: np.ndarray, transform: _Transform) -> np.ndarray:
    """``g(a) = E[f(M / sigma) | a]`` (float64 array, ``a >= 0``)."""
    a = np.asarray(a, dtype=np.float64)
    inside = np.asarray(np.interp(a * a, transform.a_table**2, transform.mean_table))
    tail = a > transform.a_table[-1]
    if np.any(tail):
        inside[tail] = ncchi_mean(a[tail], 1.0, transform.n_coils) + transform.offset
    return inside


def stabilise(magnitude: float | np.ndarray, sigma: float | np.ndarray, n_coils: float = 1) -> float | np.ndarray:
    """The variance-stabilised magnitude ``sigma * f(M / sigma)``: noise of spread ``sigma`` at every amplitude.

    Parameters
    ----------
    magnitude : float or ndarray
        Magnitude image ``M >= 0`` (root-sum-of-squares of ``n_coils`` coils); not modified.
    sigma : float or ndarray
        Noise standard deviation of each real component of each coil image, broadcastable
        with ``magnitude``; where it is 0 the input comes back unchanged.
    n_coils : float, default=1
        Number ``N`` of coils (``2N`` degrees of freedom; an effective, non-integer number is accepted).

    Returns
    -------
    float or ndarray
        Same shape, ``>= 0``, increasing in ``M``; float32 for float32 input, float64 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> air = np.abs(rng.normal(size=200_000) + 1j * rng.normal(size=200_000))  # Rician at A = 0
    >>> stabilised = stabilise(air, 1.0)  # air: mean 0, spread close to 1, close to Gaussian
    >>> [round(float(x), 2) for x in (air.mean(), air.std(), stabilised.mean(), stabilised.std())]
    [1.25, 0.66, 0.0, 0.91]
    """
    transform = _transform(_check_n_coils(n_coils))
    return _in_sigma_units(magnitude, _check_sigma(sigma), lambda ratio: _unit_f(ratio, transform))


def stabilised_mean(amplitude: float | np.ndarray, sigma: float | np.ndarray, n_coils: float = 1) -> float | np.ndarray:
    """``E[stabilise(M) | A] = sigma * g(A / sigma)``: what a denoiser of the stabilised image estimates.

    Parameters
    ----------
    amplitude : float or ndarray
        Noise-free amplitude ``A`` (RSS of the noise-free coil images); its sign is ignored.
    sigma, n_coils
        As in :func:`stabilise`.

    Returns
    -------
    float or ndarray
        Float32 for float32 ``amplitude``, float64 otherwise.
    """
    transform = _transform(_check_n_coils(n_coils))
    return _in_sigma_units(amplitude, _check_sigma(sigma), lambda ratio: _unit_mean(ratio, transform), absolute=True)


def stabilised_std(amplitude: float | np.ndarray, n_coils: float = 1) -> np.ndarray:
    """Spread of ``f(M / sigma)`` at noncentralities ``A / sigma`` (quadrature; ``sigma`` drops out).

    The design aims at 1; a diagnostic for tests and the docs.
    """
    transform = _transform(_check_n_coils(n_coils))
    a = np.abs(np.atleast_1d(np.asarray(amplitude, dtype=np.float64)))
    weights = _weights(a, transform.m, transform.n_coils)
    mean = weights @ transform.f
    return np.sqrt(np.maximum(weights @ transform.f**2 - mean**2, 0.0))


def floor_error(stabilised_estimate: np.ndarray, min_count: int = 100) -> float:
    """Spread of the error of a denoised stabilised image, from its values below the air's level.

    The stabilised mean is 0 in air and positive elsewhere, so an estimate below 0 is error
    alone; taking that error as zero-mean Gaussian near the floor, its spread is the root mean
    square of those values (a half-normal's). 0 when fewer than ``min_count`` values are below 0
    (no air in view: nothing to measure, and the inverse stays exact).
    """
    values = np.asarray(stabilised_estimate, dtype=np.float64)
    below = values[values < 0]
    return float(np.sqrt(np.mean(below**2))) if below.size >= min_count else 0.0


def floor_weights(stabilised_estimate: np.ndarray, error: float) -> np.ndarray:
    """Where the floor shrinkage applies: 1 in air, 0 in tissue, from the estimate's neighbourhood.

    The soft threshold of :func:`unstabilise` is meant for the air, where the true amplitude is 0
    and any positive estimate is error. Dark tissue (cerebrospinal fluid in a T1 image, a few
    ``sigma`` above the floor) is near the floor too, and the threshold would pull it down
    (``t sigma**2 / (2 k A)`` at amplitude ``A``). Air is a region, not a pixel: the median of the
    estimate over each in-plane ``size x size`` neighbourhood is near 0 in air (within the error's
    spread) and stands several spreads above 0 over dark tissue; the median keeps air next to
    the head at its own level. The weight is 1 where that median is at most ``low`` spreads,
    0 from ``high`` spreads on, linear between (``FLOOR_GATE``).

    Parameters
    ----------
    stabilised_estimate : ndarray, at least 2-D
        A denoised stabilised image or stack (slices along the leading axes), in the units of ``error``.
    error : float
        The estimate's error spread (:func:`floor_error`); 0 gives weights 0 (nothing to remove).

    Returns
    -------
    ndarray of float64, the shape of ``stabilised_estimate``
        Weights in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> estimate = np.zeros((12, 12))
    >>> estimate[:, 6:] = 1.0  # air on the left, dark tissue at 10 error spreads on the right
    >>> weights = floor_weights(estimate, 0.1)
    >>> float(weights[:, :4].min()), float(weights[:, 8:].max())
    (1.0, 0.0)
    """
    low, high, size = FLOOR_GATE
    values = np.asarray(stabilised_estimate, dtype=np.float64)
    if values.ndim < 2:
        raise ValueError(f"floor_weights needs an image (2-D or more), got shape {values.shape}")
    if not error > 0:
        return np.zeros(values.shape)
    local = median_filter(values, size=(1,) * (values.ndim - 2) + (size, size), mode="nearest")
    weights = np.clip((high * error - local) / ((high - low) * error), 0.0, 1.0)
    return np.where(np.isnan(weights), 0.0, weights)  # next to NaN: no shrinkage


def unstabilise(
    stabilised: float | np.ndarray,
    sigma: float | np.ndarray,
    n_coils: float = 1,
    *,
    floor_shrinkage: float | np.ndarray = 0.0,
) -> float | np.ndarray:
    """The exact unbiased inverse: the amplitude ``A`` whose :func:`stabilised_mean` is the given value.

    ``g(a) = E[f(M / sigma) | a]`` is increasing, so the inverse is unique; values at or below
    ``g(0)`` (the air's stabilised mean) map to 0. Read from the table of ``g`` (linear in ``a**2``,
    in which ``g`` is close to linear at both ends) and beyond it from the inverse of the
    noncentral-chi mean.

    Near the floor ``g(a) = g(0) + k a**2``: the inverse is a square root, which turns a small
    error ``e`` of an estimate of ``g`` into an amplitude error ``sqrt(e / k)``; in air half the
    errors are positive and come back as scattered bright pixels. ``floor_shrinkage = t > 0``
    soft-thresholds the (unbiased, near the floor) estimate of ``a**2`` by ``t / k``:
    ``A = sigma * sqrt(max(g**-1(v / sigma)**2 - t / k, 0))``, with ``t`` a multiple of the
    estimate's error spread in units of ``sigma`` (see :func:`floor_error`); the bias this leaves
    at amplitude ``A`` is about ``t sigma**2 / (2 k A)``, negligible in tissue.

    Parameters
    ----------
    stabilised : float or ndarray
        An estimate of the stabilised mean (a denoised stabilised image); not modified.
    sigma, n_coils
        As in :func:`stabilise`; where ``sigma`` is 0 the input comes back unchanged.
    floor_shrinkage : float or ndarray, default=0.0
        ``t >= 0``, in units of ``sigma``; 0 is the exact inverse. An array (broadcast against
        ``stabilised``) gives each value its own ``t`` (see :func:`floor_weights`).

    Returns
    -------
    float or ndarray
        ``A >= 0``; float32 for float32 input, float64 otherwise. NaN stays NaN.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([0.0, 0.5, 2.0, 40.0])
    >>> np.round(unstabilise(stabilised_mean(a, 0.1, n_coils=4), 0.1, n_coils=4), 6)
    array([ 0. ,  0.5,  2. , 40. ])
    """
    transform = _transform(_check_n_coils(n_coils))
    shrinkage = np.asarray(floor_shrinkage, dtype=np.float64)
    if not np.all(np.isfinite(shrinkage)) or np.any(shrinkage < 0):
        shown = repr(floor_shrinkage) if shrinkage.ndim == 0 else "an array with negative or non-finite values"
        raise ValueError(f"floor_shrinkage must be finite and >= 0, got {shown}")
    return _in_sigma_units(stabilised, _check_sigma(sigma), lambda ratio: _unit_inverse(ratio, transform, shrinkage))


def _unit_inverse(ratio: np.ndarray, transform: _Transform, floor_shrinkage: np.ndarray) -> np.ndarray:
    """``a`` with ``g(a) = ratio`` (unit sigma), ``a**2`` soft-thresholded by ``floor_shrinkage / k``; NaN stays NaN."""
    a2 = np.asarray(np.maximum(np.interp(ratio, transform.mean_table, transform.a_table**2), 0.0))
    tail = ratio > transform.mean_table[-1]
    if np.any(tail):
        a2[tail] = unbias_magnitude(ratio[tail] - transform.offset, 1.0, transform.n_coils) ** 2
    a2 = np.where(ratio <= transform.mean_table[0], 0.0, a2)
    if np.any(floor_shrinkage > 0):
        a2 = np.maximum(a2 - np.broadcast_to(floor_shrinkage, a2.shape) / transform.floor_slope, 0.0)
    return np.where(np.isnan(ratio), np.nan, np.sqrt(a2))


def unstabilise_denoised(
    denoised: np.ndarray, sigma: float, n_coils: float = 1, *, floor_shrinkage: float = 0.0
) -> np.ndarray:
    """The amplitude from a denoised stabilised image or stack, with the floor of its own error removed in the air.

    :func:`floor_error` measures the estimate's error spread ``s`` (input units), and
    :func:`unstabilise` soft-thresholds ``a**2`` by ``floor_shrinkage * s / sigma`` times
    :func:`floor_weights`: the whole threshold in air, none over tissue. Any denoiser's
    stabilised output goes back this way (C2S's and the benchmark's BM3D/BM4D rows alike).

    Parameters
    ----------
    denoised : ndarray, at least 2-D
        The denoised stabilised image(s), in input units (slices along the leading axes).
    sigma : float
        The noise level the image was stabilised with; 0 returns the input unchanged.
    n_coils : float, default=1
    floor_shrinkage : float, default=0.0
        ``t >= 0`` in spreads of the measured error; 0 is the exact inverse.

    Returns
    -------
    ndarray
        The amplitude estimate ``A >= 0``.
    """
    error = floor_error(denoised)
    shrinkage: float | np.ndarray = 0.0
    if sigma > 0 and floor_shrinkage > 0 and error > 0:
        shrinkage = floor_shrinkage * error / sigma * floor_weights(denoised, error)
    return unstabilise(denoised, sigma, n_coils, floor_shrinkage=shrinkage)
