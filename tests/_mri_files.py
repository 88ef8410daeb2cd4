"""Builders of small synthetic MRI files, shared by ``test_io.py`` and ``test_cli.py``."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

HEADER = b'<?xml version="1.0"?><ismrmrdHeader><encoding><trajectory>cartesian</trajectory></encoding></ismrmrdHeader>'
ATTRS = {"acquisition": "CORPD_FBK", "max": 0.0123, "norm": 4.56, "patient_id": "abc123", "custom_flag": 7}


def centered_fft2(image: np.ndarray) -> np.ndarray:
    """Forward counterpart of the reader's centred inverse FFT (orthonormal)."""
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes=axes), axes=axes, norm="ortho"), axes=axes)


def coil_sensitivities(n_coils: int, height: int, width: int) -> np.ndarray:
    """Smooth complex coil maps whose sum of squared magnitudes is exactly 1 everywhere."""
    y, x = np.mgrid[0:height, 0:width]
    maps = []
    for c in range(n_coils):
        angle = 2 * np.pi * c / n_coils
        cy, cx = height / 2 * (1 + 0.8 * np.sin(angle)), width / 2 * (1 + 0.8 * np.cos(angle))
        magnitude = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (0.5 * height * width))
        phase = np.exp(1j * (0.3 * c + 0.02 * x * (c + 1)))
        maps.append(magnitude * phase)
    stack = np.stack(maps)
    return stack / np.sqrt(np.sum(np.abs(stack) ** 2, axis=0))


def known_volume(slices: int = 2, height: int = 24, width: int = 20, seed: int = 0) -> np.ndarray:
    """A positive test volume with structure (the phantom) plus a little texture."""
    from c2s_denoise.physics.phantom import brain_phantom

    rng = np.random.default_rng(seed)
    base = brain_phantom((slices, height, width), seed=seed)
    return (base + 0.05 + 0.02 * rng.random(base.shape)).astype(np.float32)


def write_fastmri(
    path: Path,
    volume: np.ndarray,
    *,
    coils: int | None = 4,
    reconstruction: dict[str, np.ndarray] | None = None,
    kspace: np.ndarray | None = None,
    with_kspace: bool = True,
    header: bytes | None = HEADER,
    attrs: dict | None = None,
) -> Path:
    """Write a fastMRI-style file whose k-space is the centred FFT of ``volume`` (times coil maps)."""
    with h5py.File(path, "w") as handle:
        if kspace is not None:
            handle.create_dataset("kspace", data=kspace)
        elif with_kspace:
            phase = np.exp(1j * 0.4)
            if coils is None:
                data = centered_fft2(volume * phase)
            else:
                maps = coil_sensitivities(coils, *volume.shape[-2:])
                data = centered_fft2(volume[:, None] * maps[None] * phase)
            handle.create_dataset("kspace", data=data.astype(np.complex64))
        for name, value in (reconstruction or {}).items():
            handle.create_dataset(name, data=value)
        if header is not None:
            handle.create_dataset("ismrmrd_header", data=header)
        for name, value in (ATTRS if attrs is None else attrs).items():
            handle.attrs[name] = value
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to a fraction of its size (a torn download)."""
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path
