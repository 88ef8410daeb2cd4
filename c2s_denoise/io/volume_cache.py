"""A temporary HDF5 file of read volumes, so that a fit over many files holds one volume in memory at a time.

``fit --stream`` reads each input once (for k-space: combines its coils into complex images),
stores the volume here and drops it from memory; training then reads its patches from the
cache's datasets, which :class:`~c2s_denoise.C2SDenoiser` accepts as lazily readable volumes.
Reads go through the operating system's file cache, not the process's memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import C2SInputError, describe_exception
from .hdf5 import h5py_module

__all__ = ["VolumeCache"]


class VolumeCache(contextlib.AbstractContextManager):
    """A temporary HDF5 file (removed on exit) holding volumes as contiguous datasets.

    Parameters
    ----------
    folder : path-like, optional
        Where the file is made (default: the system's temporary folder, ``TMPDIR``).
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        descriptor, name = tempfile.mkstemp(prefix=".c2s-cache-", suffix=".h5", dir=folder)
        os.close(descriptor)
        self.path = Path(name)
        try:
            self.handle = h5py_module().File(self.path, "w")
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        self.count = 0

    def add(self, volume: np.ndarray) -> Any:
        """Store ``volume`` and return its dataset, open for reading (``shape``, ``dtype``, slicing)."""
        try:
            dataset = self.handle.create_dataset(f"volume{self.count}", data=volume)
            self.handle.flush()
        except Exception as exc:  # e.g. no space left in the temporary folder
            raise C2SInputError(
                self.path, f"cannot cache the training volumes ({describe_exception(exc)}); set TMPDIR to a larger disk"
            ) from None
        self.count += 1
        return dataset

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(Exception):
            self.handle.close()
        self.path.unlink(missing_ok=True)
