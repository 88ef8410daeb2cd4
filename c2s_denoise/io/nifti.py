"""NIfTI files (``.nii``, ``.nii.gz``) through nibabel, an optional dependency.

Install it with ``pip install "c2s-denoise[nifti]"``. A volume is returned as
``(D, H, W)`` with the slices taken along ``slice_axis`` (the last axis by
default, the usual axial direction); it is written back in the original
orientation and shape, with the original header and affine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import C2SInputError, describe_exception
from .loaded_image import LoadedImage, as_volume

__all__ = ["load_nifti", "write_nifti"]


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError:
        raise C2SInputError(
            None, "reading NIfTI files needs nibabel; install it with 'pip install \"c2s-denoise[nifti]\"'"
        ) from None
    return nibabel


def load_nifti(path: str | Path, *, slice_axis: int = -1) -> LoadedImage:
    """Read a 2-D or 3-D NIfTI image, or a 4-D series of 3-D volumes (along the last axis).

    Parameters
    ----------
    path : str or pathlib.Path
        ``.nii`` or ``.nii.gz`` file, opened read-only.
    slice_axis : int, default -1
        Axis of the stored 3-D array along which the volume is cut into 2-D
        slices. Ignored for 2-D images. Trailing axes of length 1 (e.g.
        ``(X, Y, Z, 1)``) are dropped first.

    Returns
    -------
    LoadedImage
        ``data`` is ``(D, H, W)``, or ``(T, D, H, W)`` for a 4-D series:
        float32, or float64 when the file stores float64. ``meta`` holds ``affine``, ``header``, ``image_class``,
        ``slice_axis`` and ``shape`` (the stored shape).

    Raises
    ------
    C2SInputError
        If nibabel is missing, the file is missing, truncated or not NIfTI,
        the image has more than 4 non-trivial dimensions, or the data are
        complex or not finite.
    """
    nib = _nibabel()
    path = Path(path)
    if not path.is_file():
        raise C2SInputError(path, "file not found" if not path.exists() else "not a regular file")
    try:
        img = nib.load(path)
        stored_dtype = np.dtype(img.header.get_data_dtype())
        if stored_dtype.kind == "c":
            raise C2SInputError(path, "NIfTI data are complex; a magnitude (real) image is expected")
        dtype = np.float64 if stored_dtype == np.float64 else np.float32
        array = np.asarray(img.get_fdata(dtype=dtype))
    except C2SInputError:
        raise
    except Exception as exc:  # nibabel raises many types for corrupt or truncated files
        raise C2SInputError(path, f"not a readable NIfTI file ({describe_exception(exc)})") from None
    shape = array.shape
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    series = array.ndim == 4  # volumes along the last axis (diffusion directions, time points)
    if array.ndim in (3, 4):
        if not -3 <= slice_axis <= 2:
            raise C2SInputError(path, f"slice axis {slice_axis} is out of range for a 3-D image")
        axis = slice_axis % 3
        array = np.moveaxis(array, axis, 0)
    elif array.ndim == 2:
        axis = None
    else:
        raise C2SInputError(path, f"NIfTI image has shape {shape}; only 2-D, 3-D and 4-D images are supported")
    if series:
        stack = np.moveaxis(array, -1, 0)
        volume = np.stack([as_volume(np.ascontiguousarray(v), path, what="NIfTI volume") for v in stack])
    else:
        volume = as_volume(np.ascontiguousarray(array), path, what="NIfTI image")
    meta: dict[str, Any] = {
        "affine": None if img.affine is None else np.array(img.affine),
        "header": img.header.copy(),
        "image_class": type(img),
        "slice_axis": axis,
        "shape": tuple(shape),
        "voxel_size": _voxel_size(img.header, axis),
        "dtype": str(stored_dtype),  # as stored: what an output of dtype="keep" takes
        "scaled": not _unscaled(img.header),
    }
    return LoadedImage(data=volume, format="nifti", meta=meta, source=path)


def _unscaled(header: Any) -> bool:
    """Whether the stored values are the image's values (no ``scl_slope``/``scl_inter`` other than 1 and 0)."""
    slope, inter = header.get_slope_inter()
    return (slope is None or np.isnan(slope) or slope == 1) and (inter is None or np.isnan(inter) or inter == 0)


def _voxel_size(header: Any, axis: int | None) -> tuple[float, ...]:
    """Voxel size in the order of the loaded data: ``(slice, row, column)`` for volumes, ``(row, column)`` for images."""
    zooms = [float(z) for z in header.get_zooms()[:3]]
    if axis is None or len(zooms) < 3:
        return tuple(zooms[:2])
    return (zooms[axis], *(z for i, z in enumerate(zooms) if i != axis))


def write_nifti(target: str | Path, data: np.ndarray, like: LoadedImage) -> None:
    """Write ``(D, H, W)`` data as NIfTI in the layout of ``like`` (not atomic by itself).

    Parameters
    ----------
    target : str or pathlib.Path
        File to create; its suffix (``.nii`` or ``.nii.gz``) selects compression.
    data : numpy.ndarray
        Volume of the same shape as ``like.data``.
    like : LoadedImage
        The NIfTI image ``data`` was computed from. Its header (with the
        data type set to float32, float64 for float64 data, or the integer
        type of integer data, and no intensity scaling), its qform/sform and so its affine are kept
        exactly; the slices are put back along the original axis.
    """
    nib = _nibabel()
    meta = like.meta
    volume = np.asarray(data)
    if volume.ndim == 4:  # a series: its volumes back on the last axis
        volume = np.moveaxis(volume, 0, -1)
    if meta.get("slice_axis") is not None:
        volume = np.moveaxis(volume, 0, meta["slice_axis"])
    volume = volume.reshape(meta["shape"])
    dtype = volume.dtype if volume.dtype.kind in "iu" else np.float64 if volume.dtype == np.float64 else np.float32
    header = meta["header"].copy()
    header.set_data_dtype(dtype)
    header.set_slope_inter(np.nan, np.nan)
    # affine=None: nibabel keeps the header's qform and sform (codes included) untouched.
    image = meta["image_class"](volume.astype(dtype, copy=False), None, header=header)
    nib.save(image, str(target))
