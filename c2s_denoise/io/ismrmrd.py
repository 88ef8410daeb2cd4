"""The ISMRMRD header of fastMRI / M4Raw files: the XML text and the few numbers read from it."""

from __future__ import annotations

import re
from typing import Any

from .hdf5 import is_dataset

__all__ = ["HEADER_KEY", "declared_coils", "header_text", "reconstruction_matrix"]

#: The dataset holding the ISMRMRD header XML.
HEADER_KEY = "ismrmrd_header"

_RECEIVER_CHANNELS = re.compile(r"<receiverChannels>\s*(\d+)\s*</receiverChannels>")
_RECON_MATRIX = re.compile(r"<reconSpace>.*?<matrixSize>\s*<x>\s*(\d+)\s*</x>\s*<y>\s*(\d+)\s*</y>", re.S)


def header_text(handle: Any) -> str:
    """The ISMRMRD header XML of an open HDF5 file as text ("" when the file has none)."""
    if not is_dataset(handle, HEADER_KEY):
        return ""
    header = handle[HEADER_KEY][()]
    return header.decode("utf-8", "replace") if isinstance(header, bytes) else str(header)


def declared_coils(handle: Any) -> int | None:
    """Receiver channels declared in the ISMRMRD header, or None."""
    found = _RECEIVER_CHANNELS.search(header_text(handle))
    return int(found.group(1)) if found else None


def reconstruction_matrix(handle: Any) -> tuple[int, int] | None:
    """The header's ``reconSpace`` matrix size ``(x, y)``, or None (fastMRI crops the image to it)."""
    found = _RECON_MATRIX.search(header_text(handle))
    return (int(found.group(1)), int(found.group(2))) if found else None
