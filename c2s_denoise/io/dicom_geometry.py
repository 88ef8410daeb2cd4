"""The geometry and intensity scaling of a DICOM series: where each slice is, in what order, how it is rescaled.

A single-frame series gives each slice's ``ImagePositionPatient``, ``ImageOrientationPatient``,
``PixelSpacing`` and ``RescaleSlope`` / ``RescaleIntercept`` at the top level of its dataset; an
enhanced multi-frame object gives them per frame in ``PerFrameFunctionalGroupsSequence`` or for
every frame in ``SharedFunctionalGroupsSequence``. :func:`series_geometry` reads both and sorts the
slices along the slice normal; :func:`group_item` finds the item the writer updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import C2SInputError

__all__ = [
    "PIXEL_VALUES",
    "PLANE_POSITION",
    "SeriesGeometry",
    "frame_count",
    "group_item",
    "is_multiframe",
    "series_geometry",
]

#: Functional group sequences (enhanced objects) that hold what is read here.
PIXEL_VALUES = "PixelValueTransformationSequence"
PLANE_POSITION = "PlanePositionSequence"
_ORIENTATION = "PlaneOrientationSequence"
_MEASURES = "PixelMeasuresSequence"

_SPACING_TOLERANCE = 0.01  # slice gaps may differ from their median by 1%
_ORIENTATION_TOLERANCE = 1e-4


@dataclass
class SeriesGeometry:
    """Slices (single-frame files, or the frames of one object) in input order, and their order in space.

    Attributes
    ----------
    order : numpy.ndarray
        Slice ``k`` of the volume is input slice ``order[k]``: sorted along the slice normal, or by
        ``InstanceNumber`` (frame number) when positions are missing.
    rescale : list of (float, float)
        ``(slope, intercept)`` of each input slice (1 and 0 when absent).
    positions : numpy.ndarray or None
        ``(n, 3)`` ``ImagePositionPatient`` of each input slice, in mm.
    orientation : list of float or None
        The series' ``ImageOrientationPatient`` (row direction, then column direction).
    pixel_spacing : list of float or None
        ``(row spacing, column spacing)`` in mm (``PixelSpacing``).
    slice_spacing : float or None
        Mean distance between neighbouring slices along the normal (without positions:
        ``SpacingBetweenSlices``, else ``SliceThickness``).
    """

    order: np.ndarray
    rescale: list[tuple[float, float]]
    positions: np.ndarray | None
    orientation: list[float] | None
    pixel_spacing: list[float] | None
    slice_spacing: float | None


def frame_count(ds: Any) -> int:
    """``NumberOfFrames`` (1 when absent)."""
    return int(ds.get("NumberOfFrames") or 1)


def is_multiframe(ds: Any) -> bool:
    """Whether ``ds`` is a multi-frame object (several frames, or an enhanced object's functional groups)."""
    return frame_count(ds) > 1 or "PerFrameFunctionalGroupsSequence" in ds


def group_item(ds: Any, frame: int | None, sequence: str) -> Any:
    """The item of functional group ``sequence`` that applies to ``frame``: per frame, else shared; or None."""
    groups = []
    if frame is not None and "PerFrameFunctionalGroupsSequence" in ds:
        groups.append(ds.PerFrameFunctionalGroupsSequence[frame])
    if "SharedFunctionalGroupsSequence" in ds and len(ds.SharedFunctionalGroupsSequence):
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for group in groups:
        if sequence in group and len(group[sequence].value):
            return group[sequence].value[0]
    return None


def _value(ds: Any, frame: int | None, sequence: str, keyword: str) -> Any:
    """``keyword`` of ``frame`` from its functional groups (enhanced objects), else from the top level."""
    item = group_item(ds, frame, sequence) if frame is not None else None
    if item is not None and keyword in item:
        return item[keyword].value
    return ds.get(keyword)


def _floats(value: Any) -> list[float] | None:
    """A DICOM number or list of numbers as floats; None when absent, empty or not numeric."""
    if value is None or (isinstance(value, str | bytes) and not value.strip()):
        return None
    items = [value] if isinstance(value, str | bytes | int | float) else list(value)
    try:
        return [float(v) for v in items]
    except (TypeError, ValueError):
        return None


def series_geometry(path: Path, names: list[str], datasets: list[Any], multiframe: bool) -> SeriesGeometry:
    """Read the geometry and rescaling of one series and sort its slices.

    Parameters
    ----------
    path : pathlib.Path
        The input (folder or file), named in errors.
    names : list of str
        The file name of each dataset, named in errors.
    datasets : list of pydicom.Dataset
        Single-frame slices, or one multi-frame object.
    multiframe : bool
        Whether ``datasets`` is one multi-frame object.

    Raises
    ------
    C2SInputError
        If the slices differ in orientation, two are at the same position, or the gaps between
        them differ by more than 1% of their median.
    """
    if multiframe:
        frames: list[tuple[Any, int | None]] = [(datasets[0], i) for i in range(frame_count(datasets[0]))]
        labels = [f"frame {i + 1} of {names[0]}" for i in range(len(frames))]
        instance = list(range(len(frames)))
    else:
        frames = [(ds, None) for ds in datasets]
        labels = list(names)
        instance = [int(ds.get("InstanceNumber") or 0) for ds in datasets]
    rescale = []
    for ds, i in frames:
        slope = _floats(_value(ds, i, PIXEL_VALUES, "RescaleSlope"))
        intercept = _floats(_value(ds, i, PIXEL_VALUES, "RescaleIntercept"))
        rescale.append((slope[0] if slope else 1.0, intercept[0] if intercept else 0.0))
    positions = [_floats(_value(ds, i, PLANE_POSITION, "ImagePositionPatient")) for ds, i in frames]
    orientations = [_floats(_value(ds, i, _ORIENTATION, "ImageOrientationPatient")) for ds, i in frames]
    spacing = _floats(_value(*frames[0], _MEASURES, "PixelSpacing"))
    fallback = _floats(_value(*frames[0], _MEASURES, "SpacingBetweenSlices")) or _floats(
        _value(*frames[0], _MEASURES, "SliceThickness")
    )
    geometry = SeriesGeometry(
        order=np.argsort(np.asarray(instance), kind="stable"),
        rescale=rescale,
        positions=None,
        orientation=None,
        pixel_spacing=spacing[:2] if spacing and len(spacing) >= 2 else None,
        slice_spacing=fallback[0] if fallback else None,
    )
    if all(p is not None and len(p) == 3 for p in positions) and all(
        o is not None and len(o) == 6 for o in orientations
    ):
        geometry.positions = np.asarray(positions, dtype=np.float64)
        geometry.orientation = orientations[0]
        _sort_along_normal(path, labels, np.asarray(orientations, dtype=np.float64), geometry)
    return geometry


def _sort_along_normal(path: Path, labels: list[str], orientations: np.ndarray, geometry: SeriesGeometry) -> None:
    """Sort the slices along the normal and set the slice spacing, checking that they are parallel and evenly spaced."""
    differs = np.abs(orientations - orientations[0]).max(axis=1) > _ORIENTATION_TOLERANCE
    if differs.any():
        other = labels[int(np.argmax(differs))]
        raise C2SInputError(
            path,
            f"slices have different orientations ({labels[0]} and {other}); a series of parallel slices is expected",
        )
    assert geometry.positions is not None
    along = geometry.positions @ np.cross(orientations[0, :3], orientations[0, 3:])
    order = np.argsort(along, kind="stable")
    geometry.order = order
    if len(order) == 1:
        return
    gaps = np.diff(along[order])
    median = float(np.median(gaps))
    if gaps.min() <= 1e-6 * max(1.0, abs(median)):
        k = int(np.argmin(gaps))
        raise C2SInputError(
            path,
            f"{labels[order[k]]} and {labels[order[k + 1]]} are at the same position: the series holds several images "
            "per position (echoes, phases, time points?), not one volume",
        )
    if np.abs(gaps - median).max() > _SPACING_TOLERANCE * median:
        k = int(np.argmax(np.abs(gaps - median)))
        raise C2SInputError(
            path,
            f"slice positions are not evenly spaced: {gaps[k]:.4g} mm between {labels[order[k]]} and "
            f"{labels[order[k + 1]]}, {median:.4g} mm elsewhere (missing slices?)",
        )
    geometry.slice_spacing = float(np.mean(gaps))
