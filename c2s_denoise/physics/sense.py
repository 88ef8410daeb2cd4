"""Uniform Cartesian undersampling, its SENSE reconstruction and the exact noise map of that reconstruction.

An image ``m`` of shape ``(H, W)`` is seen by ``N`` coils of sensitivities ``c_j``. Keeping every
``R``-th phase-encode line (axis 0) of each coil's k-space (orthonormal FFT), zero-filling and
multiplying by ``R`` gives an image of period ``H / R`` along axis 0: the reduced field of view,
in which each pixel ``y < H / R`` holds the sum of the ``R`` pixels that fold onto it,

    a_j(y, x) = sum_{s=0}^{R-1} c_j(y + s H / R, x) m(y + s H / R, x) + n_j(y, x).

Only ``H / R`` of the ``H`` k-space lines carry noise, and the factor ``R`` scales it, so if the
fully sampled coil images have noise of standard deviation ``sigma`` per real component, ``n_j``
is complex Gaussian of standard deviation ``sigma sqrt(R)`` per real component, white over the
reduced pixels, with coil covariance ``E[n n^H] = 2 sigma^2 R Psi``.

Noise covariance
    ``noise_covariance`` is taken up to scale: it is divided by the mean of its diagonal, so that
    ``sigma`` stays the mean per-component standard deviation of the coils (the output of
    :func:`c2s_denoise.physics.simulate.noise_covariance` for any ``sigma`` can be passed as it
    is). None means ``Psi = I``: independent coils of equal level ``sigma``.

SENSE
    Per reduced pixel the ``R`` folded values ``v`` solve ``a = S v + n`` with ``S`` the
    ``N x R`` matrix ``S[j, s] = c_j(y + s H / R, x)``. The weighted least-squares solution
    ``v = (S^H Psi^-1 S)^-1 S^H Psi^-1 a`` is exact without noise, and its noise is complex
    Gaussian with covariance ``2 sigma^2 R (S^H Psi^-1 S)^-1``: per real component the standard
    deviation at each unfolded pixel is ``sigma sqrt(R) sqrt(diag((S^H Psi^-1 S)^-1))``
    (:func:`sense_noise_map`). The g-factor is ``g = sqrt(diag(A^-1) diag(A))`` with
    ``A = S^H Psi^-1 S`` (Pruessmann et al. 1999), at least 1; for maps normalised by
    :func:`normalise_coil_maps` and ``Psi = I``, ``diag(A) = 1`` and the noise map is
    ``sigma sqrt(R) g``; at ``R = 1`` it is ``sigma`` everywhere.

The coil maps are assumed known (no ESPIRiT or calibration-line estimate is simulated).
"""

from __future__ import annotations

import numpy as np

__all__ = ["g_factor", "normalise_coil_maps", "sense_noise_map", "sense_reconstruct", "undersample"]


def normalise_coil_maps(maps: np.ndarray) -> np.ndarray:
    """Scale coil sensitivities so that ``sum_j |c_j|^2 = 1`` at every pixel (as ESPIRiT maps are).

    Parameters
    ----------
    maps : ndarray of shape (n_coils, H, W)
        Complex coil sensitivities.

    Returns
    -------
    ndarray of shape (n_coils, H, W), complex128
        The normalised maps; pixels where every coil is exactly 0 stay 0.

    Raises
    ------
    ValueError
        If ``maps`` is not three-dimensional.
    """
    maps = np.asarray(maps, dtype=np.complex128)
    if maps.ndim != 3:
        raise ValueError(f"coil maps must have shape (n_coils, H, W), got shape {maps.shape}")
    norm = np.sqrt(np.sum(np.abs(maps) ** 2, axis=0))
    return maps / np.where(norm > 0, norm, 1.0)


def _check_maps(coil_maps: np.ndarray, acceleration: int) -> tuple[np.ndarray, int]:
    """The maps as complex128 ``(n_coils, H, W)`` and ``R`` as an int, with ``H`` divisible by ``R``."""
    maps = np.asarray(coil_maps, dtype=np.complex128)
    if maps.ndim != 3:
        raise ValueError(f"coil maps must have shape (n_coils, H, W), got shape {maps.shape}")
    if isinstance(acceleration, (bool, np.bool_)) or int(acceleration) != acceleration or acceleration < 1:
        raise ValueError(f"acceleration must be an integer >= 1, got {acceleration!r}")
    acceleration = int(acceleration)
    height = maps.shape[1]
    if height % acceleration:
        raise ValueError(
            f"the image height {height} (axis 0, phase encode) is not divisible by the acceleration "
            f"{acceleration}: pad the image to a multiple of {acceleration} rows"
        )
    return maps, acceleration


def _normalised_covariance(noise_covariance: np.ndarray | None, n_coils: int) -> np.ndarray:
    """``Psi`` divided by the mean of its diagonal (identity for None), checked."""
    if noise_covariance is None:
        return np.eye(n_coils, dtype=np.complex128)
    psi = np.asarray(noise_covariance, dtype=np.complex128)
    if psi.shape != (n_coils, n_coils):
        raise ValueError(
            f"noise_covariance must have shape ({n_coils}, {n_coils}) for {n_coils} coils, got {psi.shape}"
        )
    if not np.allclose(psi, psi.conj().T, rtol=1e-10, atol=1e-12 * np.abs(psi).max()):
        raise ValueError("noise_covariance must be Hermitian")
    scale = float(np.mean(np.real(np.diag(psi))))
    if not scale > 0:
        raise ValueError("noise_covariance must have a positive diagonal")
    return psi / scale


def _cholesky(psi: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(psi)
    except np.linalg.LinAlgError:
        raise ValueError("noise_covariance must be positive definite") from None


def _folded(maps: np.ndarray, acceleration: int) -> np.ndarray:
    """Sensitivity matrices ``S`` per reduced pixel, shape ``(H / R, W, n_coils, R)``."""
    n_coils, height, width = maps.shape
    folded = maps.reshape(n_coils, acceleration, height // acceleration, width)  # [j, s, y, x]
    return np.transpose(folded, (2, 3, 0, 1))


def _unfold(values: np.ndarray) -> np.ndarray:
    """Put the ``R`` values of each reduced pixel ``(..., H / R, W, R)`` back on the full grid ``(..., H, W)``."""
    moved = np.moveaxis(values, -1, -3)  # (..., R, H / R, W)
    return moved.reshape(*moved.shape[:-3], moved.shape[-3] * moved.shape[-2], moved.shape[-1])


def _whitened_system(
    coil_maps: np.ndarray, acceleration: int, noise_covariance: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Whitened ``L^-1 S`` per reduced pixel, the normal matrices ``A = S^H Psi^-1 S``, ``L`` and ``R``."""
    maps, acceleration = _check_maps(coil_maps, acceleration)
    lower = _cholesky(_normalised_covariance(noise_covariance, maps.shape[0]))
    whitened = np.linalg.solve(lower, _folded(maps, acceleration))  # L^-1 S, broadcast over pixels
    normal = np.swapaxes(whitened.conj(), -1, -2) @ whitened
    return whitened, normal, lower, acceleration


def undersample(
    image: np.ndarray,
    coil_maps: np.ndarray,
    acceleration: int,
    sigma: float,
    *,
    seed: int | np.random.Generator | None = 0,
    noise_covariance: np.ndarray | None = None,
) -> np.ndarray:
    """Aliased reduced-field-of-view coil images of ``R``-fold uniform undersampling along axis 0.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The object (real or complex); ``H`` must be divisible by ``acceleration``.
    coil_maps : ndarray of shape (n_coils, H, W)
        Complex coil sensitivities.
    acceleration : int
        The acceleration ``R``: every ``R``-th phase-encode line is kept.
    sigma : float
        Noise standard deviation per real component of the *fully sampled* coil images (mean
        over coils when ``noise_covariance`` is given); 0 gives the noise-free model.
    seed : int, numpy.random.Generator or None, default=0
        Seed of the noise.
    noise_covariance : ndarray of shape (n_coils, n_coils), optional
        Coil noise covariance, up to scale (see the module docstring); None: independent coils.

    Returns
    -------
    ndarray of shape (n_coils, H / R, W), complex128
        ``a_j(y, x) = sum_s c_j(y + s H/R, x) m(y + s H/R, x) + n_j(y, x)``, ``n`` complex
        Gaussian with ``E[n n^H] = 2 sigma^2 R Psi`` (per-component standard deviation
        ``sigma sqrt(R)`` for ``Psi = I``).

    Raises
    ------
    ValueError
        For shapes that do not match, a height not divisible by ``acceleration``, a negative
        ``sigma`` or a covariance that is not Hermitian positive definite.
    """
    maps, acceleration = _check_maps(coil_maps, acceleration)
    image = np.asarray(image)
    if image.shape != maps.shape[1:]:
        raise ValueError(f"image shape {image.shape} does not match the coil maps' shape {maps.shape[1:]}")
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    n_coils, height, width = maps.shape
    coil_images = maps * image[None]
    aliased = coil_images.reshape(n_coils, acceleration, height // acceleration, width).sum(axis=1)
    if sigma == 0:
        return aliased
    lower = _cholesky(_normalised_covariance(noise_covariance, n_coils))
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((2, *aliased.shape))
    white = white[0] + 1j * white[1]  # E[w w^H] = 2 I: unit standard deviation per real component
    return aliased + sigma * np.sqrt(acceleration) * np.einsum("ij,jyx->iyx", lower, white)


def sense_reconstruct(
    aliased: np.ndarray,
    coil_maps: np.ndarray,
    acceleration: int,
    noise_covariance: np.ndarray | None = None,
) -> np.ndarray:
    """SENSE unfolding: per reduced pixel ``(S^H Psi^-1 S)^-1 S^H Psi^-1 a``.

    Parameters
    ----------
    aliased : ndarray of shape (..., n_coils, H / R, W)
        Reduced-field-of-view coil images (e.g. from :func:`undersample`); leading axes are a
        stack of acquisitions with the same coil maps.
    coil_maps : ndarray of shape (n_coils, H, W)
        Coil sensitivities on the full field of view.
    acceleration : int
        The acceleration ``R``.
    noise_covariance : ndarray of shape (n_coils, n_coils), optional
        Coil noise covariance (up to scale); None: independent coils of equal level.

    Returns
    -------
    ndarray of shape (..., H, W), complex128
        The unfolded image(s); exact for noise-free data.

    Raises
    ------
    ValueError
        For shapes that do not match or a height not divisible by ``acceleration``.
    numpy.linalg.LinAlgError
        Where ``S^H Psi^-1 S`` is singular (e.g. coils that are all zero at folded pixels).
    """
    whitened, normal, lower, acceleration = _whitened_system(coil_maps, acceleration, noise_covariance)
    reduced, width, n_coils, _ = whitened.shape
    aliased = np.asarray(aliased)
    if aliased.ndim < 3 or aliased.shape[-3:] != (n_coils, reduced, width):
        raise ValueError(
            f"aliased images must have shape (..., {n_coils}, {reduced}, {width}) for coil maps of shape "
            f"({n_coils}, {reduced * acceleration}, {width}) at acceleration {acceleration}, got {aliased.shape}"
        )
    # unmixing U = A^-1 (L^-1 S)^H L^-1, shape (H/R, W, R, n_coils): one small solve per pixel
    unmixing = np.linalg.solve(normal, np.swapaxes(whitened.conj(), -1, -2) @ np.linalg.inv(lower))
    values = np.einsum("yxsj,...jyx->...yxs", unmixing, aliased)
    return _unfold(values)


def _inverse_diagonal(normal: np.ndarray) -> np.ndarray:
    """Real diagonal of ``A^-1`` for stacked Hermitian positive definite ``A`` (..., R, R)."""
    return np.real(np.diagonal(np.linalg.inv(normal), axis1=-2, axis2=-1))


def sense_noise_map(
    coil_maps: np.ndarray,
    acceleration: int,
    sigma: float,
    noise_covariance: np.ndarray | None = None,
) -> np.ndarray:
    """Exact noise standard deviation per real component of the SENSE reconstruction, per pixel.

    Parameters
    ----------
    coil_maps : ndarray of shape (n_coils, H, W)
        Coil sensitivities.
    acceleration : int
        The acceleration ``R``.
    sigma : float
        Noise standard deviation per real component of the fully sampled coil images (as in
        :func:`undersample`).
    noise_covariance : ndarray of shape (n_coils, n_coils), optional
        Coil noise covariance (up to scale); None: independent coils of equal level.

    Returns
    -------
    ndarray of shape (H, W), float64
        ``sigma sqrt(R) sqrt(diag((S^H Psi^-1 S)^-1))`` at every pixel, ``Psi`` normalised to a
        mean diagonal of 1.

    Raises
    ------
    ValueError
        For bad shapes, a height not divisible by ``acceleration`` or a negative ``sigma``.
    """
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    _, normal, _, acceleration = _whitened_system(coil_maps, acceleration, noise_covariance)
    return sigma * np.sqrt(acceleration) * np.sqrt(_unfold(_inverse_diagonal(normal)))


def g_factor(coil_maps: np.ndarray, acceleration: int, noise_covariance: np.ndarray | None = None) -> np.ndarray:
    """SENSE g-factor ``sqrt(diag(A^-1) diag(A))``, ``A = S^H Psi^-1 S``, per pixel (Pruessmann et al. 1999).

    Parameters
    ----------
    coil_maps : ndarray of shape (n_coils, H, W)
        Coil sensitivities.
    acceleration : int
        The acceleration ``R``.
    noise_covariance : ndarray of shape (n_coils, n_coils), optional
        Coil noise covariance (up to scale); None: independent coils of equal level.

    Returns
    -------
    ndarray of shape (H, W), float64
        The g-factor, at least 1 (equal to 1 at ``R = 1``). For maps normalised by
        :func:`normalise_coil_maps` and ``Psi = I`` it is
        ``sense_noise_map(...) / (sigma sqrt(R))``.
    """
    _, normal, _, _ = _whitened_system(coil_maps, acceleration, noise_covariance)
    diagonal = np.real(np.diagonal(normal, axis1=-2, axis2=-1))
    return np.sqrt(_unfold(_inverse_diagonal(normal) * diagonal))
