"""The in-memory form of an image file, and file-name conventions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMATS",
    "LoadedImage",
    "M4RawName",
    "as_volume",
    "detect_format",
    "parse_m4raw_name",
    "strip_suffix",
]

#: File suffixes understood by :func:`c2s_denoise.io.load_image`, by format.
FORMATS: dict[str, tuple[str, ...]] = {
    "hdf5": (".h5", ".hdf5"),
    "nifti": (".nii.gz", ".nii"),
    "npy": (".npy",),
    "npz": (".npz",),
}

_M4RAW_RE = re.compile(r"^(?P<study>.+)_(?P<contrast>T1|T2|FLAIR)(?P<repetition>\d{2})$")


@dataclass(frozen=True)
class M4RawName:
    """The parts of an M4Raw file name ``<study>_<T1|T2|FLAIR><repetition:02d>.h5``.

    Attributes
    ----------
    study : str
        Study (subject) identifier, e.g. ``"2022061003"``.
    contrast : str
        ``"T1"``, ``"T2"`` or ``"FLAIR"``.
    repetition : int
        Repetition number, e.g. ``2`` for ``..._T102.h5``.
    """

    study: str
    contrast: str
    repetition: int


def strip_suffix(name: str) -> str:
    """Return a file name without its recognised image suffix.

    Parameters
    ----------
    name : str
        File name (not a path), e.g. ``"scan.nii.gz"``.

    Returns
    -------
    str
        ``"scan"`` for ``"scan.nii.gz"``; the name minus its last suffix for
        unknown suffixes.
    """
    lower = name.lower()
    for suffixes in FORMATS.values():
        for suffix in suffixes:
            if lower.endswith(suffix):
                return name[: -len(suffix)]
    return Path(name).stem


def parse_m4raw_name(path: str | Path) -> M4RawName | None:
    """Parse an M4Raw-style file name.

    Parameters
    ----------
    path : str or pathlib.Path
        A path whose file name may follow ``<study>_<T1|T2|FLAIR><NN>.<ext>``.

    Returns
    -------
    M4RawName or None
        The parsed parts, or None when the name does not follow the pattern.

    Examples
    --------
    >>> parse_m4raw_name("data/2022061003_T102.h5")
    M4RawName(study='2022061003', contrast='T1', repetition=2)
    >>> parse_m4raw_name("knee.h5") is None
    True
    """
    match = _M4RAW_RE.match(strip_suffix(Path(path).name))
    if match is None:
        return None
    return M4RawName(match["study"], match["contrast"], int(match["repetition"]))


def detect_format(path: str | Path) -> str | None:
    """Return the format name for a path from its suffix, or None if unknown.

    Parameters
    ----------
    path : str or pathlib.Path
        File path.

    Returns
    -------
    str or None
        One of the keys of :data:`FORMATS`.
    """
    lower = Path(path).name.lower()
    for fmt, suffixes in FORMATS.items():
        if any(lower.endswith(suffix) for suffix in suffixes):
            return fmt
    return None


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
    from .errors import C2SInputError

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
        (``D == 1`` for a single 2-D image). Floating point (float32, or
        float64 when the file held float64), finite.
    format : str
        ``"hdf5"``, ``"nifti"``, ``"npy"`` or ``"npz"``.
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
