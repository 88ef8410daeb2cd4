"""Coil sensitivities and the combination of prewhitened coil images into one complex image.

See docs/method.md section 10. After prewhitening (:mod:`c2s_denoise.physics.coil_noise`) the coil
images are ``c = s_true x + n`` per pixel, with white noise of unit standard deviation per real
component. For a unit-norm sensitivity vector ``s`` (per pixel, over coils) the combination

    m = s^H c

is the matched-filter (B1-weighted, SENSE-1-like) image: its noise is complex Gaussian with unit
standard deviation per real component at *every* pixel, whatever the coil geometry, and its
magnitude is ``||s_true|| |x|``, the root-sum-of-squares (RSS) of the noise-free whitened coil
images. The noise level that C2S needs is therefore known exactly (1), and the image is
Gaussian, not Rician: the RSS noise floor is gone.

Sensitivities
    By default ``s`` is the normalised low-resolution coil image, ``s = c_lr / ||c_lr||``,
    where ``c_lr`` keeps only the centre of k-space (a Gaussian window of standard deviation
    ``calibration_width`` samples). Coil profiles and the object's phase are smooth, so
    ``c_lr ~ s_true x_lr``: ``s`` is the true direction, and it carries the low-resolution
    object phase, which the combination removes (the result is nearly real in tissue). The
    low-resolution image averages hundreds of pixels, so ``s`` is almost independent of each
    pixel's noise and the noise of ``m`` stays unit and unbiased (a locally estimated
    eigenvector, as in Walsh's adaptive combination, aligns with the noise itself and
    inflates it in dark regions).

Scale of the RSS image
    Back in the coils' original (unwhitened) units the noise-free coil images are
    ``W^-1 s m``, so the RSS-scale magnitude of a (denoised) combined image is
    ``||W^-1 s|| |m|``: :attr:`CoilCombination.rss_gain` holds ``||W^-1 s||``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .coil_noise import estimate_noise_covariance, whitening_matrix

__all__ = ["CoilCombination", "combine_coils", "lowres", "normalized_sensitivities"]

# Relative floor on ||c_lr||: below it (no signal at all) the direction is arbitrary anyway.
_TINY = 1e-12


@dataclass
class CoilCombination:
    """The combined image of a stack of coil images.

    Attributes
    ----------
    image : ndarray of shape (S, H, W), complex64
        Combined complex images in SNR units: the noise has standard deviation 1 in the real
        and in the imaginary part of every pixel.
    rss_gain : ndarray of shape (S, H, W), float32
        ``|image| * rss_gain`` is on the scale of the root-sum-of-squares of the coil images.
    noise_covariance : ndarray of shape (N, N), complex128
        The coil noise covariance used for prewhitening.
    """

    image: np.ndarray
    rss_gain: np.ndarray
    noise_covariance: np.ndarray

    @property
    def noise_sigma(self) -> float:
        """Noise standard deviation per real component of :attr:`image` (1 by construction)."""
        return 1.0


def _window(shape: tuple[int, int], width: float) -> np.ndarray:
    """Centred Gaussian k-space window of standard deviation ``width`` samples (unshifted FFT order)."""
    height, columns = shape
    ky = np.fft.fftfreq(height) * height
    kx = np.fft.fftfreq(columns) * columns
    return np.exp(-(ky[:, None] ** 2 + kx[None, :] ** 2) / (2.0 * width**2))


def lowres(images: np.ndarray, calibration_width: float) -> np.ndarray:
    """Low-pass images ``(..., H, W)``: k-space times a centred Gaussian of std ``calibration_width`` samples."""
    window = _window(images.shape[-2:], calibration_width)
    return np.fft.ifft2(np.fft.fft2(images, axes=(-2, -1)) * window, axes=(-2, -1))


def _lowres_noise_energy(shape: tuple[int, int], width: float) -> float:
    """``E|lowres(n)|^2`` per pixel for white noise with ``E|n|^2 = 2`` (unit std per real component)."""
    window = _window(shape, width)
    return 2.0 * float(np.sum(window**2)) / (shape[0] * shape[1])


def _signal_weight(energy: np.ndarray, noise_energy: float) -> np.ndarray:
    """0 where a low-resolution image is noise (energy below 4x its noise energy), 1 above 16x, linear between."""
    return np.clip((energy / noise_energy - 4.0) / 12.0, 0.0, 1.0)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.sum(np.abs(vectors) ** 2, axis=0))
    return vectors / np.maximum(norm, _TINY * max(float(norm.max()), _TINY))


def normalized_sensitivities(
    whitened: np.ndarray, calibration_width: float = 8.0, smooth_width: float = 1.0
) -> np.ndarray:
    """Unit-norm sensitivities ``(N, H, W)`` from whitened coil images ``(N, H, W)`` of one slice.

    ``s = c_lr / ||c_lr||`` from the low-resolution images (``calibration_width``) where they
    hold signal. Where they hold mostly noise (air), that direction would follow the noise
    itself, and ``s^H c`` would carry the low-resolution noise's magnitude as a positive
    floor; there the much smoother images (``smooth_width``, 64x less noise energy) give the
    direction instead, with a linear blend in between.
    """
    shape = whitened.shape[-2:]
    n_coils = whitened.shape[0]
    fine = lowres(whitened, calibration_width)
    energy = np.sum(np.abs(fine) ** 2, axis=0)
    weight = _signal_weight(energy, n_coils * _lowres_noise_energy(shape, calibration_width))
    s_fine = _unit(fine)
    if weight.min() >= 1.0:
        return s_fine
    s_smooth = _unit(lowres(whitened, smooth_width))
    # rotate the smooth direction onto the fine one where both are used, so that they add up
    overlap = np.sum(s_smooth.conj() * s_fine, axis=0)
    rotation = np.where(weight > 0, np.exp(1j * np.angle(overlap)), 1.0)
    return _unit(weight * s_fine + (1.0 - weight) * s_smooth * rotation)


def _lowres_phase(image: np.ndarray, calibration_width: float, smooth_width: float) -> np.ndarray:
    """``exp(i phase)`` of the low-resolution ``image``, from the smoother version where it is noise."""
    fine = lowres(image, calibration_width)
    weight = _signal_weight(np.abs(fine) ** 2, _lowres_noise_energy(image.shape, calibration_width))
    smooth = lowres(image, smooth_width)
    blended = weight * fine / np.maximum(np.abs(fine), _TINY) + (1.0 - weight) * smooth / np.maximum(
        np.abs(smooth), _TINY
    )
    return np.exp(1j * np.angle(blended))


def combine_coils(
    coil_images: np.ndarray,
    *,
    noise_covariance: np.ndarray | None = None,
    sensitivities: np.ndarray | None = None,
    calibration_width: float = 8.0,
    smooth_width: float = 1.0,
) -> CoilCombination:
    """Prewhiten and combine coil images ``(S, N, H, W)`` into complex images in SNR units.

    Parameters
    ----------
    coil_images : ndarray of shape (S, N, H, W) or (N, H, W), complex
        Fully sampled coil images (orthonormal inverse FFT of the k-space).
    noise_covariance : ndarray of shape (N, N), optional
        Coil noise covariance; estimated from the images themselves when None
        (:func:`~c2s_denoise.physics.coil_noise.estimate_noise_covariance`).
    sensitivities : ndarray of shape (N, H, W) or (S, N, H, W), optional
        Known coil sensitivities in the coils' original units (e.g. the true maps of a
        simulation); estimated per slice from the low-resolution images when None.
    calibration_width : float, default=8.0
        Standard deviation, in k-space samples, of the Gaussian window that gives the
        low-resolution images (of the sensitivities, and of the phase that is removed).
    smooth_width : float, default=1.0
        The same for the smoother images that take over where the low-resolution images are
        mostly noise (air), so that the noise there stays zero-mean.

    Returns
    -------
    CoilCombination

    Raises
    ------
    ValueError
        For real or non-finite input, a wrong rank, or sensitivities of another shape.
    """
    images = np.asarray(coil_images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"coil images must be (slices, coils, H, W), got shape {np.shape(coil_images)}")
    if images.dtype.kind != "c":
        raise ValueError("coil images must be complex")
    n_coils = images.shape[1]
    if noise_covariance is None:
        noise_covariance = estimate_noise_covariance(images)
    noise_covariance = np.asarray(noise_covariance, dtype=np.complex128)
    if noise_covariance.shape != (n_coils, n_coils):
        raise ValueError(f"noise covariance has shape {noise_covariance.shape} for {n_coils} coil(s)")
    whitening = whitening_matrix(noise_covariance)
    unwhitening = np.linalg.inv(whitening)
    if sensitivities is not None:
        sensitivities = np.asarray(sensitivities)
        if sensitivities.ndim == 3:
            sensitivities = np.broadcast_to(sensitivities, (images.shape[0], *sensitivities.shape))
        if sensitivities.shape != images.shape:
            raise ValueError(f"sensitivities have shape {sensitivities.shape} but the coil images {images.shape}")
    combined = np.empty((images.shape[0], *images.shape[2:]), dtype=np.complex64)
    gain = np.empty(combined.shape, dtype=np.float32)
    for index, coils in enumerate(images):
        whitened = np.einsum("ij,jhw->ihw", whitening, coils.astype(np.complex128, copy=False))
        if sensitivities is None:
            s = normalized_sensitivities(whitened, calibration_width, smooth_width)
        else:
            s = np.einsum("ij,jhw->ihw", whitening, sensitivities[index])
            s = s / np.maximum(np.sqrt(np.sum(np.abs(s) ** 2, axis=0)), _TINY)
        m = np.sum(s.conj() * whitened, axis=0)
        # remove the remaining low-resolution phase so that tissue lies on the real axis
        combined[index] = m * np.conj(_lowres_phase(m, calibration_width, smooth_width))
        gain[index] = np.sqrt(np.sum(np.abs(np.einsum("ij,jhw->ihw", unwhitening, s)) ** 2, axis=0))
    return CoilCombination(image=combined, rss_gain=gain, noise_covariance=noise_covariance)
