"""fastMRI / M4Raw HDF5 files.

A fastMRI-style file holds k-space (``kspace``: complex, ``(slices, H, W)``
single-coil or ``(slices, coils, H, W)`` multi-coil), often a magnitude
reconstruction (``reconstruction_rss`` or ``reconstruction_esc``), an
``ismrmrd_header`` XML dataset and a few attributes (``acquisition``, ``max``,
``norm``, ``patient_id``). M4Raw uses the same layout.

Reading prefers a stored reconstruction; otherwise it forms magnitude images
from k-space with a centred, orthonormal 2-D inverse FFT per coil and
root-sum-of-squares over coils. Writing produces a ``reconstruction`` dataset
(fastMRI convention) with the source's attributes and header copied, plus
provenance attributes prefixed with ``c2s_``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import C2SInputError, describe_exception
from .image import LoadedImage, as_volume

__all__ = [
    "RECONSTRUCTION_KEYS",
    "centered_ifft2",
    "center_crop",
    "load_fastmri",
    "rss",
    "write_fastmri",
]

#: Magnitude datasets looked for, in order of preference. ``reconstruction`` is
#: what this package writes, so denoised files can be read back.
RECONSTRUCTION_KEYS: tuple[str, ...] = ("reconstruction_rss", "reconstruction_esc", "reconstruction")

HEADER_KEY = "ismrmrd_header"


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a core dependency
        raise C2SInputError(None, "reading HDF5 files needs h5py; install it with 'pip install h5py'") from exc
    return h5py


def centered_ifft2(kspace: np.ndarray) -> np.ndarray:
    """Centred, orthonormal 2-D inverse FFT over the last two axes.

    Computes ``fftshift(ifft2(ifftshift(k), norm="ortho"))`` with all shifts
    and the transform over axes ``(-2, -1)``, the fastMRI convention.

    Parameters
    ----------
    kspace : numpy.ndarray
        Complex k-space with the centre of k-space in the middle of the array.

    Returns
    -------
    numpy.ndarray
        Complex images, same shape.
    """
    axes = (-2, -1)
    shifted = np.fft.ifftshift(kspace, axes=axes)
    return np.fft.fftshift(np.fft.ifft2(shifted, axes=axes, norm="ortho"), axes=axes)


def rss(coil_images: np.ndarray, axis: int = 0) -> np.ndarray:
    """Root-sum-of-squares combination of coil images.

    Parameters
    ----------
    coil_images : numpy.ndarray
        Complex or real coil images.
    axis : int, default 0
        The coil axis.

    Returns
    -------
    numpy.ndarray
        ``sqrt(sum(|c|^2))`` over ``axis``.
    """
    return np.sqrt(np.sum(np.abs(coil_images) ** 2, axis=axis))


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


def _images_from_kspace(dataset: Any, path: Path) -> np.ndarray:
    """Read k-space slice by slice and return magnitude images ``(slices, H, W)``."""
    shape = dataset.shape
    if len(shape) not in (3, 4):
        raise C2SInputError(
            path,
            f"kspace has rank {len(shape)} (shape {shape}); expected 3 (slices, H, W) "
            "single-coil or 4 (slices, coils, H, W) multi-coil",
        )
    if dataset.dtype.kind != "c":
        raise C2SInputError(path, f"kspace has non-complex type {dataset.dtype}; complex k-space is expected")
    if 0 in shape:
        raise C2SInputError(path, f"kspace is empty (shape {shape})")
    out = np.empty((shape[0], shape[-2], shape[-1]), dtype=np.float32)
    for index in range(shape[0]):
        images = centered_ifft2(np.asarray(dataset[index]))
        out[index] = rss(images, axis=0) if len(shape) == 4 else np.abs(images)
    return out


def _pick_source(handle: Any, path: Path, dataset: str | None) -> str:
    h5py = _h5py()
    if dataset is not None:
        if not isinstance(handle.get(dataset), h5py.Dataset):
            raise C2SInputError(path, f"HDF5 file has no dataset {dataset!r}")
        return dataset
    for key in (*RECONSTRUCTION_KEYS, "kspace"):
        if isinstance(handle.get(key), h5py.Dataset):
            return key
    found = ", ".join(sorted(handle.keys())) or "none"
    raise C2SInputError(
        path,
        "HDF5 file has neither 'kspace' nor a reconstruction "
        f"({', '.join(RECONSTRUCTION_KEYS)}); datasets found: {found}",
    )


def load_fastmri(
    path: str | Path,
    *,
    crop: tuple[int, int] | None = None,
    dataset: str | None = None,
) -> LoadedImage:
    """Read a fastMRI / M4Raw HDF5 file as magnitude images.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.h5`` file. It is opened read-only.
    crop : tuple of int, optional
        Centre crop ``(h, w)`` applied to the images (fastMRI knee
        reconstructions are 320x320).
    dataset : str, optional
        Name of the dataset to read. By default the first present of
        ``reconstruction_rss``, ``reconstruction_esc``, ``reconstruction``,
        then ``kspace``.

    Returns
    -------
    LoadedImage
        ``data`` is ``(slices, H, W)`` float32. ``meta`` holds ``attrs``
        (the file's attributes), ``header`` (the ``ismrmrd_header`` value, or
        None), ``header_dtype`` and ``dataset`` (the dataset the images come
        from).

    Raises
    ------
    C2SInputError
        If the file is missing, is not a readable HDF5 file (e.g. truncated),
        has neither k-space nor a reconstruction, or has k-space of a rank
        other than 3 or 4.
    """
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise C2SInputError(path, "file not found" if not path.exists() else "not a regular file")
    try:
        handle = h5py.File(path, "r")
    except Exception as exc:  # h5py raises OSError for corrupt, truncated and non-HDF5 files
        raise C2SInputError(path, f"not a readable HDF5 file ({describe_exception(exc)})") from None
    with handle:
        try:
            key = _pick_source(handle, path, dataset)
            if key == "kspace":
                images = _images_from_kspace(handle[key], path)
            else:
                images = np.asarray(handle[key][()])
            attrs = {name: handle.attrs[name] for name in handle.attrs}
            header = header_dtype = None
            if isinstance(handle.get(HEADER_KEY), h5py.Dataset):
                header = handle[HEADER_KEY][()]
                header_dtype = handle[HEADER_KEY].dtype
        except C2SInputError:
            raise
        except Exception as exc:  # truncated or corrupt content
            raise C2SInputError(path, f"cannot read HDF5 content ({describe_exception(exc)})") from None
    volume = as_volume(images, path, what=f"dataset {key!r}")
    if crop is not None:
        volume = np.ascontiguousarray(center_crop(volume, crop, path))
    meta: dict[str, Any] = {
        "attrs": attrs,
        "header": header,
        "header_dtype": header_dtype,
        "dataset": key,
        "crop": None if crop is None else tuple(int(c) for c in crop),
    }
    return LoadedImage(data=volume, format="hdf5", meta=meta, source=path)


def _attr_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str, np.generic, np.ndarray, bytes)):
        return value
    return json.dumps(value, default=str)


def write_fastmri(
    target: str | Path,
    data: np.ndarray,
    like: LoadedImage | None = None,
    provenance: dict[str, Any] | None = None,
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
    """
    h5py = _h5py()
    meta = like.meta if like is not None and like.format == "hdf5" else {}
    with h5py.File(target, "w") as handle:
        handle.create_dataset("reconstruction", data=np.asarray(data, dtype=np.float32))
        if meta.get("header") is not None:
            handle.create_dataset(HEADER_KEY, data=meta["header"], dtype=meta.get("header_dtype"))
        for name, value in (meta.get("attrs") or {}).items():
            handle.attrs[name] = value
        if provenance:
            for name, value in provenance.items():
                if value is not None:
                    handle.attrs[f"c2s_{name}"] = _attr_value(value)
            handle.attrs["c2s_provenance"] = json.dumps(provenance, default=str, sort_keys=True)
