"""fastMRI / M4Raw HDF5 files.

A fastMRI-style file holds k-space (``kspace``: complex, ``(slices, H, W)``
single-coil or ``(slices, coils, H, W)`` multi-coil), often a magnitude
reconstruction (``reconstruction_rss`` or ``reconstruction_esc``), an
``ismrmrd_header`` XML dataset and a few attributes (``acquisition``, ``max``,
``norm``, ``patient_id``). M4Raw uses the same layout.

Reading (``combine``, see :func:`load_fastmri`):

- ``"complex"`` (what ``"auto"`` does for files with k-space): the coil noise
  covariance is estimated from the data (or read from a ``noise`` dataset), the
  coils are prewhitened and combined with their estimated sensitivities into
  one complex image per slice whose noise is white, Gaussian and of unit
  standard deviation per real component (docs/method.md section 10). The
  per-pixel ``rss_gain`` that brings its magnitude to the scale of the
  root-sum-of-squares image travels in ``meta``.
- ``"rss"``: a stored reconstruction if there is one, otherwise magnitude
  images from k-space with a centred, orthonormal 2-D inverse FFT per coil and
  root-sum-of-squares over coils (noncentral-chi noise).

Writing produces a ``reconstruction`` dataset (fastMRI convention, magnitude)
and, on request, ``reconstruction_complex``, with the source's attributes and
header copied, plus provenance attributes prefixed with ``c2s_``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import C2SInputError, describe_exception
from .hdf5 import h5py_module, is_dataset, open_hdf5
from .ismrmrd import HEADER_KEY, reconstruction_matrix
from .kspace import complex_from_kspace, images_from_kspace
from .loaded_image import LoadedImage, as_volume
from .options import COMBINE_MODES, MAGNITUDE_READ, ReadOptions

__all__ = [
    "COMBINE_MODES",
    "RECONSTRUCTION_KEYS",
    "center_crop",
    "load_fastmri",
    "pick_source",
    "write_fastmri",
]

#: Magnitude datasets looked for, in order of preference. ``reconstruction`` is
#: what this package writes, so denoised files can be read back.
RECONSTRUCTION_KEYS: tuple[str, ...] = ("reconstruction_rss", "reconstruction_esc", "reconstruction")


def center_crop(volume: np.ndarray, size: tuple[int, int], path: str | Path = "") -> np.ndarray:
    """Crop the last two axes of ``volume`` to ``size`` around the centre.

    Parameters
    ----------
    volume : numpy.ndarray
        Array whose last two axes are ``(H, W)``.
    size : tuple of int
        Target ``(h, w)``; each must be positive and at most ``(H, W)``.
    path : str or pathlib.Path, optional
        File named in errors.

    Returns
    -------
    numpy.ndarray
        A view of shape ``(..., h, w)``; the crop starts at ``(H - h) // 2``.

    Raises
    ------
    C2SInputError
        If the crop is larger than the image or not positive.
    """
    h, w = (int(s) for s in size)
    height, width = volume.shape[-2:]
    if h <= 0 or w <= 0 or h > height or w > width:
        raise C2SInputError(path, f"cannot centre-crop images of size {height}x{width} to {h}x{w}")
    top = (height - h) // 2
    left = (width - w) // 2
    return volume[..., top : top + h, left : left + w]


def pick_source(handle: Any, path: Path, options: ReadOptions) -> str:
    """The dataset that ``options`` read from the open file: ``options.dataset``, k-space or a reconstruction."""
    dataset, combine = options.dataset, options.combine
    if dataset is not None:
        if not is_dataset(handle, dataset):
            raise C2SInputError(path, f"HDF5 file has no dataset {dataset!r}")
        if combine == "complex" and dataset != "kspace":
            raise C2SInputError(path, f"combine 'complex' needs k-space, but dataset {dataset!r} was asked for")
        return dataset
    has_kspace = is_dataset(handle, "kspace")
    if combine == "complex" and not has_kspace:
        found = ", ".join(sorted(handle.keys())) or "none"
        raise C2SInputError(
            path, f"combine 'complex' needs k-space, but the file has no 'kspace' dataset (datasets found: {found})"
        )
    if combine in ("auto", "complex") and has_kspace:
        return "kspace"
    for key in (*RECONSTRUCTION_KEYS, "kspace"):
        if is_dataset(handle, key):
            return key
    found = ", ".join(sorted(handle.keys())) or "none"
    raise C2SInputError(
        path,
        "HDF5 file has neither 'kspace' nor a reconstruction "
        f"({', '.join(RECONSTRUCTION_KEYS)}); datasets found: {found}",
    )


def load_fastmri(path: str | Path, options: ReadOptions = MAGNITUDE_READ) -> LoadedImage:
    """Read a fastMRI / M4Raw HDF5 file as magnitude images, or k-space as combined complex images.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.h5`` file (an existing file, see :func:`c2s_denoise.io.load_image`). It is
        opened read-only.
    options : ReadOptions, default magnitude images (``combine="rss"``)
        ``crop``: centre crop ``(h, w)`` applied to the images (fastMRI knee
        reconstructions are 320x320). ``dataset``: the dataset to read; by default
        (``combine`` "rss") the first present of ``reconstruction_rss``,
        ``reconstruction_esc``, ``reconstruction``, then ``kspace``.
        ``combine`` "complex": k-space is prewhitened and coil-combined into complex
        images in SNR units (an error for a file without k-space); ``"auto"``:
        that when the file has k-space, otherwise its reconstruction;
        ``"rss"``: magnitude images as described above. Without ``crop``, the
        complex images are centre-cropped to the size of the file's stored
        reconstruction, or else of the ISMRMRD header's ``reconSpace``
        matrix, when there is one (fastMRI's readout oversampling). The
        other options do not apply to HDF5 files.

    Returns
    -------
    LoadedImage
        ``data`` is ``(slices, H, W)`` float32, or complex64 for combined
        k-space. ``meta`` holds ``attrs`` (the file's attributes), ``header``
        (the ``ismrmrd_header`` value, or None), ``header_dtype``,
        ``dataset`` (the dataset the images come from) and ``combine``
        ("complex" or "rss"); for complex images also ``rss_gain`` (same
        shape as ``data``: ``|data| * rss_gain`` is on the scale of the
        root-sum-of-squares image), ``noise_sigma`` (1.0) and
        ``noise_covariance`` (coils x coils).

    Raises
    ------
    C2SInputError
        If the file is not a readable HDF5 file (e.g. truncated),
        has neither k-space nor a reconstruction, has k-space of a rank
        other than 3 or 4, has coil dimensions that disagree (header, noise
        scan), or too few signal-free samples to estimate the coil noise; or
        for ``combine="complex"`` on a file without k-space.
    """
    path = Path(path)
    crop = options.crop
    extra: dict[str, Any] = {"combine": "rss"}
    with open_hdf5(path) as handle:
        try:
            key = pick_source(handle, path, options)
            if key == "kspace" and options.combine in ("auto", "complex"):
                images, gain, covariance = complex_from_kspace(handle, handle[key], path)
                extra = {"combine": "complex", "rss_gain": gain, "noise_sigma": 1.0, "noise_covariance": covariance}
                if crop is None:
                    crop = _reconstruction_size(handle, images.shape)
            elif key == "kspace":
                images = images_from_kspace(handle[key], path)
            else:
                images = np.asarray(handle[key][()])
            attrs = {name: handle.attrs[name] for name in handle.attrs}
            header = header_dtype = None
            if is_dataset(handle, HEADER_KEY):
                header = handle[HEADER_KEY][()]
                header_dtype = handle[HEADER_KEY].dtype
        except C2SInputError:
            raise
        except Exception as exc:  # truncated or corrupt content
            raise C2SInputError(path, f"cannot read HDF5 content ({describe_exception(exc)})") from None
    if extra["combine"] == "complex":
        volume = images
        if crop is not None:
            volume = np.ascontiguousarray(center_crop(volume, crop, path))
            extra["rss_gain"] = np.ascontiguousarray(center_crop(extra["rss_gain"], crop, path))
    else:
        volume = as_volume(images, path, what=f"dataset {key!r}")
        if crop is not None:
            volume = np.ascontiguousarray(center_crop(volume, crop, path))
    meta: dict[str, Any] = {
        **extra,
        "attrs": attrs,
        "header": header,
        "header_dtype": header_dtype,
        "dataset": key,
        "crop": None if crop is None else tuple(int(c) for c in crop),
    }
    return LoadedImage(data=volume, format="hdf5", meta=meta, source=path)


def _reconstruction_size(handle: Any, shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(h, w)`` of the file's stored reconstruction, else of the ISMRMRD header's reconSpace, when it fits."""
    sizes = [handle[key].shape[-2:] for key in RECONSTRUCTION_KEYS if is_dataset(handle, key) and handle[key].ndim == 3]
    matrix = reconstruction_matrix(handle)
    if matrix is not None:  # fastMRI convention: the image (readout x phase) is cropped to (x, y)
        sizes.append(matrix)
    for h, w in sizes:
        if 0 < h <= shape[-2] and 0 < w <= shape[-1]:
            return int(h), int(w)
    return None


def _attr_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str, np.generic, np.ndarray, bytes)):
        return value
    return json.dumps(value, default=str)


def write_fastmri(
    target: str | Path,
    data: np.ndarray,
    like: LoadedImage | None = None,
    provenance: dict[str, Any] | None = None,
    complex_data: np.ndarray | None = None,
) -> None:
    """Write magnitude images as a fastMRI-style HDF5 file (not atomic by itself).

    Parameters
    ----------
    target : str or pathlib.Path
        File to create (truncated if it exists). Use through
        :func:`c2s_denoise.io.save_image` for an atomic write.
    data : numpy.ndarray
        ``(slices, H, W)`` images, stored as float32 dataset ``reconstruction``.
    like : LoadedImage, optional
        Source image; its HDF5 attributes and ``ismrmrd_header`` are copied.
    provenance : dict, optional
        Written as attributes ``c2s_<key>`` (None values skipped; lists and
        dicts as JSON) and, whole, as JSON in attribute ``c2s_provenance``.
    complex_data : numpy.ndarray, optional
        Complex images of the same shape, stored as complex64 dataset
        ``reconstruction_complex``.
    """
    h5py = h5py_module()
    meta = like.meta if like is not None and like.format == "hdf5" else {}
    with h5py.File(target, "w") as handle:
        handle.create_dataset("reconstruction", data=np.asarray(data, dtype=np.float32))
        if complex_data is not None:
            handle.create_dataset("reconstruction_complex", data=np.asarray(complex_data, dtype=np.complex64))
        if meta.get("header") is not None:
            handle.create_dataset(HEADER_KEY, data=meta["header"], dtype=meta.get("header_dtype"))
        for name, value in (meta.get("attrs") or {}).items():
            handle.attrs[name] = value
        if provenance:
            for name, value in provenance.items():
                if value is not None:
                    handle.attrs[f"c2s_{name}"] = _attr_value(value)
            handle.attrs["c2s_provenance"] = json.dumps(provenance, default=str, sort_keys=True)
