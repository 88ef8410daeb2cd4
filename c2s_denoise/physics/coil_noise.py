"""Coil noise covariance from the data itself, and prewhitening (docs/method.md section 10).

Thermal noise in multi-coil k-space is complex Gaussian, white over k-space samples and
correlated between coils with covariance ``Psi = E[n n^H]`` (``N x N``, Hermitian). With the
orthonormal inverse FFT the noise of the coil images has the same covariance at every pixel.

Estimate
    The finest diagonal Haar coefficient of each 2x2 block, ``d = (a - b - c + e) / 2`` per
    coil, is an orthonormal combination of pixels, so for pure noise ``d ~ CN(0, Psi)``; smooth
    signal cancels in it. Signal at edges and in textured tissue makes some ``d`` large. The
    estimate trims them with their Mahalanobis energy ``q = d^H Psi^-1 d``, which for pure
    noise is ``Gamma(N, 1)``: keep the samples with ``q`` below the ``keep`` quantile of that
    law, take their covariance, and divide by the truncation factor
    ``P(N + 1, q_keep) / P(N, q_keep)`` (``P``: regularised lower incomplete gamma), which
    makes the trimmed covariance unbiased for pure noise; repeat to convergence. (For one or two
    coils the fixed point amplifies the sampling noise of the scale several-fold: a few percent
    on a 128x128 slice, below 1.5% on a few slices of 256x256; a plain median of ``q`` is more
    precise but much less robust to signal, which we measured on a phantom.) A dedicated
    noise scan (``noise_samples``, e.g. the noise-only dataset of an ISMRMRD export) is used
    as it is, untrimmed.

Prewhitening
    ``W = sqrt(2) L^-1`` with ``Psi = L L^H`` (Cholesky) gives coil images ``W c`` whose noise is
    white and has unit standard deviation in each real component (``E[n n^H] = 2 I``): "SNR
    units", in which the noise level C2S needs is exactly 1.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammainc, gammaincinv

__all__ = ["diagonal_haar", "estimate_noise_covariance", "whitening_matrix"]

# Fewest noise samples per coil for a usable covariance estimate.
_MIN_SAMPLES_PER_COIL = 50


def diagonal_haar(coil_images: np.ndarray) -> np.ndarray:
    """Finest diagonal Haar coefficients ``(N, n_blocks)`` of coil images ``(..., N, H, W)``.

    Leading axes (slices) are pooled. Odd rows/columns at the end are dropped.
    """
    images = np.asarray(coil_images)
    if images.ndim < 3:
        raise ValueError(f"expected coil images (..., coils, H, W), got shape {images.shape}")
    height, width = images.shape[-2:]
    s = images[..., : height - height % 2, : width - width % 2]
    d = (s[..., 0::2, 0::2] - s[..., 0::2, 1::2] - s[..., 1::2, 0::2] + s[..., 1::2, 1::2]) / 2.0
    n_coils = images.shape[-3]
    return np.moveaxis(d, -3, 0).reshape(n_coils, -1)


def _trimmed_covariance(samples: np.ndarray, keep: float, max_iter: int) -> np.ndarray:
    """Covariance of ``samples`` ``(N, M)`` trimmed by Mahalanobis energy, see the module docstring."""
    n_coils = samples.shape[0]
    threshold = float(gammaincinv(n_coils, keep))
    factor = float(gammainc(n_coils + 1, threshold) / gammainc(n_coils, threshold))
    # start: the half of the samples with the least total energy, scaled as if the covariance were isotropic
    energy = np.sum(np.abs(samples) ** 2, axis=0)
    start = energy <= np.median(energy)
    half = float(gammaincinv(n_coils, 0.5))
    covariance = (samples[:, start] @ samples[:, start].conj().T) / start.sum()
    covariance /= float(gammainc(n_coils + 1, half) / gammainc(n_coils, half))
    for _ in range(max_iter):
        try:
            inverse = np.linalg.inv(covariance)
        except np.linalg.LinAlgError:
            raise ValueError(
                "the coil noise covariance is singular (a coil without noise, or duplicated coils)"
            ) from None
        q = np.real(np.einsum("im,ij,jm->m", samples.conj(), inverse, samples, optimize=True))
        kept = q <= threshold
        if kept.sum() < _MIN_SAMPLES_PER_COIL * n_coils:
            break
        updated = (samples[:, kept] @ samples[:, kept].conj().T) / kept.sum() / factor
        change = np.linalg.norm(updated - covariance) / np.linalg.norm(covariance)
        covariance = updated
        if change < 1e-4:
            break
    return (covariance + covariance.conj().T) / 2.0


def estimate_noise_covariance(
    coil_images: np.ndarray | None = None,
    *,
    noise_samples: np.ndarray | None = None,
    keep: float = 0.5,
    max_iter: int = 30,
    max_samples: int = 400_000,
    seed: int = 0,
) -> np.ndarray:
    """Coil noise covariance ``Psi = E[n n^H]`` of complex coil images.

    Parameters
    ----------
    coil_images : ndarray of shape (..., N, H, W), complex, optional
        Fully sampled coil images from the orthonormal inverse FFT (slices on leading axes are
        pooled). Used when ``noise_samples`` is None.
    noise_samples : ndarray of shape (N, M), complex, optional
        Noise-only samples (a noise pre-scan); their sample covariance is returned.
    keep : float, default=0.5
        Fraction of pure-noise samples that the trimming keeps (the rest of the probability
        mass, and most signal, is cut); smaller is more robust to signal, larger less noisy.
    max_iter : int, default=30
        Trimming iterations.
    max_samples : int, default=400000
        Blocks used at most (a seeded random subset beyond that).
    seed : int, default=0
        Seed of that subset.

    Returns
    -------
    ndarray of shape (N, N), complex128
        Hermitian, positive definite.

    Raises
    ------
    ValueError
        For real input, non-finite values, fewer than 50 samples per coil, or a singular
        covariance (a coil that is all zero, or coils that are copies of each other).
    """
    if noise_samples is not None:
        samples = np.asarray(noise_samples)
        if samples.ndim != 2:
            raise ValueError(f"noise samples must be (coils, samples), got shape {samples.shape}")
    elif coil_images is not None:
        if np.asarray(coil_images).dtype.kind != "c":
            raise ValueError("coil images must be complex to estimate the coil noise covariance")
        samples = diagonal_haar(coil_images)
    else:
        raise ValueError("give coil_images or noise_samples")
    if samples.dtype.kind != "c":
        raise ValueError("noise samples must be complex")
    samples = samples.astype(np.complex128, copy=False)
    n_coils, n_samples = samples.shape
    if n_samples < _MIN_SAMPLES_PER_COIL * n_coils:
        raise ValueError(
            f"too few signal-free samples to estimate the noise of {n_coils} coil(s): {n_samples} "
            f"(need at least {_MIN_SAMPLES_PER_COIL * n_coils}); use larger images or more slices"
        )
    if not np.isfinite(samples).all():
        raise ValueError("the k-space holds NaN or infinite values")
    if n_samples > max_samples:
        chosen = np.random.default_rng(seed).choice(n_samples, max_samples, replace=False)
        samples = samples[:, np.sort(chosen)]
    if noise_samples is not None:
        covariance = samples @ samples.conj().T / samples.shape[1]
    else:
        variances = np.mean(np.abs(samples) ** 2, axis=1)
        if not np.all(variances > 0):
            raise ValueError(
                f"coil {int(np.argmin(variances))} has no noise (all zero): cannot estimate its noise level"
            )
        covariance = _trimmed_covariance(samples, keep, max_iter)
    eigenvalues = np.linalg.eigvalsh(covariance)
    if not eigenvalues.min() > 1e-10 * eigenvalues.max():
        raise ValueError("the coil noise covariance is singular (a coil without noise, or duplicated coils)")
    return covariance


def whitening_matrix(covariance: np.ndarray) -> np.ndarray:
    """``W = sqrt(2) L^-1`` (``covariance = L L^H``): ``W c`` has unit noise per real component.

    Parameters
    ----------
    covariance : ndarray of shape (N, N)
        Coil noise covariance ``E[n n^H]``.

    Returns
    -------
    ndarray of shape (N, N), complex128
        Lower triangular; ``W @ covariance @ W.conj().T == 2 I``.
    """
    lower = np.linalg.cholesky(np.asarray(covariance, dtype=np.complex128))
    return np.sqrt(2.0) * np.linalg.inv(lower)
