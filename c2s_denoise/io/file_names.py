"""File-name conventions: the image formats by suffix, and M4Raw names ``<study>_<contrast><NN>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FORMATS", "M4RawName", "detect_format", "parse_m4raw_name", "strip_suffix"]

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
