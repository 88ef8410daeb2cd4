"""The k-space of an HDF5 file (fastMRI / M4Raw): checks, coil images, coil noise, the complex combination.

- :func:`centered_ifft2` and :func:`rss`: coil images from k-space, and their root-sum-of-squares;
- :func:`kspace_noise_covariance`: the coil noise covariance, from a ``noise`` dataset or
  estimated from the data (docs/method.md section 10);
- the prewhitened complex combination that :func:`~c2s_denoise.io.fastmri.load_fastmri` reads
  with ``combine="complex"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import C2SInputError
from .hdf5 import is_dataset, open_hdf5
from .ismrmrd import declared_coils

__all__ = [
    "NOISE_KEY",
    "centered_ifft2",
    "check_kspace",
    "complex_from_kspace",
    "images_from_kspace",
    "kspace_noise_covariance",
    "rss",
    "undersampling",
]

#: A noise-only scan stored beside the k-space, complex ``(coils, samples)``.
NOISE_KEY = "noise"

# Slices whose coil images are pooled for the noise covariance (evenly spaced).
_NOISE_SLICES = 8


def centered_ifft2(kspace: np.ndarray) -> np.ndarray:
    """Centred, orthonormal 2-D inverse FFT over the last two axes.

    Computes ``fftshift(ifft2(ifftshift(k), norm="ortho"))`` with all shifts
    and the transform over axes ``(-2, -1)``, the fastMRI convention.

    Parameters
    ----------
    kspace : numpy.ndarray
        Complex k-space with the centre of k-space in the middle of the array.

    Returns
    -------
    numpy.ndarray
        Complex images, same shape.
    """
    axes = (-2, -1)
    shifted = np.fft.ifftshift(kspace, axes=axes)
    return np.fft.fftshift(np.fft.ifft2(shifted, axes=axes, norm="ortho"), axes=axes)


def rss(coil_images: np.ndarray, axis: int = 0) -> np.ndarray:
    """Root-sum-of-squares combination of coil images.

    Parameters
    ----------
    coil_images : numpy.ndarray
        Complex or real coil images.
    axis : int, default 0
        The coil axis.

    Returns
    -------
    numpy.ndarray
        ``sqrt(sum(|c|^2))`` over ``axis``.
    """
    return np.sqrt(np.sum(np.abs(coil_images) ** 2, axis=axis))


#: Interior k-space lines (between the first and the last sampled one) that may be zero in fully sampled data.
_MAX_ZERO_LINES = 0.05


def check_kspace(dataset: Any, path: Path) -> None:
    """K-space must be complex, non-empty, ``(slices, H, W)`` or ``(slices, coils, H, W)``, and fully sampled.

    Reads the middle slice only (:func:`undersampling`).
    """
    shape = dataset.shape
    if len(shape) not in (3, 4):
        raise C2SInputError(
            path,
            f"kspace has rank {len(shape)} (shape {shape}); expected 3 (slices, H, W) "
            "single-coil or 4 (slices, coils, H, W) multi-coil",
        )
    if dataset.dtype.kind != "c":
        raise C2SInputError(path, f"kspace has non-complex type {dataset.dtype}; complex k-space is expected")
    if 0 in shape:
        raise C2SInputError(path, f"kspace is empty (shape {shape})")
    problem = undersampling(np.asarray(dataset[shape[0] // 2]))
    if problem:
        raise C2SInputError(
            path,
            f"kspace is undersampled ({problem}); C2S denoises fully sampled k-space or reconstructed images: "
            "reconstruct it first (SENSE, GRAPPA, compressed sensing), or read a stored reconstruction with "
            "h5_dataset=...",
        )


def undersampling(kspace_slice: np.ndarray) -> str | None:
    """How one k-space slice ``([coils,] H, W)`` is undersampled, or None when it is fully sampled.

    Lines of either k-space axis that are exactly zero for every coil, between the first and the
    last sampled line, are skipped phase encodes (uniform or random undersampling); zero lines at
    the edges are zero padding (partial Fourier, asymmetric echo) and are allowed. More than
    :data:`_MAX_ZERO_LINES` of the interior lines zero means undersampled.
    """
    power = np.abs(kspace_slice) ** 2
    power = power.reshape(-1, *power.shape[-2:]).sum(axis=0)  # (H, W), coils summed
    for axis, name in ((1, "columns"), (0, "rows")):
        sampled = power.sum(axis=1 - axis) > 0  # is each line (a column, then a row) sampled?
        lines = np.flatnonzero(sampled)
        if len(lines) < 2:
            continue
        interior = sampled[lines[0] : lines[-1] + 1]
        zero = int((~interior).sum())
        if zero > _MAX_ZERO_LINES * len(interior):
            return (
                f"{zero} of {len(interior)} k-space {name} inside the sampled range are zero, "
                f"an acceleration of about {len(interior) / (len(interior) - zero):.1f}"
            )
    return None


def images_from_kspace(dataset: Any, path: Path) -> np.ndarray:
    """Read k-space slice by slice and return magnitude images ``(slices, H, W)``."""
    check_kspace(dataset, path)
    shape = dataset.shape
    out = np.empty((shape[0], shape[-2], shape[-1]), dtype=np.float32)
    for index in range(shape[0]):
        images = centered_ifft2(np.asarray(dataset[index]))
        out[index] = rss(images, axis=0) if len(shape) == 4 else np.abs(images)
    return out


def _coil_images(dataset: Any, index: int) -> np.ndarray:
    """Coil images ``(coils, H, W)`` of slice ``index`` (one coil for single-coil k-space)."""
    kspace = np.asarray(dataset[index])
    if kspace.ndim == 2:
        kspace = kspace[None]
    if not np.isfinite(kspace).all():
        raise ValueError(f"kspace slice {index} holds NaN or infinite values")
    return centered_ifft2(kspace)


def _noise_samples(handle: Any, path: Path, n_coils: int) -> np.ndarray | None:
    """The file's noise-only scan as ``(coils, samples)``, checked against the k-space coils."""
    if not is_dataset(handle, NOISE_KEY):
        return None
    noise = np.asarray(handle[NOISE_KEY][()])
    if noise.dtype.kind != "c" or noise.ndim < 2:
        raise C2SInputError(
            path, f"dataset {NOISE_KEY!r} must be complex (coils, samples), got {noise.dtype} {noise.shape}"
        )
    if noise.shape[0] != n_coils:
        raise C2SInputError(
            path, f"inconsistent coil dimensions: {NOISE_KEY!r} has {noise.shape[0]} coil(s) but kspace has {n_coils}"
        )
    return noise.reshape(n_coils, -1)


def _kspace_covariance(handle: Any, dataset: Any, path: Path, n_coils: int) -> np.ndarray:
    """Coil noise covariance: from the noise scan if the file has one, else from evenly spaced slices."""
    from ..physics.coil_noise import estimate_noise_covariance

    noise = _noise_samples(handle, path, n_coils)
    if noise is not None:
        return estimate_noise_covariance(noise_samples=noise)
    n_slices = dataset.shape[0]
    picked = np.unique(np.linspace(0, n_slices - 1, min(n_slices, _NOISE_SLICES)).round().astype(int))
    return estimate_noise_covariance(np.stack([_coil_images(dataset, int(i)) for i in picked]))


def kspace_noise_covariance(path: str | Path) -> np.ndarray | None:
    """The coil noise covariance ``E[n n^H]`` of a file's k-space (None for a file without k-space).

    Raises
    ------
    C2SInputError
        For an unreadable file, malformed k-space or too few signal-free samples.
    """
    path = Path(path)
    with open_hdf5(path) as handle:
        if not is_dataset(handle, "kspace"):
            return None
        dataset = handle["kspace"]
        check_kspace(dataset, path)
        n_coils = dataset.shape[1] if len(dataset.shape) == 4 else 1
        try:
            return _kspace_covariance(handle, dataset, path, n_coils)
        except ValueError as exc:
            raise C2SInputError(path, f"cannot estimate the coil noise of kspace: {exc}") from None


def complex_from_kspace(handle: Any, dataset: Any, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prewhitened, coil-combined complex images, their RSS gain and the noise covariance."""
    from ..physics.coil_combination import combine_coils

    check_kspace(dataset, path)
    shape = dataset.shape
    n_coils = shape[1] if len(shape) == 4 else 1
    declared = declared_coils(handle)
    if declared is not None and len(shape) == 4 and declared != n_coils:
        raise C2SInputError(
            path,
            f"inconsistent coil dimensions: the ISMRMRD header declares {declared} receiver channels but "
            f"kspace has {n_coils} coils (axis 1 of shape {shape})",
        )
    try:
        covariance = _kspace_covariance(handle, dataset, path, n_coils)
        images = np.empty((shape[0], shape[-2], shape[-1]), dtype=np.complex64)
        gain = np.empty(images.shape, dtype=np.float32)
        for index in range(shape[0]):
            combined = combine_coils(_coil_images(dataset, index), noise_covariance=covariance)
            images[index], gain[index] = combined.image[0], combined.rss_gain[0]
    except ValueError as exc:
        raise C2SInputError(path, f"cannot combine the coils of kspace: {exc}") from None
    return images, gain, covariance
