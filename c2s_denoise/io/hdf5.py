"""Opening HDF5 files read-only, with h5py imported only when a file is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import C2SInputError, describe_exception

__all__ = ["h5py_module", "is_dataset", "open_hdf5"]


def h5py_module() -> Any:
    """The ``h5py`` module; its absence is a :class:`C2SInputError`."""
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a core dependency
        raise C2SInputError(None, "reading HDF5 files needs h5py; install it with 'pip install h5py'") from exc
    return h5py


def open_hdf5(path: Path) -> Any:
    """Open an HDF5 file read-only; an unreadable, truncated or non-HDF5 file is a :class:`C2SInputError`."""
    try:
        return h5py_module().File(path, "r")
    except Exception as exc:  # h5py raises OSError for corrupt, truncated and non-HDF5 files
        raise C2SInputError(path, f"not a readable HDF5 file ({describe_exception(exc)})") from None


def is_dataset(handle: Any, key: str) -> bool:
    """Whether the open file ``handle`` holds a dataset (not a group) named ``key``."""
    return isinstance(handle.get(key), h5py_module().Dataset)
