"""A small linear filter over denoised estimates, fitted by Stein's unbiased risk estimate (SURE).

For ``y = x + sigma n`` (``n`` white, unit Gaussian) and ``K`` estimates ``f_k(y)`` of ``x`` (arrays
of one shape), the filtered output

    g(i) = sum_k sum_s h_{k,s} f_k(i + s),

with ``s`` over the shifts of a ``(2r+1)``-wide neighbourhood along each spatial axis (the edge
repeated beyond the border), is linear in the coefficients ``h``. With the columns ``X_j`` (one
per estimate and shift, ``j = (k, s)``), its SURE is a quadratic in ``h``:

    SURE(h) = |X h - y|^2 / N - sigma^2 + 2 sigma^2 div(X h) / N
            = h^T A h - 2 h^T c + |y|^2 / N - sigma^2 + 2 sigma^2 h^T d,

``A = X^T X / N``, ``c = X^T y / N``, ``d_j = div(X_j) / N``, minimised by
``h = A^{-1} (c - sigma^2 d)``. The divergence of a shifted estimate, ``sum_i d f_k(i+s) / d y_i``,
comes from one Monte-Carlo probe ``b`` (Ramani et al. 2008): ``b^T (f_k(y + eps b) - f_k(y))(. + s)
/ eps``, the same shift applied to the response. SURE being unbiased for the mean squared error
against ``x`` for every ``h``, the fit needs no clean data; with a few dozen coefficients and
thousands of pixels its minimiser is close to the best filter that clean data would give.
docs/method.md section 6, "A SURE filter over the estimates".
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["apply_sure_filter", "fit_sure_filter", "filter_radii"]

#: Values per block of columns built at once (bounds the memory of a fit to about 8 bytes times this).
BLOCK_VALUES = 1 << 23


def filter_radii(shape: tuple[int, ...], radius: int) -> tuple[int, ...]:
    """Radius of the neighbourhood along each spatial axis of ``shape``: ``radius``, or 0 across fewer than ``2 radius + 1``."""
    return tuple(radius if size > 2 * radius else 0 for size in shape)


def _shifts(radii: tuple[int, ...]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(2 * r + 1) for r in radii)))


def _columns(padded: list[np.ndarray], radii: tuple[int, ...], rows: slice, shape: tuple[int, ...]) -> np.ndarray:
    """Columns ``(n_columns, n)`` of rows ``rows`` (along the first spatial axis) of every estimate and shift."""
    columns = []
    for estimate in padded:
        for shift in _shifts(radii):
            window = (slice(None), slice(rows.start + shift[0], rows.stop + shift[0]))
            window += tuple(slice(s, s + size) for s, size in zip(shift[1:], shape[1:]))
            columns.append(estimate[window].reshape(-1))
    return np.stack(columns).astype(np.float64, copy=False)


def _padded(estimates: np.ndarray, radii: tuple[int, ...]) -> list[np.ndarray]:
    return [np.pad(estimate, [(0, 0), *((r, r) for r in radii)], mode="edge") for estimate in estimates]


def _row_blocks(shape: tuple[int, ...], n_columns: int) -> list[slice]:
    per_row = n_columns * int(np.prod(shape[1:]))
    step = max(1, BLOCK_VALUES // max(per_row, 1))
    return [slice(start, min(start + step, shape[0])) for start in range(0, shape[0], step)]


def fit_sure_filter(
    estimates: np.ndarray,
    responses: np.ndarray,
    probe: np.ndarray,
    epsilon: float,
    noisy: np.ndarray,
    sigma: float,
    radius: int = 1,
) -> np.ndarray:
    """Coefficients of the filter over ``estimates`` that minimise SURE.

    Parameters
    ----------
    estimates : ndarray of shape (K, C, *spatial)
        ``f_k(y)``: ``K`` estimates of the ``C`` channels of ``noisy`` (the channels share the
        filter; it shifts along the spatial axes only).
    responses : ndarray of shape (K, C, *spatial)
        ``f_k(y + epsilon probe)``: the same estimates of the probed input.
    probe : ndarray of shape (C, *spatial)
        The probe ``b`` (unit Gaussian or Rademacher).
    epsilon : float
        Size of the probe's step, > 0.
    noisy : ndarray of shape (C, *spatial)
        ``y``, noise of level ``sigma`` per real component, in the units of ``estimates``.
    sigma : float
        Noise level, > 0.
    radius : int, default=1
        Half-width of the neighbourhood (:func:`filter_radii`); 0 gives one weight per estimate.

    Returns
    -------
    ndarray of shape (K * n_shifts,)
        ``h``, estimate-major, shifts in :func:`itertools.product` order; for
        :func:`apply_sure_filter`.

    Examples
    --------
    One estimate, ``f(y) = y / 2`` (divergence 1/2 per pixel; a probe of ones measures it
    exactly), no neighbourhood: SURE rescales it to ``(1 - sigma^2 / mean(y^2)) y``, the
    James-Stein shrinkage, so its coefficient is ``2 (1 - 1/4)``:

    >>> import numpy as np
    >>> y = np.full((1, 4, 4), 2.0)  # mean square 4, sigma 1
    >>> ones = np.ones_like(y)
    >>> fit_sure_filter((y / 2)[None], ((y + 0.1 * ones) / 2)[None], ones, 0.1, y, 1.0, radius=0).round(6).tolist()
    [1.5]
    """
    estimates, responses = np.asarray(estimates), np.asarray(responses)
    if (
        estimates.shape != responses.shape
        or estimates.shape[1:] != np.shape(noisy)
        or np.shape(probe) != np.shape(noisy)
    ):
        raise ValueError(
            f"need estimates and responses (K, *shape) and noisy, probe of that shape; got {estimates.shape}, "
            f"{responses.shape}, {np.shape(noisy)} and {np.shape(probe)}"
        )
    shape = estimates.shape[2:]
    radii = filter_radii(shape, radius)
    n_columns = estimates.shape[0] * len(_shifts(radii))
    padded_estimates, padded_changes = _padded(estimates, radii), _padded(responses - estimates, radii)
    gram, correlation, divergence = np.zeros((n_columns, n_columns)), np.zeros(n_columns), np.zeros(n_columns)
    for rows in _row_blocks(shape, n_columns * estimates.shape[1]):
        columns = _columns(padded_estimates, radii, rows, shape)
        gram += columns @ columns.T
        correlation += columns @ np.asarray(noisy[:, rows], dtype=np.float64).reshape(-1)
        changes = _columns(padded_changes, radii, rows, shape)
        divergence += changes @ np.asarray(probe[:, rows], dtype=np.float64).reshape(-1) / epsilon
    count = np.prod(np.shape(noisy))
    right = (correlation - sigma**2 * divergence) / count
    return np.linalg.lstsq(gram / count, right, rcond=None)[0]


def apply_sure_filter(estimates: np.ndarray, coefficients: np.ndarray, radius: int = 1) -> np.ndarray:
    """``sum_k sum_s h_{k,s} f_k(. + s)``: the filter of :func:`fit_sure_filter` applied to ``estimates``.

    Parameters
    ----------
    estimates : ndarray of shape (K, C, *spatial)
        The estimates (for example self-ensembled versions of those the filter was fitted on).
    coefficients : ndarray of shape (K * n_shifts,)
        From :func:`fit_sure_filter` with the same ``radius`` and shape.
    radius : int, default=1

    Returns
    -------
    ndarray of shape (C, *spatial), the dtype of ``estimates``
    """
    estimates = np.asarray(estimates)
    shape = estimates.shape[2:]
    radii = filter_radii(shape, radius)
    if np.shape(coefficients) != (estimates.shape[0] * len(_shifts(radii)),):
        raise ValueError(
            f"{np.shape(coefficients)} coefficients do not match estimates {estimates.shape}, radius {radius}"
        )
    padded = _padded(estimates, radii)
    output = np.empty(estimates.shape[1:], dtype=np.float64)
    for rows in _row_blocks(shape, len(coefficients) * estimates.shape[1]):
        output[:, rows] = (coefficients @ _columns(padded, radii, rows, shape)).reshape(output[:, rows].shape)
    return output.astype(estimates.dtype, copy=False)
