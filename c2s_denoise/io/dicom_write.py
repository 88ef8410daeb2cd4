"""Writing a derived DICOM series: the denoised volume with the geometry and identifiers of its source.

A folder input gives a folder output, one file per slice (``IM0001.dcm`` ... along the slice
normal), or one file for a multi-frame input; a file input gives one file. Every output has a new
``SeriesInstanceUID`` (one for the series) and ``SOPInstanceUID``, ``ImageType``
``DERIVED\\SECONDARY`` (the other values kept), ``SeriesDescription`` + ``" (C2S denoised)"``,
``SeriesNumber`` + 1000, a ``DerivationDescription`` (the provenance) and a
``SourceImageSequence`` naming the source image; patient, study and frame-of-reference identifiers
and the geometry (``ImagePositionPatient``, ``ImageOrientationPatient``, ``PixelSpacing``,
``SliceThickness``) are kept, a centre crop moving the position. Pixels are stored in the input's
integer type, uncompressed (Explicit VR Little Endian), with the input's ``RescaleSlope`` /
``RescaleIntercept`` when the denoised values fit its range, else a new slope (and, for unsigned
pixels below the intercept, a new intercept) for the whole series. A folder is written atomically:
into a temporary folder, renamed into place when complete.
"""

from __future__ import annotations

import copy
import datetime
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_folder, atomic_write, check_output_folder, check_output_path, same_file
from .dicom_geometry import PIXEL_VALUES, PLANE_POSITION, group_item
from .dicom_read import has_dicom_marker, pydicom_module
from .errors import C2SInputError
from .loaded_image import LoadedImage

__all__ = ["DESCRIPTION_SUFFIX", "SERIES_NUMBER_OFFSET", "check_series_output", "choose_rescale", "write_dicom"]

#: Appended to the source's ``SeriesDescription``.
DESCRIPTION_SUFFIX = " (C2S denoised)"
#: Added to the source's ``SeriesNumber``.
SERIES_NUMBER_OFFSET = 1000
# Elements that described the source's pixels and would be wrong for the derived ones.
_STALE = (
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
    "IconImageSequence",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "DataSetTrailingPadding",
)


def check_series_output(
    path: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]] = (), overwrite: bool = False
) -> Path:
    """Check that the series folder ``path`` may be written (or, with ``overwrite``, replaced).

    Raises
    ------
    C2SInputError
        If ``path`` is an input or holds one, exists (without ``overwrite``), is a file, or is a
        folder holding anything but DICOM files (never replaced); or its parent cannot be written.
    """
    out = Path(path)
    check_output_folder(out.parent if str(out.parent) else Path("."))
    for source in inputs:
        if same_file(out, source) or Path(source).resolve().is_relative_to(out.resolve()):
            raise C2SInputError(out, "output would overwrite an input file; choose another output")
    if out.exists() or out.is_symlink():
        if out.is_symlink() or not out.is_dir():
            raise C2SInputError(out, "output exists and is not a folder (a DICOM series is written as a folder)")
        if not overwrite:
            raise C2SInputError(out, "output exists; pass overwrite=True to replace it")
        others = [entry.name for entry in out.iterdir() if not (entry.is_file() and has_dicom_marker(entry))]
        if others:
            raise C2SInputError(out, f"output folder holds {others[0]!r}, which is not DICOM; it is never replaced")
    return out


def write_dicom(
    path: str | os.PathLike[str],
    data: np.ndarray,
    like: LoadedImage,
    provenance: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write ``data`` as a series derived from the DICOM image ``like``, atomically.

    Parameters
    ----------
    path : str or path-like
        The output: a folder when ``like`` was read from a folder, else a file.
    data : numpy.ndarray
        ``(D, H, W)`` values in the units of ``like.data``, same shape.
    like : LoadedImage
        The DICOM image ``data`` was computed from (:func:`~c2s_denoise.io.dicom_read.load_dicom`).
    provenance : dict, optional
        Written into ``DerivationDescription`` as ``key=value`` pairs.
    overwrite : bool, default False
        Whether an existing output (for a folder: one holding only DICOM files) may be replaced.
    inputs : iterable of path-like, optional
        Inputs that must not be overwritten (``like.source`` always is one).

    Returns
    -------
    pathlib.Path
        The written folder or file.
    """
    pydicom = pydicom_module(path)
    meta = like.meta
    volume = np.asarray(data, dtype=np.float64)
    if like.format != "dicom" or volume.shape != like.data.shape:
        raise ValueError(
            f"data of shape {volume.shape} cannot be written like a {like.format} image of {like.data.shape}"
        )
    if not np.isfinite(volume).all():
        raise ValueError("data contain NaN or infinite values")
    signed = meta["pixel_representation"] == 1
    low, high = (
        (-(2 ** (meta["bits_stored"] - 1)), 2 ** (meta["bits_stored"] - 1) - 1)
        if signed
        else (0, 2 ** meta["bits_stored"] - 1)
    )
    rescale = choose_rescale(volume, meta["rescale"], low, high)
    stored = np.stack([np.rint((volume[k] - b) / s) for k, (s, b) in enumerate(rescale)])
    stored = stored.astype(f"<{'i' if signed else 'u'}{meta['bits_allocated'] // 8}")
    series_uid = pydicom.uid.generate_uid()
    datasets = [_derived(header, series_uid, provenance, meta) for header in meta["headers"]]
    if meta["multiframe"]:
        order = meta["frame_order"]
        frames, frame_rescale = np.empty_like(stored), [(1.0, 0.0)] * len(order)
        for k, frame in enumerate(order):
            frames[frame], frame_rescale[frame] = stored[k], rescale[k]
        _fill(datasets[0], frames, frame_rescale, meta)
    else:
        for k, ds in enumerate(datasets):
            _fill(ds, stored[k : k + 1], rescale[k : k + 1], meta)
    protected = [like.source, *inputs]
    if meta["single_file"]:
        out = check_output_path(path, inputs=protected, overwrite=overwrite)
        with atomic_write(out, overwrite=overwrite) as tmp:
            datasets[0].save_as(tmp, enforce_file_format=True)
        return out
    out = check_series_output(path, inputs=protected, overwrite=overwrite)
    width = max(4, len(str(len(datasets))))
    with atomic_folder(out, overwrite=overwrite) as tmp:
        for k, ds in enumerate(datasets):
            ds.save_as(tmp / f"IM{k + 1:0{width}d}.dcm", enforce_file_format=True)
    return out


def choose_rescale(
    volume: np.ndarray, rescale: list[tuple[float, float]], low: int, high: int
) -> list[tuple[float, float]]:
    """The ``(slope, intercept)`` of each slice that stores ``volume`` in integers ``low..high`` without clipping.

    The input's ``rescale`` when every slice fits; otherwise one slope (and intercept) for the
    whole series: the input's intercept, or for unsigned pixels below it the smallest value, and
    the smallest slope (as written in a DICOM decimal string) that fits the largest value.
    """
    if all(_fits(volume[k], s, b, low, high) for k, (s, b) in enumerate(rescale)):
        return list(rescale)
    smallest, largest = float(volume.min()), float(volume.max())
    intercepts = {b for _, b in rescale}
    intercept = intercepts.pop() if len(intercepts) == 1 else 0.0
    intercept = _decimal(smallest if low == 0 and smallest < intercept else intercept)
    needed = [(largest - intercept) / high, (smallest - intercept) / low if low < 0 else 0.0]
    slope = _decimal(max(*needed, min(s for s, _ in rescale), np.finfo(float).tiny))
    for _ in range(1000):
        if all(_fits(volume[k], slope, intercept, low, high) for k in range(len(volume))):
            return [(slope, intercept)] * len(volume)
        slope = _decimal(slope * (1 + 1e-9) if slope > 0 else np.finfo(float).tiny)
    raise ValueError("no rescale slope stores these values")  # pragma: no cover - the slope grows until they fit


def _fits(values: np.ndarray, slope: float, intercept: float, low: int, high: int) -> bool:
    stored = np.rint((values - intercept) / slope)
    return bool(stored.min() >= low and stored.max() <= high)


def _decimal(value: float) -> float:
    """``value`` as read back from the DICOM decimal string (16 characters at most) it is written as."""
    return float(_ds(value))


def _ds(value: float) -> str:
    for digits in range(15, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.1g}"  # pragma: no cover


def _derived(header: Any, series_uid: str, provenance: dict[str, Any] | None, meta: dict[str, Any]) -> Any:
    """A copy of ``header`` as an image of the derived series: new UIDs, type, description, number, provenance."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = copy.deepcopy(header)
    if "SOPClassUID" in header and "SOPInstanceUID" in header:
        source = Dataset()
        source.ReferencedSOPClassUID = header.SOPClassUID
        source.ReferencedSOPInstanceUID = header.SOPInstanceUID
        ds.SourceImageSequence = [source]
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = series_uid
    kind = list(ds.ImageType) if "ImageType" in ds and ds.ImageType else []
    ds.ImageType = ["DERIVED", "SECONDARY", *kind[2:]]
    description = str(ds.get("SeriesDescription") or "")[: 64 - len(DESCRIPTION_SUFFIX)]
    ds.SeriesDescription = (description + DESCRIPTION_SUFFIX).lstrip()
    ds.SeriesNumber = int(ds.get("SeriesNumber") or 0) + SERIES_NUMBER_OFFSET
    record = "; ".join(f"{key}={value}" for key, value in (provenance or {}).items() if value is not None)
    ds.DerivationDescription = ("Denoised with c2s-denoise (Corruption2Self)" + (f": {record}" if record else ""))[
        :1024
    ]
    now = datetime.datetime.now()
    for moment in ("InstanceCreation", "Series", "Content"):
        setattr(ds, f"{moment}Date", now.strftime("%Y%m%d"))
        setattr(ds, f"{moment}Time", now.strftime("%H%M%S"))
    for keyword in _STALE:
        if keyword in ds:
            delattr(ds, keyword)
    for group in [*ds.get("SharedFunctionalGroupsSequence", []), *ds.get("PerFrameFunctionalGroupsSequence", [])]:
        for item in group.get("MRImageFrameTypeSequence", []):
            if item.get("FrameType"):
                item.FrameType = ["DERIVED", *list(item.FrameType)[1:]]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _fill(ds: Any, frames: np.ndarray, rescale: list[tuple[float, float]], meta: dict[str, Any]) -> None:
    """Set the pixel data, size, rescale and (after a centre crop) position of ``ds``, frames in its own order."""
    from pydicom.dataset import Dataset

    ds.Rows, ds.Columns = (int(n) for n in frames.shape[1:])
    raw = frames.tobytes()
    ds.PixelData = raw + b"\0" * (len(raw) % 2)
    ds["PixelData"].VR = "OB" if meta["bits_allocated"] == 8 else "OW"
    multiframe = meta["multiframe"]
    shift = _crop_shift(meta)
    for frame, (slope, intercept) in enumerate(rescale):
        index = frame if multiframe else None
        target = group_item(ds, index, PIXEL_VALUES) if multiframe else ds
        if target is None and (slope, intercept) != (1.0, 0.0):
            if "SharedFunctionalGroupsSequence" not in ds or not len(ds.SharedFunctionalGroupsSequence):
                ds.SharedFunctionalGroupsSequence = [Dataset()]
            target = Dataset()
            ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence = [target]
        current = None if target is None else (target.get("RescaleSlope"), target.get("RescaleIntercept"))
        if current is not None and (float(current[0] or 1), float(current[1] or 0)) != (slope, intercept):
            target.RescaleSlope, target.RescaleIntercept = _ds(slope), _ds(intercept)
            if "RescaleType" not in target:
                target.RescaleType = "US"
        position = group_item(ds, index, PLANE_POSITION) if multiframe else ds
        if shift is not None and position is not None and "ImagePositionPatient" in position:
            moved = np.asarray([float(v) for v in position.ImagePositionPatient]) + shift
            position.ImagePositionPatient = [_ds(v) for v in moved]


def _crop_shift(meta: dict[str, Any]) -> np.ndarray | None:
    """How far a centre crop (see :func:`~c2s_denoise.io.fastmri.center_crop`) moved the first pixel, in mm."""
    if "uncropped_shape" not in meta or meta.get("orientation") is None or meta.get("pixel_spacing") is None:
        return None
    height, width = meta["uncropped_shape"][-2:]
    top, left = (height - meta["crop"][0]) // 2, (width - meta["crop"][1]) // 2
    orientation = np.asarray(meta["orientation"], dtype=np.float64)
    row_spacing, column_spacing = meta["pixel_spacing"]
    return left * column_spacing * orientation[:3] + top * row_spacing * orientation[3:]
