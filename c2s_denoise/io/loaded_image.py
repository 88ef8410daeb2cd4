"""The in-memory form of an image file (:class:`LoadedImage`) and the check of the arrays read into it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import C2SInputError
from .file_names import M4RawName, parse_m4raw_name

__all__ = ["LoadedImage", "as_volume"]


def as_volume(array: np.ndarray, path: str | Path, what: str = "image") -> np.ndarray:
    """Check a real 2-D or 3-D array and return it as a finite float ``(D, H, W)`` volume.

    Parameters
    ----------
    array : numpy.ndarray
        Data read from ``path``: ``(H, W)`` or ``(D, H, W)``, real valued.
    path : str or pathlib.Path
        The file it came from (named in errors).
    what : str, default "image"
        What the array is, for error messages (e.g. ``"dataset 'reconstruction_rss'"``).

    Returns
    -------
    numpy.ndarray
        float64 if ``array`` is float64, float32 otherwise; shape ``(D, H, W)``.

    Raises
    ------
    C2SInputError
        For complex or non-numeric data, a wrong number of dimensions, an
        empty array, or NaN/infinite values.
    """
    arr = np.asarray(array)
    if np.iscomplexobj(arr):
        raise C2SInputError(path, f"{what} is complex; a magnitude (real) image is expected")
    if arr.dtype.kind not in "biuf":
        raise C2SInputError(path, f"{what} has non-numeric type {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise C2SInputError(
            path, f"{what} has {arr.ndim} dimensions with shape {arr.shape}; expected 2 (H, W) or 3 (D, H, W)"
        )
    if arr.size == 0 or min(arr.shape[1:]) < 2:
        raise C2SInputError(path, f"{what} is empty or too small (shape {arr.shape})")
    arr = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise C2SInputError(path, f"{what} contains NaN or infinite values")
    return arr


@dataclass
class LoadedImage:
    """An image or volume read from a file, with what is needed to write it back.

    Attributes
    ----------
    data : numpy.ndarray
        Magnitude data of shape ``(D, H, W)``: ``D`` slices of ``H x W``
        (``D == 1`` for a single 2-D image), or ``(T, D, H, W)`` for a series
        of ``T`` volumes (a 4-D NIfTI: diffusion directions, time points).
        Floating point (float32, or float64 when the file held float64), finite.
    format : str
        ``"hdf5"``, ``"nifti"``, ``"dicom"``, ``"npy"`` or ``"npz"``.
    meta : dict
        Format-specific information used by :func:`c2s_denoise.io.save_image`
        (HDF5 attributes and header, NIfTI affine and header, array layout).
    source : pathlib.Path
        The file it was read from.
    """

    data: np.ndarray
    format: str
    meta: dict[str, Any] = field(default_factory=dict)
    source: Path = field(default_factory=Path)

    @property
    def volumes(self) -> list[np.ndarray]:
        """The volumes ``(D, H, W)`` of the file: one, or one per volume of a series."""
        return [self.data] if self.data.ndim == 3 else list(self.data)

    @property
    def m4raw(self) -> M4RawName | None:
        """The M4Raw name parts of :attr:`source`, or None."""
        return parse_m4raw_name(self.source)

    @property
    def study(self) -> str | None:
        """Study identifier parsed from an M4Raw file name, or None."""
        parts = self.m4raw
        return None if parts is None else parts.study

    @property
    def contrast(self) -> str | None:
        """Contrast (``"T1"``, ``"T2"``, ``"FLAIR"``) parsed from an M4Raw file name, or None."""
        parts = self.m4raw
        return None if parts is None else parts.contrast

    @property
    def repetition(self) -> int | None:
        """Repetition number parsed from an M4Raw file name, or None."""
        parts = self.m4raw
        return None if parts is None else parts.repetition
