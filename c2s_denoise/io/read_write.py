"""Reading and writing image files of any supported format.

:func:`check_input_path`, :func:`probe_image`, :func:`load_image` and :func:`reads_complex`
check and read inputs (with one :class:`~c2s_denoise.io.options.ReadOptions`); :func:`save_image`
writes a result atomically in the format of its source. Each dispatches to the format's
module (:mod:`~c2s_denoise.io.fastmri`, :mod:`~c2s_denoise.io.nifti`, :mod:`~c2s_denoise.io.numpy_io`,
:mod:`~c2s_denoise.io.dicom_read` / :mod:`~c2s_denoise.io.dicom_write`). A DICOM input is a file with
the ``DICM`` marker (any name) or a folder holding one series, and gives an output of the same kind;
:func:`check_output_target` checks either kind of output.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write, check_output_path
from .dicom_read import dicom_files, has_dicom_marker
from .errors import C2SInputError, describe_exception
from .file_names import FORMATS, detect_format
from .loaded_image import LoadedImage
from .options import MAGNITUDE_READ, ReadOptions

__all__ = ["check_input_path", "check_output_target", "load_image", "probe_image", "reads_complex", "save_image"]

_SUPPORTED = ", ".join(s for suffixes in FORMATS.values() for s in suffixes) + (
    ", DICOM (a file with the DICM marker at byte 128, or a folder of one series)"
)


def check_input_path(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Check that ``path`` is an existing, readable file of a known format, or a folder of DICOM files.

    Parameters
    ----------
    path : str or path-like
        Input file, or folder holding one DICOM series.

    Returns
    -------
    tuple of (pathlib.Path, str)
        The path and its format name (see :data:`~c2s_denoise.io.file_names.FORMATS`).

    Raises
    ------
    C2SInputError
        If the file is missing, unreadable, or has an unknown suffix (and no DICOM marker), or is
        a folder without DICOM files.
    """
    p = Path(path)
    if not p.exists():
        raise C2SInputError(p, "file not found")
    if p.is_dir():
        dicom_files(p)  # a folder is a DICOM series: it must hold DICOM files
        return p, "dicom"
    if not p.is_file():
        raise C2SInputError(p, "not a regular file")
    if not os.access(p, os.R_OK):
        raise C2SInputError(p, "file is not readable (permission denied)")
    fmt = detect_format(p) or ("dicom" if has_dicom_marker(p) else None)
    if fmt is None:
        raise C2SInputError(p, f"unknown file type; supported: {_SUPPORTED}")
    return p, fmt


def load_image(path: str | os.PathLike[str], options: ReadOptions = MAGNITUDE_READ) -> LoadedImage:
    """Read an image or volume from any supported file.

    Parameters
    ----------
    path : str or path-like
        ``.h5``/``.hdf5`` (fastMRI / M4Raw), ``.nii``/``.nii.gz`` (needs
        nibabel), ``.npy``, ``.npz``, or DICOM (needs pydicom): a file, or a
        folder of one series (see :func:`~c2s_denoise.io.dicom_read.load_dicom`).
    options : ReadOptions, default magnitude images (``combine="rss"``)
        How the file is read: the centre crop (all formats), the NIfTI slice
        axis, the ``.npz`` array, the HDF5 dataset and how HDF5 k-space
        becomes images (see :func:`c2s_denoise.io.fastmri.load_fastmri`).

    Returns
    -------
    LoadedImage
        ``data`` of shape ``(D, H, W)``.

    Raises
    ------
    C2SInputError
        With a one-line message naming the file and the problem.
    """
    from .fastmri import center_crop, load_fastmri

    p, fmt = check_input_path(path)
    _check_combine(p, fmt, options)
    if fmt == "hdf5":
        return load_fastmri(p, options)
    if fmt == "nifti":
        from .nifti import load_nifti

        image = load_nifti(p, slice_axis=options.slice_axis)
    elif fmt == "dicom":
        from .dicom_read import load_dicom

        image = load_dicom(p)
    else:
        from .numpy_io import load_numpy

        image = load_numpy(p, key=options.npz_key)
    if options.crop is not None:
        image.meta["uncropped_shape"] = image.data.shape
        image.data = np.ascontiguousarray(center_crop(image.data, options.crop, p))
        image.meta["crop"] = options.crop
    return image


def probe_image(path: str | os.PathLike[str], options: ReadOptions = MAGNITUDE_READ) -> None:
    """Cheaply check that a file can probably be loaded, without reading its pixels.

    Used before long runs so that a bad file among many is reported before any
    work is done. A file that passes may still fail in :func:`load_image`
    (e.g. a truncated data block).

    Parameters
    ----------
    path : str or path-like
        Input file.
    options : ReadOptions, default magnitude images
        As in :func:`load_image` (only the HDF5 structure and the ``.npz``
        key are checked).

    Raises
    ------
    C2SInputError
        If the file is missing, of unknown type, or (HDF5) not readable or
        without usable datasets, or (``.npz``) without the requested array,
        or (DICOM) not one series of images with even slice spacing.
    """
    p, fmt = check_input_path(path)
    _check_combine(p, fmt, options)
    if fmt == "hdf5":
        from .fastmri import pick_source
        from .hdf5 import open_hdf5
        from .kspace import check_kspace

        with open_hdf5(p) as handle:
            key = pick_source(handle, p, options)
            if key == "kspace":
                check_kspace(handle[key], p)
    elif fmt == "npz":
        from .numpy_io import _pick_key

        try:
            with np.load(p, allow_pickle=False) as archive:
                _pick_key(list(archive.files), options.npz_key, p)
        except C2SInputError:
            raise
        except Exception as exc:
            raise C2SInputError(p, f"not a readable npz archive ({describe_exception(exc)})") from None
    elif fmt == "dicom":
        from .dicom_read import probe_dicom

        probe_dicom(p)


def reads_complex(path: str | os.PathLike[str], options: ReadOptions = MAGNITUDE_READ) -> bool:
    """Whether :func:`load_image` with these options returns complex images (k-space combined as complex).

    Reads only the HDF5 structure; the file must pass :func:`probe_image` first.
    """
    p = Path(path)
    if detect_format(p) != "hdf5" or options.combine == "rss":
        return False
    from .fastmri import pick_source
    from .hdf5 import open_hdf5

    with open_hdf5(p) as handle:
        return pick_source(handle, p, options) == "kspace"


def _check_combine(path: Path, fmt: str, options: ReadOptions) -> None:
    """Combining coils into complex images needs k-space, which only HDF5 files hold."""
    if options.combine == "complex" and fmt != "hdf5":
        raise C2SInputError(path, f"combine 'complex' needs k-space, which only HDF5 files hold (this is a {fmt} file)")


def save_image(
    path: str | os.PathLike[str],
    data: np.ndarray,
    like: LoadedImage,
    provenance: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
    complex_data: np.ndarray | None = None,
) -> Path:
    """Write ``data`` atomically, in the format and layout of ``like``.

    Parameters
    ----------
    path : str or path-like
        Output file; its suffix must belong to ``like.format``. Its folder
        must exist. For a DICOM image read from a folder, the output folder
        of the derived series (see :func:`~c2s_denoise.io.dicom_write.write_dicom`).
    data : numpy.ndarray
        ``(D, H, W)`` result, same shape as ``like.data``.
    like : LoadedImage
        The image ``data`` was computed from.
    provenance : dict, optional
        Stored where the format allows it (HDF5 attributes ``c2s_<key>``,
        DICOM ``DerivationDescription``).
    overwrite : bool, default False
        Whether an existing output may be replaced.
    inputs : iterable of path-like, optional
        Further input paths that must not be overwritten (``like.source``
        is always protected).
    complex_data : numpy.ndarray, optional
        HDF5 only: complex images stored beside ``data`` as
        ``reconstruction_complex``.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    C2SInputError
        If the output exists (without ``overwrite``), is an input, or has a
        suffix of another format.
    ValueError
        If ``data`` does not have the shape of ``like.data``.
    """
    if like.format == "dicom":
        if complex_data is not None:
            raise C2SInputError(path, "complex images can only be written to HDF5 outputs")
        if np.shape(data) != like.data.shape:
            raise ValueError(f"data shape {np.shape(data)} differs from the source shape {like.data.shape}")
        from .dicom_write import write_dicom

        return write_dicom(path, data, like, provenance, overwrite=overwrite, inputs=inputs)
    out = check_output_path(path, inputs=[like.source, *inputs], overwrite=overwrite)
    fmt = detect_format(out)
    if fmt != like.format:
        raise C2SInputError(out, f"output suffix does not match the input format {like.format!r}")
    array = np.asarray(data)
    if array.shape != like.data.shape:
        raise ValueError(f"data shape {array.shape} differs from the source shape {like.data.shape}")
    if complex_data is not None and fmt != "hdf5":
        raise C2SInputError(out, "complex images can only be written to HDF5 outputs")
    with atomic_write(out, overwrite=overwrite) as tmp:
        if fmt == "hdf5":
            from .fastmri import write_fastmri

            write_fastmri(tmp, array, like, provenance, complex_data=complex_data)
        elif fmt == "nifti":
            from .nifti import write_nifti

            if "uncropped_shape" in like.meta:
                raise C2SInputError(out, "a cropped NIfTI image cannot be written in the source layout")
            write_nifti(tmp, array, like)
        else:
            from .numpy_io import write_numpy

            write_numpy(tmp, array, _uncropped(like))
    return out


def check_output_target(
    path: str | os.PathLike[str],
    source: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> Path:
    """Check, before any work, the output ``path`` that :func:`save_image` will write for the input ``source``.

    A folder input (a DICOM series) gets a folder output, checked by
    :func:`~c2s_denoise.io.dicom_write.check_series_output` (an existing one is replaced with
    ``overwrite`` when it holds only DICOM files); any other input gets a file, checked by
    :func:`~c2s_denoise.io.atomic.check_output_path`.
    """
    if Path(source).is_dir():
        from .dicom_write import check_series_output

        return check_series_output(path, inputs=[source, *inputs], overwrite=overwrite)
    return check_output_path(path, inputs=[source, *inputs], overwrite=overwrite)


def _uncropped(like: LoadedImage) -> LoadedImage:
    """A cropped NumPy image is written in its cropped shape, not the stored one."""
    if "uncropped_shape" not in like.meta:
        return like
    meta = dict(like.meta)
    meta["shape"] = like.data.shape if len(meta["shape"]) == 3 else like.data.shape[1:]
    return LoadedImage(like.data, like.format, meta, like.source)
