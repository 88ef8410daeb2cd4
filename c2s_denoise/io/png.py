"""A minimal 8-bit grayscale PNG writer (standard library and NumPy only)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .atomic import atomic_write

__all__ = ["encode_png", "side_by_side", "to_uint8", "write_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def to_uint8(image: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Scale an image linearly to 0..255 and round.

    Parameters
    ----------
    image : numpy.ndarray
        2-D real image.
    vmin, vmax : float, optional
        Values mapped to 0 and 255 (others are clipped). Default: the image
        minimum and maximum.

    Returns
    -------
    numpy.ndarray
        uint8 image of the same shape.
    """
    arr = np.asarray(image, dtype=np.float64)
    lo = float(np.min(arr)) if vmin is None else float(vmin)
    hi = float(np.max(arr)) if vmax is None else float(vmax)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip(np.rint((arr - lo) * scale), 0, 255).astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as a grayscale PNG.

    Parameters
    ----------
    image : numpy.ndarray
        ``(height, width)`` array of dtype uint8.

    Returns
    -------
    bytes
        The PNG file content (colour type 0, bit depth 8, no interlace).

    Raises
    ------
    ValueError
        If ``image`` is not a non-empty 2-D uint8 array.
    """
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.dtype != np.uint8 or arr.size == 0:
        raise ValueError(f"expected a non-empty 2-D uint8 array, got {arr.dtype} of shape {arr.shape}")
    height, width = arr.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # Each scanline starts with its filter type; 0 = none.
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), arr], axis=1)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(np.ascontiguousarray(rows).tobytes(), 9))
        + _chunk(b"IEND", b"")
    )


def side_by_side(images: list[np.ndarray], gap: int = 2, fill: float = 1.0) -> np.ndarray:
    """Place 2-D images of equal height left to right, separated by ``gap`` columns of ``fill``.

    Parameters
    ----------
    images : list of numpy.ndarray
        2-D images with the same number of rows.
    gap : int, default 2
        Width of the separators in pixels.
    fill : float, default 1.0
        Value of the separator pixels.

    Returns
    -------
    numpy.ndarray
        The combined float64 image.
    """
    height = images[0].shape[0]
    parts: list[np.ndarray] = []
    for index, image in enumerate(images):
        if index:
            parts.append(np.full((height, gap), fill, dtype=np.float64))
        parts.append(np.asarray(image, dtype=np.float64))
    return np.concatenate(parts, axis=1)


def write_png(
    path: str | Path,
    image: np.ndarray,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    zoom: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write a 2-D image as an 8-bit grayscale PNG, atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file.
    image : numpy.ndarray
        2-D image; uint8 images are written as they are, others are scaled
        with :func:`to_uint8`.
    vmin, vmax : float, optional
        Display range for non-uint8 images.
    zoom : int, default 1
        Integer upscaling factor (nearest neighbour).
    overwrite : bool, default False
        Whether an existing file may be replaced.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    arr = np.asarray(image)
    pixels = arr if arr.dtype == np.uint8 else to_uint8(arr, vmin, vmax)
    if zoom > 1:
        pixels = np.repeat(np.repeat(pixels, zoom, axis=0), zoom, axis=1)
    data = encode_png(pixels)
    path = Path(path)
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return path
