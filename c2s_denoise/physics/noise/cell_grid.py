"""Cell grids of a noise map: medians of coefficients in square cells, and cells back onto pixels.

Used by :mod:`~c2s_denoise.physics.noise.local_map`; numpy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cell_medians", "upsample"]


def cell_medians(values: np.ndarray, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Median and count of the finite ``values`` ``(P, D, h, w)`` in cells of ``cell x cell``, pooled over P.

    Returns two arrays ``(D, ceil(h / cell), ceil(w / cell))``; the median is NaN where the count is 0.
    """
    parts, depth, height, width = values.shape
    ny, nx = -(-height // cell), -(-width // cell)
    padded = np.full((parts, depth, ny * cell, nx * cell), np.nan)
    padded[:, :, :height, :width] = values
    cells = padded.reshape(parts, depth, ny, cell, nx, cell).transpose(1, 2, 4, 0, 3, 5)
    cells = np.sort(cells.reshape(depth, ny, nx, -1), axis=-1)  # NaN sorts last
    count = np.count_nonzero(np.isfinite(cells), axis=-1)
    low = np.take_along_axis(cells, np.maximum(count - 1, 0)[..., None] // 2, axis=-1)[..., 0]
    high = np.take_along_axis(cells, (count // 2)[..., None], axis=-1)[..., 0]
    median = np.where(count > 0, (low + high) / 2.0, np.nan)
    return median, count


def _interpolation(n_out: int, n_cells: int, offset: float, step: float) -> np.ndarray:
    """Matrix ``(n_out, n_cells)`` of linear interpolation from cell centres, clamped at the ends.

    Output index ``i`` sits at cell coordinate ``(i - offset) / step``.
    """
    position = np.clip((np.arange(n_out) - offset) / step, 0.0, n_cells - 1.0)
    lower = np.minimum(np.floor(position).astype(int), max(n_cells - 2, 0))
    weight = position - lower
    matrix = np.zeros((n_out, n_cells))
    rows = np.arange(n_out)
    matrix[rows, lower] += 1.0 - weight
    if n_cells > 1:
        matrix[rows, lower + 1] += weight
    else:
        matrix[rows, 0] = 1.0
    return matrix


def upsample(cells: np.ndarray, shape: tuple[int, int], offset: float, step: float) -> np.ndarray:
    """Bilinear interpolation of cell values ``(D, ny, nx)`` onto a grid ``(D, *shape)``."""
    rows = _interpolation(shape[0], cells.shape[1], offset, step)
    columns = _interpolation(shape[1], cells.shape[2], offset, step)
    along_columns = np.tensordot(cells, columns, axes=([2], [1]))  # (D, ny, W)
    return np.ascontiguousarray(np.tensordot(rows, along_columns, axes=([1], [1])).transpose(1, 0, 2))
