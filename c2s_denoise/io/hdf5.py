"""Opening HDF5 files read-only, with h5py imported only when a file is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import C2SInputError, describe_exception

__all__ = ["check_self_contained", "h5py_module", "is_dataset", "open_hdf5"]


def h5py_module() -> Any:
    """The ``h5py`` module; its absence is a :class:`C2SInputError`."""
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a core dependency
        raise C2SInputError(None, "reading HDF5 files needs h5py; install it with 'pip install h5py'") from exc
    return h5py


def open_hdf5(path: Path) -> Any:
    """Open an HDF5 file read-only; an unreadable, truncated or non-HDF5 file is a :class:`C2SInputError`.

    A file that would make the reader read another file is refused (see :func:`check_self_contained`).
    """
    try:
        handle = h5py_module().File(path, "r")
    except Exception as exc:  # h5py raises OSError for corrupt, truncated and non-HDF5 files
        raise C2SInputError(path, f"not a readable HDF5 file ({describe_exception(exc)})") from None
    try:
        check_self_contained(handle, path)
    except BaseException:
        handle.close()
        raise
    return handle


def check_self_contained(handle: Any, path: Path) -> None:
    """Refuse an HDF5 file whose data live in other files.

    A dataset with external storage (raw data in another file), a virtual
    dataset (mapped from other files) or an external link would silently read
    a file that was not given; each is a :class:`C2SInputError` naming the file
    and the dataset.
    """
    h5py = h5py_module()
    problems: list[str] = []

    def visit(name: str, link: Any) -> None:
        if problems:
            return
        if isinstance(link, h5py.ExternalLink):
            problems.append(f"{name!r} is an external link to {link.filename}")
            return
        if not isinstance(link, h5py.HardLink):
            return  # soft links point inside the file; their targets are visited as hard links
        obj = handle.get(name)
        if isinstance(obj, h5py.Dataset):
            if obj.external:
                problems.append(f"dataset {name!r} uses external storage in {obj.external[0][0]!r}")
            elif obj.is_virtual:
                problems.append(f"dataset {name!r} is a virtual dataset mapped from other files")

    try:
        handle.visititems_links(visit)
    except Exception as exc:  # a corrupt object table
        raise C2SInputError(path, f"not a readable HDF5 file ({describe_exception(exc)})") from None
    if problems:
        raise C2SInputError(path, f"{problems[0]}; files that read data from other files are refused")


def is_dataset(handle: Any, key: str) -> bool:
    """Whether the open file ``handle`` holds a dataset (not a group) named ``key``."""
    return isinstance(handle.get(key), h5py_module().Dataset)
