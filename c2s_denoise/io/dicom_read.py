"""Reading DICOM: one series from a folder of slices, or one file (a slice or an enhanced multi-frame MR object).

pydicom is an optional dependency: ``pip install "c2s-denoise[dicom]"`` (from a checkout,
``pip install -e ".[dicom]"``). A DICOM file is one with the ``DICM`` marker at byte 128, whatever
its name (``*.dcm``, ``*.IMA``, no suffix); a folder is read as one series from every such file
directly in it (``DICOMDIR`` files and hidden files are skipped, sub-folders are not entered).

Slices are sorted by their position along the slice normal, must share one orientation and size,
and must be evenly spaced within 1% (:mod:`~c2s_denoise.io.dicom_geometry`). Pixel values are
rescaled with ``RescaleSlope`` / ``RescaleIntercept`` (for an enhanced object, each frame's, from
its functional groups). :mod:`~c2s_denoise.io.dicom_write` writes the derived series.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .dicom_geometry import SeriesGeometry, frame_count, is_multiframe, series_geometry
from .errors import C2SInputError, describe_exception
from .loaded_image import LoadedImage, as_volume

__all__ = [
    "DICOM_EXTRA",
    "dicom_files",
    "has_dicom_marker",
    "is_dicom_folder",
    "load_dicom",
    "probe_dicom",
    "pydicom_module",
]

#: How to install the optional dependency.
DICOM_EXTRA = 'pip install "c2s-denoise[dicom]"'

_MARKER, _MARKER_OFFSET = b"DICM", 128
_DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory (DICOMDIR)
_JPEG_LS, _JPEG_2000 = "pyjpegls", "pylibjpeg pylibjpeg-openjpeg"
# The decoder to suggest by transfer syntax; the other compressed ones: pylibjpeg pylibjpeg-libjpeg.
_DECODERS = {"1.2.840.10008.1.2.4.80": _JPEG_LS, "1.2.840.10008.1.2.4.81": _JPEG_LS}
_DECODERS.update({f"1.2.840.10008.1.2.4.{n}": _JPEG_2000 for n in (90, 91, 201, 202, 203)})


def pydicom_module(path: str | Path | None = None) -> Any:
    """The ``pydicom`` module, or a :class:`C2SInputError` (naming ``path``) saying how to install it."""
    try:
        import pydicom
    except ImportError:
        raise C2SInputError(path, f"reading and writing DICOM needs pydicom; install it with '{DICOM_EXTRA}'") from None
    return pydicom


def has_dicom_marker(path: str | Path) -> bool:
    """Whether ``path`` is a readable file with the DICOM marker ``DICM`` at byte 128."""
    try:
        with open(path, "rb") as handle:
            handle.seek(_MARKER_OFFSET)
            return handle.read(len(_MARKER)) == _MARKER
    except OSError:
        return False


def is_dicom_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a DICOM file (a series, read as one input); pydicom is not needed."""
    path = Path(path)
    try:
        return path.is_dir() and any(entry.is_file() and has_dicom_marker(entry) for entry in path.iterdir())
    except OSError:
        return False


def dicom_files(folder: str | Path) -> list[Path]:
    """The DICOM files directly in ``folder``, sorted by name (hidden files skipped); pydicom is not needed.

    Raises
    ------
    C2SInputError
        If the folder cannot be listed or holds no file with the ``DICM`` marker.
    """
    folder = Path(folder)
    try:
        entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    except OSError as exc:
        raise C2SInputError(folder, f"folder cannot be listed ({exc.strerror or type(exc).__name__})") from None
    files = [entry for entry in entries if entry.is_file() and has_dicom_marker(entry)]
    if not files:
        raise C2SInputError(
            folder,
            f"not a regular file, and no DICOM files in this folder: none of its {len(entries)} entries is a file "
            f"with the DICM marker at byte {_MARKER_OFFSET} (a folder is read as one DICOM series)",
        )
    return files


def probe_dicom(path: str | Path) -> None:
    """Check a DICOM file or series folder without decoding its pixels (one series, pixel data, geometry).

    Raises
    ------
    C2SInputError
        As :func:`load_dicom`, except for the problems found only when the pixels are decoded.
    """
    path = Path(path)
    _read_series(path, pydicom_module(path), pixels=False)


def load_dicom(path: str | Path) -> LoadedImage:
    """Read one DICOM series: a folder of slices, a single slice, or an enhanced multi-frame file.

    Parameters
    ----------
    path : str or pathlib.Path
        A folder (every DICOM file directly in it: one series) or one DICOM file; opened read-only.

    Returns
    -------
    LoadedImage
        ``format="dicom"``; ``data`` is the float32 ``(D, H, W)`` volume of rescaled values, its
        slices sorted along the slice normal. ``meta`` holds ``headers`` (the datasets without pixel
        data: one per slice in volume order, or the one multi-frame dataset), ``files`` (their
        names), ``multiframe``, ``frame_order`` (the input frame of each volume slice),
        ``single_file``, ``rescale`` (slope and intercept of each volume slice), ``pixel_dtype``,
        ``bits_allocated``, ``bits_stored``, ``pixel_representation``, ``transfer_syntax``,
        ``positions`` (``ImagePositionPatient`` of each volume slice), ``orientation``,
        ``pixel_spacing`` (row, column), ``slice_spacing`` and, where the spacing is known,
        ``voxel_size``: ``(slice, row, column)`` in mm, ``(row, column)`` for a single slice.

    Raises
    ------
    C2SInputError
        If pydicom is missing; for a folder without DICOM files, several series in one input,
        objects without pixel data, colour images, slices of different sizes or orientations,
        unevenly spaced slices, compressed pixel data without an installed decoder, or pixel data
        that cannot be decoded.
    """
    path = Path(path)
    files, datasets, geometry = _read_series(path, pydicom_module(path), pixels=True)
    multiframe = is_multiframe(datasets[0])
    stored = np.concatenate([_decode(ds, file) for file, ds in zip(files, datasets, strict=True)])
    slope, intercept = (np.array(values)[:, None, None] for values in zip(*geometry.rescale, strict=True))
    order = [int(i) for i in geometry.order]
    volume = (stored.astype(np.float64) * slope + intercept)[order].astype(np.float32)
    volume = as_volume(volume, path, what="DICOM pixel data")
    first = datasets[0]
    headers = [_header(ds) for ds in datasets]
    meta: dict[str, Any] = {
        "headers": headers if multiframe else [headers[i] for i in order],
        "files": [f.name for f in files] if multiframe else [files[i].name for i in order],
        "multiframe": multiframe,
        "frame_order": order,
        "single_file": path.is_file(),
        "rescale": [geometry.rescale[i] for i in order],
        "pixel_dtype": stored.dtype.newbyteorder("=").name,
        "bits_allocated": int(first.BitsAllocated),
        "bits_stored": int(first.get("BitsStored") or first.BitsAllocated),
        "pixel_representation": int(first.get("PixelRepresentation") or 0),
        "transfer_syntax": str(first.file_meta.get("TransferSyntaxUID", "")) if hasattr(first, "file_meta") else "",
        "positions": None if geometry.positions is None else geometry.positions[order].tolist(),
        "orientation": geometry.orientation,
        "pixel_spacing": geometry.pixel_spacing,
        "slice_spacing": geometry.slice_spacing,
    }
    if geometry.pixel_spacing is not None and (len(order) == 1 or geometry.slice_spacing is not None):
        in_plane = tuple(geometry.pixel_spacing)
        meta["voxel_size"] = in_plane if len(order) == 1 else (geometry.slice_spacing, *in_plane)
    return LoadedImage(data=volume, format="dicom", meta=meta, source=path)


def _read_series(path: Path, pydicom: Any, *, pixels: bool) -> tuple[list[Path], list[Any], SeriesGeometry]:
    """The files and datasets of ``path`` (pixel data read only with ``pixels``), checked to be one series."""
    files, datasets = [], []
    for file in dicom_files(path) if path.is_dir() else [path]:
        try:
            ds = pydicom.dcmread(file, defer_size=None if pixels else 1024)
        except Exception as exc:  # pydicom raises many types for corrupt or truncated files
            raise C2SInputError(file, f"not a readable DICOM file ({describe_exception(exc)})") from None
        meta = getattr(ds, "file_meta", None)
        if meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == _DIRECTORY_SOP_CLASS:
            if path.is_dir():
                continue
            raise C2SInputError(file, "is a DICOMDIR (an index of files); give the folder of one series instead")
        files.append(file)
        datasets.append(ds)
    if not datasets:
        raise C2SInputError(path, "holds only a DICOMDIR; give the folder of one series instead")
    series = Counter(str(ds.get("SeriesInstanceUID") or "(none)") for ds in datasets)
    if len(series) > 1:
        found = "; ".join(f"{uid} ({n} file{'s' * (n > 1)})" for uid, n in series.most_common())
        raise C2SInputError(path, f"holds {len(series)} DICOM series, one is read per input (a folder each): {found}")
    for file, ds in zip(files, datasets, strict=True):
        _check_image(file, ds, files[0], datasets[0])
    if len(datasets) > 1 and any(is_multiframe(ds) for ds in datasets):
        raise C2SInputError(path, f"holds {len(datasets)} objects, some multi-frame; give a multi-frame file alone")
    return files, datasets, series_geometry(path, [f.name for f in files], datasets, is_multiframe(datasets[0]))


def _check_image(file: Path, ds: Any, first_file: Path, first: Any) -> None:
    """An image object with pixel data, one sample per pixel, of the size and pixel type of the first slice."""
    if "PixelData" not in ds:
        floats = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
        sop = ds.get("SOPClassUID")
        kind = f" ({getattr(sop, 'name', sop)})" if sop else ""
        problem = "float pixel data are not supported" if floats else "holds no pixel data"
        raise C2SInputError(file, f"{problem}{kind}; an image series (e.g. MR) is expected")
    if int(ds.get("SamplesPerPixel") or 1) != 1:
        raise C2SInputError(file, f"colour images ({ds.SamplesPerPixel} samples per pixel) are not supported")
    if "Rows" not in ds or "Columns" not in ds or int(ds.get("BitsAllocated") or 0) not in (8, 16, 32):
        raise C2SInputError(file, "Rows, Columns or BitsAllocated (8, 16 or 32) is missing or unsupported")
    if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
        raise C2SInputError(
            file, f"image size {ds.Rows}x{ds.Columns} differs from {first.Rows}x{first.Columns} of {first_file.name}"
        )
    pixel_type = (int(ds.BitsAllocated), int(ds.get("PixelRepresentation") or 0))
    if pixel_type != (int(first.BitsAllocated), int(first.get("PixelRepresentation") or 0)):
        raise C2SInputError(file, f"pixel type (BitsAllocated, PixelRepresentation) differs from {first_file.name}'s")


def _decode(ds: Any, file: Path) -> np.ndarray:
    """The stored pixel values as ``(frames, rows, columns)``."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:
        if getattr(syntax, "is_compressed", False) and isinstance(exc, RuntimeError | NotImplementedError):
            decoder = _DECODERS.get(str(syntax), "pylibjpeg pylibjpeg-libjpeg")
            raise C2SInputError(
                file,
                f"pixel data are compressed as {syntax.name} ({syntax}) and no installed decoder reads them; "
                f"install one: pip install {decoder} (or python-gdcm)",
            ) from None
        raise C2SInputError(file, f"pixel data cannot be decoded ({describe_exception(exc)})") from None
    expected = (frame_count(ds), int(ds.Rows), int(ds.Columns))
    if pixels.dtype.kind not in "iu" or pixels.size != np.prod(expected):
        raise C2SInputError(file, f"decoded pixel data are {pixels.dtype} of shape {pixels.shape}, not {expected}")
    return pixels.reshape(expected)


def _header(ds: Any) -> Any:
    """``ds`` without its pixel data, fully parsed into a plain dataset (so it can be written in any encoding)."""
    from pydicom.dataset import Dataset

    if "PixelData" in ds:
        del ds.PixelData
    ds.walk(lambda dataset, element: None)  # converts every raw element, nested ones included
    header = Dataset()
    for element in ds:
        header.add(element)
    return header
