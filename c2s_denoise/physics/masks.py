"""Masks of the object (head) in a magnitude volume, for ``mask="auto"``.

The object is where the smoothed magnitude exceeds Otsu's threshold between air and tissue,
with the holes of each slice filled (ventricles, dark tissue) and a margin of a few voxels so
that the object's edge stays inside.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["head_mask", "otsu_threshold"]


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the value that maximises the between-class variance of ``values``.

    Parameters
    ----------
    values : ndarray
        Intensities (any shape; finite).
    bins : int, default=256
        Histogram bins between the minimum and the maximum.

    Returns
    -------
    float
        The threshold (the minimum for a constant array).
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    low, high = float(flat.min()), float(flat.max())
    if high <= low:
        return low
    counts, edges = np.histogram(flat, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_below = np.cumsum(counts)
    weight_above = weight_below[-1] - weight_below
    sum_below = np.cumsum(counts * centres)
    mean_below = sum_below / np.maximum(weight_below, 1)
    mean_above = (sum_below[-1] - sum_below) / np.maximum(weight_above, 1)
    between = weight_below * weight_above * (mean_below - mean_above) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def head_mask(volume: np.ndarray, margin: int = 3, smoothing: float = 1.5) -> np.ndarray:
    """Boolean mask of the object in a magnitude volume ``(D, H, W)`` (or image ``(H, W)``).

    Parameters
    ----------
    volume : ndarray
        Magnitude image(s); complex input uses its magnitude.
    margin : int, default=3
        Voxels added around the object in each slice.
    smoothing : float, default=1.5
        Standard deviation, in voxels, of the in-plane Gaussian smoothing before thresholding
        (noise in the air must not cross the threshold).

    Returns
    -------
    ndarray of bool
        Same shape as ``volume``.
    """
    magnitude = np.abs(np.asarray(volume, dtype=np.complex128 if np.iscomplexobj(volume) else np.float64))
    slices = magnitude[None] if magnitude.ndim == 2 else magnitude
    smooth = ndimage.gaussian_filter(slices, sigma=(0, smoothing, smoothing))
    inside = smooth > otsu_threshold(smooth)
    structure = ndimage.generate_binary_structure(2, 1)
    mask = np.empty_like(inside)
    for index, plane in enumerate(inside):
        filled = ndimage.binary_fill_holes(plane)
        mask[index] = ndimage.binary_dilation(filled, structure, iterations=margin) if margin else filled
    return mask[0] if magnitude.ndim == 2 else mask
