"""Convex weights of several denoised estimates that minimise Stein's unbiased risk estimate (SURE).

For ``y = x + sigma n`` (``n`` white, unit Gaussian) and ``K`` estimates ``f_k(y)`` of ``x``, the
weighted mean ``f_w = sum_k w_k f_k`` with ``sum_k w_k = 1`` and ``w >= 0`` has

    SURE(w) = |f_w - y|^2 / N - sigma^2 + 2 sigma^2 div(f_w) / N
            = w^T A w + 2 sigma^2 w^T d - sigma^2,

with ``A_jk = <f_j - y, f_k - y> / N`` (since the weights sum to one, ``f_w - y = sum_k w_k (f_k -
y)``) and ``d_k = div(f_k) / N`` (the divergence is linear in ``f``). ``SURE(w)`` is an unbiased
estimate of the mean squared error of ``f_w`` against ``x`` that needs no clean data, and it is a
quadratic in ``w``: the minimiser over the simplex is found exactly by solving the equality-
constrained problem on every support and keeping the best feasible one (``2^K - 1`` supports,
meant for a handful of estimates). docs/method.md section 6, "Three slicing planes".
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["sure_weights"]


def sure_weights(residuals: np.ndarray, divergences: np.ndarray, sigma: float) -> np.ndarray:
    """Weights ``w >= 0``, ``sum(w) = 1``, minimising SURE of ``sum_k w_k f_k(y)``.

    Parameters
    ----------
    residuals : ndarray of shape (K, N)
        ``f_k(y) - y`` of each estimate, flattened (real; complex data as its real components).
    divergences : ndarray of shape (K,)
        ``div(f_k) / N`` of each estimate (for example from one Monte-Carlo probe, Ramani et al.
        2008).
    sigma : float
        Noise level of ``y`` per real component, in the units of ``residuals``.

    Returns
    -------
    ndarray of shape (K,)
        The weights (float64). Ties go to the support found first (the estimates' order).

    Examples
    --------
    The identity ``f_1(y) = y`` (divergence 1) and the zero image (divergence 0): SURE's weight on
    zero is ``sigma^2 / mean(y^2)``, the James-Stein shrinkage.

    >>> import numpy as np
    >>> y = np.full(1000, 2.0)  # mean square 4, sigma 1
    >>> sure_weights(np.stack([y - y, -y]), np.array([1.0, 0.0]), 1.0).round(3).tolist()
    [0.75, 0.25]
    """
    residuals = np.asarray(residuals, dtype=np.float64)
    divergences = np.asarray(divergences, dtype=np.float64)
    if residuals.ndim != 2 or divergences.shape != residuals.shape[:1] or residuals.shape[0] < 1:
        raise ValueError(
            f"need residuals (K, N) and divergences (K,); got shapes {residuals.shape} and {divergences.shape}"
        )
    count = residuals.shape[0]
    gram = residuals @ residuals.T / residuals.shape[1]
    linear = sigma**2 * divergences
    best_risk, best = np.inf, None
    for size in range(1, count + 1):
        for support in map(list, itertools.combinations(range(count), size)):
            # stationarity on the support: 2 A_S w_S + 2 sigma^2 d_S = lambda 1, with 1^T w_S = 1
            system = np.zeros((size + 1, size + 1))
            system[:size, :size] = 2 * gram[np.ix_(support, support)]
            system[:size, size] = -1.0
            system[size, :size] = 1.0
            right = np.concatenate([-2 * linear[support], [1.0]])
            solution = np.linalg.lstsq(system, right, rcond=None)[0][:size]
            if (solution < -1e-12).any() or not np.isfinite(solution).all():
                continue
            weights = np.zeros(count)
            weights[support] = np.clip(solution, 0.0, None) / max(float(np.clip(solution, 0.0, None).sum()), 1e-300)
            risk = float(weights @ gram @ weights + 2 * weights @ linear)
            if best is None or risk < best_risk - 1e-12 * abs(best_risk):
                best_risk, best = risk, weights
    return np.eye(count)[0] if best is None else best
