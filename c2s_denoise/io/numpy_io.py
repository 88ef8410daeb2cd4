"""NumPy files: ``.npy`` (one array) and ``.npz`` (an archive of named arrays).

Arrays are ``(H, W)`` images or ``(D, H, W)`` volumes. In an ``.npz`` the
array used is, in order: the one named by ``key``; the only array in the
archive; the array named ``"image"``; the array named ``"data"``. Pickled
(object) arrays are refused: they could run code when loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import C2SInputError, describe_exception
from .loaded_image import LoadedImage, as_volume

__all__ = ["DEFAULT_NPZ_KEYS", "load_numpy", "write_numpy"]

#: Keys tried, in order, when an ``.npz`` archive holds several arrays and no key is given.
DEFAULT_NPZ_KEYS: tuple[str, ...] = ("image", "data")


def _pick_key(keys: list[str], key: str | None, path: Path) -> str:
    if key is not None:
        if key not in keys:
            raise C2SInputError(path, f"npz archive has no array {key!r}; arrays: {', '.join(keys) or 'none'}")
        return key
    if len(keys) == 1:
        return keys[0]
    for candidate in DEFAULT_NPZ_KEYS:
        if candidate in keys:
            return candidate
    raise C2SInputError(
        path,
        f"npz archive holds arrays {', '.join(keys) or 'none'}; name one with npz_key=... "
        f"(defaults: the only array, or {' / '.join(DEFAULT_NPZ_KEYS)})",
    )


def load_numpy(path: str | Path, *, key: str | None = None) -> LoadedImage:
    """Read an image or volume from a ``.npy`` or ``.npz`` file.

    Parameters
    ----------
    path : str or pathlib.Path
        The file; its suffix selects the format.
    key : str, optional
        Array to read from an ``.npz`` archive (see the module docstring for
        the default). Ignored for ``.npy``.

    Returns
    -------
    LoadedImage
        ``data`` is ``(D, H, W)`` (``D == 1`` for a 2-D array), float32 or
        float64 (for float64 files). ``meta`` holds ``shape`` (the stored
        shape), ``dtype`` and, for ``.npz``, ``key``.

    Raises
    ------
    C2SInputError
        If the file is missing, truncated, not a NumPy file, holds a pickled
        array, or the array is not a finite real 2-D/3-D array.
    """
    path = Path(path)
    if not path.is_file():
        raise C2SInputError(path, "file not found" if not path.exists() else "not a regular file")
    is_npz = path.name.lower().endswith(".npz")
    try:
        if is_npz:
            with np.load(path, allow_pickle=False) as archive:
                name = _pick_key(list(archive.files), key, path)
                array = archive[name]
        else:
            name = None
            array = np.load(path, allow_pickle=False)
    except C2SInputError:
        raise
    except Exception as exc:  # ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, ...
        kind = "npz archive" if is_npz else "npy file"
        raise C2SInputError(path, f"not a readable {kind} ({describe_exception(exc)})") from None
    if not isinstance(array, np.ndarray):
        raise C2SInputError(path, "expected an .npy array, found an archive")
    what = f"array {name!r}" if name is not None else "array"
    volume = as_volume(array, path, what=what)
    meta: dict[str, Any] = {"shape": tuple(array.shape), "dtype": str(array.dtype), "key": name}
    return LoadedImage(data=volume, format="npz" if is_npz else "npy", meta=meta, source=path)


def write_numpy(target: str | Path, data: np.ndarray, like: LoadedImage | None = None) -> None:
    """Write ``data`` as ``.npy`` or ``.npz`` (chosen by ``like.format`` or the suffix); not atomic by itself.

    Parameters
    ----------
    target : str or pathlib.Path
        File to create. Its name must already end in ``.npy`` / ``.npz``.
    data : numpy.ndarray
        ``(D, H, W)`` volume; restored to the stored shape of ``like`` (so a
        2-D input gives a 2-D output).
    like : LoadedImage, optional
        Source image: gives the stored shape and the ``.npz`` key (default
        ``"image"``).
    """
    array = np.asarray(data)
    meta = like.meta if like is not None else {}
    if "shape" in meta and array.size == int(np.prod(meta["shape"])):
        array = array.reshape(meta["shape"])
    fmt = like.format if like is not None else ("npz" if str(target).lower().endswith(".npz") else "npy")
    with open(target, "wb") as handle:
        if fmt == "npz":
            np.savez(handle, **{meta.get("key") or "image": array})
        else:
            np.save(handle, array, allow_pickle=False)
