"""Simulated multi-coil acquisitions and magnitude noise, with their ground truth.

Used by the tests, the benchmarks and anyone who wants to check a pipeline on data whose truth
is known. A clean magnitude image ``x`` gets a smooth phase, is seen by ``N`` coils with smooth
complex sensitivities ``S_i``, and each coil's k-space (orthonormal FFT) gets complex Gaussian
noise that is white over samples and correlated between coils with covariance ``Psi``.
Optionally the readout axis (the first image axis) is oversampled by 2 as in fastMRI raw data:
the field of view is twice as long there and its outer half holds no signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MultiCoilScan", "coil_maps", "magnitude_noise", "noise_covariance", "simulate_multicoil"]


@dataclass
class MultiCoilScan:
    """A simulated multi-coil scan.

    Attributes
    ----------
    kspace : ndarray of shape (S, N, H', W), complex64
        Noisy k-space (``H' = 2 H`` with readout oversampling).
    coil_maps : ndarray of shape (N, H', W), complex128
        True coil sensitivities.
    noise_covariance : ndarray of shape (N, N), complex128
        True ``E[n n^H]`` of the k-space noise.
    clean_rss : ndarray of shape (S, H, W), float64
        Root-sum-of-squares of the noise-free coil images, cropped to the object's field of
        view: the reference every reconstruction is compared with.
    clean_coil_images : ndarray of shape (S, N, H', W), complex128
        Noise-free coil images.
    """

    kspace: np.ndarray
    coil_maps: np.ndarray
    noise_covariance: np.ndarray
    clean_rss: np.ndarray
    clean_coil_images: np.ndarray

    @property
    def crop(self) -> tuple[int, int]:
        """The object's field of view ``(H, W)``."""
        return self.clean_rss.shape[-2], self.clean_rss.shape[-1]


def coil_maps(n_coils: int, shape: tuple[int, int], *, seed: int = 0) -> np.ndarray:
    """Smooth complex sensitivities ``(n_coils, H, W)`` of coils spread around the object.

    Each coil is a Gaussian-like bump centred just outside the object at an angle around it,
    with a smooth linear phase; ``sqrt(sum |S_i|^2)`` is about 1 at the centre.
    """
    rng = np.random.default_rng(seed)
    height, width = shape
    y = (np.arange(height) - height / 2) / (height / 2)
    x = (np.arange(width) - width / 2) / (width / 2)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    maps = np.empty((n_coils, height, width), dtype=np.complex128)
    for i in range(n_coils):
        angle = 2 * np.pi * i / n_coils + rng.uniform(-0.2, 0.2)
        cy, cx = 1.1 * np.sin(angle), 1.1 * np.cos(angle)
        spread = rng.uniform(0.7, 1.0) * (1.2 if n_coils <= 4 else 0.9)
        magnitude = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * spread**2))
        phase = rng.uniform(0, 2 * np.pi) + rng.uniform(-1.5, 1.5) * yy + rng.uniform(-1.5, 1.5) * xx
        maps[i] = magnitude * np.exp(1j * phase)
    centre = np.sqrt(np.sum(np.abs(maps[:, height // 2, width // 2]) ** 2))
    return maps / centre


def noise_covariance(n_coils: int, sigma: float, *, correlation: float = 0.3, seed: int = 0) -> np.ndarray:
    """A coil noise covariance ``E[n n^H]`` with mean per-component variance ``sigma**2``.

    Coil noise levels differ by up to about 30% and neighbouring coils are correlated (complex
    correlation of magnitude about ``correlation``).
    """
    rng = np.random.default_rng(seed + 1)
    mixing = np.eye(n_coils, dtype=np.complex128)
    for i in range(n_coils):
        for offset in (-1, 1):
            j = (i + offset) % n_coils
            if j != i:
                mixing[i, j] += correlation * np.exp(1j * rng.uniform(0, 2 * np.pi))
    levels = rng.uniform(0.8, 1.2, n_coils)
    mixing = levels[:, None] * mixing
    covariance = mixing @ mixing.conj().T
    covariance *= 2 * sigma**2 / np.mean(np.real(np.diag(covariance)))
    return (covariance + covariance.conj().T) / 2


def _smooth_phase(shape: tuple[int, int], rng: np.random.Generator, amplitude: float) -> np.ndarray:
    height, width = shape
    y = np.linspace(-1, 1, height)[:, None]
    x = np.linspace(-1, 1, width)[None, :]
    a = rng.uniform(-1, 1, 5) * amplitude
    return a[0] + a[1] * y + a[2] * x + a[3] * x * y + a[4] * (x**2 - y**2)


def simulate_multicoil(
    images: np.ndarray,
    *,
    n_coils: int = 8,
    sigma: float = 0.02,
    correlation: float = 0.3,
    oversample_readout: bool = True,
    phase_amplitude: float = 1.0,
    seed: int = 0,
) -> MultiCoilScan:
    """Simulate the noisy multi-coil k-space of clean magnitude images.

    Parameters
    ----------
    images : ndarray of shape (S, H, W)
        Clean magnitude slices (e.g. values in [0, 1]).
    n_coils : int, default=8
    sigma : float, default=0.02
        Mean standard deviation of each real component of the coil noise (k-space and, by
        the orthonormal FFT, image domain), in the units of ``images`` times the coil maps.
    correlation : float, default=0.3
        Noise correlation between neighbouring coils.
    oversample_readout : bool, default=True
        Double the field of view along the first image axis (signal-free margins).
    phase_amplitude : float, default=1.0
        Size, in radians, of the smooth object phase.
    seed : int, default=0

    Returns
    -------
    MultiCoilScan
    """
    clean = np.asarray(images, dtype=np.float64)
    if clean.ndim == 2:
        clean = clean[None]
    n_slices, height, width = clean.shape
    full_height = 2 * height if oversample_readout else height
    top = (full_height - height) // 2
    rng = np.random.default_rng(seed)
    maps = coil_maps(n_coils, (full_height, width), seed=seed)
    covariance = noise_covariance(n_coils, sigma, correlation=correlation, seed=seed)
    lower = np.linalg.cholesky(covariance)
    padded = np.zeros((n_slices, full_height, width), dtype=np.complex128)
    padded[:, top : top + height] = clean * np.exp(1j * _smooth_phase((height, width), rng, phase_amplitude))
    coil_images = maps[None] * padded[:, None]
    axes = (-2, -1)
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil_images, axes=axes), axes=axes, norm="ortho"), axes=axes)
    white = (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape)) / np.sqrt(2)
    noise = np.einsum("ij,sjhw->sihw", lower, white)
    clean_rss = np.sqrt(np.sum(np.abs(coil_images) ** 2, axis=1))[:, top : top + height]
    return MultiCoilScan(
        kspace=(kspace + noise).astype(np.complex64),
        coil_maps=maps,
        noise_covariance=covariance,
        clean_rss=clean_rss,
        clean_coil_images=coil_images,
    )


def magnitude_noise(images: np.ndarray, sigma: float, *, n_coils: int = 1, seed: int = 0) -> np.ndarray:
    """Noncentral-chi magnitude images: RSS over ``n_coils`` coils of equal share of the signal.

    Each coil sees ``x / sqrt(n_coils)`` plus independent complex Gaussian noise of standard
    deviation ``sigma`` per real component, so the noise-free RSS is ``x`` itself; ``n_coils=1``
    gives Rician images.
    """
    clean = np.asarray(images, dtype=np.float64)
    rng = np.random.default_rng(seed)
    share = clean / np.sqrt(n_coils)
    total = np.zeros_like(clean)
    for _ in range(n_coils):
        real = share + sigma * rng.standard_normal(clean.shape)
        imaginary = sigma * rng.standard_normal(clean.shape)
        total += real**2 + imaginary**2
    return np.sqrt(total)
