"""A real single-subject T1 slice shipped inside the dipy wheel.

dipy's T1 coronal slice
    ``dipy.data.get_fnames(name="t1_coronal_slice")``: a 256 x 256 ``.npy`` file inside the
    dipy wheel (``dipy/data/files/t1_coronal_slice.npy``; no fetcher, no download). It is one
    real, skull-stripped T1-weighted coronal slice of a single subject, 8-bit quantised, values
    in [0, 1] (background exactly 0, 79% of the pixels). Present in the dipy 1.7.0 and 1.12.1
    wheels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .deps import require

__all__ = ["load_dipy_t1_slice"]


def load_dipy_t1_slice() -> tuple[np.ndarray, np.ndarray]:
    """dipy's real T1-weighted coronal slice, scaled to [0, 1], and its (non-zero) brain mask.

    Returns
    -------
    image : ndarray of shape (256, 256), float64
        Min-max scaled to [0, 1].
    mask : ndarray of shape (256, 256), bool
        Pixels of the (skull-stripped) image that are not background, ``image > 0``.

    Raises
    ------
    FileNotFoundError
        If the data file is missing from the installed dipy (it ships inside the dipy wheel since
        at least dipy 1.7; no download is attempted).
    """
    require("dipy")
    from dipy.data import get_fnames

    path = Path(get_fnames(name="t1_coronal_slice"))
    if not path.is_file():
        raise FileNotFoundError(
            f"dipy's t1_coronal_slice is not at {path}: this dipy installation lacks its bundled "
            "data files; reinstall dipy from a wheel (pip install --force-reinstall dipy)"
        )
    image = np.asarray(np.load(path), dtype=np.float64)
    low, high = float(image.min()), float(image.max())
    image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return image, image > 0
