"""Steps of a noise map that run across the whole image: the fold boundaries of parallel imaging.

Uniform Cartesian undersampling by ``R`` folds the rows ``y, y + H/R, y + 2H/R, ...`` of the
field of view onto each other, and SENSE or GRAPPA unfolds each set together: the g-factor of a
pixel depends on the coil sensitivities at every row of its set. The set changes at the rows
``y = k H / R``, where the noise level jumps across the whole width of the image (by 50-200% at
R = 3 in ``benchmarks/noise_maps.py``), while it varies smoothly between them. A map smoothed
over cells blurs such a step over 10-20 pixels: too low on its high side, where a denoiser then
keeps noise. Pooled along the whole row, a step a few percent high is found at its exact row.

:func:`find_steps` tests every boundary ``b`` (between rows ``b - 1`` and ``b``) with the log
mean of the absolute finest Haar details ``|HH|`` in four windows of ``_WINDOW`` rows,
``A, B`` above and ``C, D`` below, in segments of ``_SEGMENT`` columns. The step estimate

    s = (C - B) - ((B - A) + (D - C)) / 2

is 0 for any linear trend of the log noise level across the four windows and ``log`` of the
jump for a step at ``b``. Its variance is ``v (2.25 (1/n_B + 1/n_C) + 0.25 (1/n_A + 1/n_D))``
for ``n`` coefficients per window, ``v`` calibrated on the image itself (the robust spread of
``s`` over every boundary and segment, which absorbs the correlation of overlapping blocks and
the anatomy left in ``|HH|``). ``T(b) = sum(z**2)`` over the segments (and slices) is close to
chi-squared with ``J`` degrees of freedom where there is no step; the largest ``T`` with
``(T - J) / sqrt(2 J) > _THRESHOLD`` is a step, the boundaries within ``2 _WINDOW + 1`` of it
are set aside, and the search goes on. Columns are searched the same way.
"""

from __future__ import annotations

import numpy as np

__all__ = ["find_steps"]

#: Rows (of 2x2 blocks at every offset) in each of the four windows of the test.
_WINDOW = 8
#: Columns in a segment: the step's size may change along the row, each segment measures its own.
_SEGMENT = 16
#: A window needs this many coefficients for its segment to take part in the test.
_MIN_COUNT = 24
#: Standardised chi-squared ``(T - J) / sqrt(2 J)`` above which a boundary is a step.
_THRESHOLD = 8.0
#: At most this many steps per axis (R - 1 for acceleration R).
_MAX_STEPS = 7
#: Robust standard deviation from the median absolute deviation.
_MAD_TO_STD = 1.4826


def _window_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of the finite ``values (K, D, G, Wg)`` over every run of ``_WINDOW`` rows, per segment.

    Returns two arrays ``(D, G - _WINDOW + 1, J)``: entry ``r`` covers rows ``r .. r + _WINDOW - 1``
    of the grid, pooled over the first axis (the parts of complex data) and ``_SEGMENT`` columns.
    """
    finite = np.isfinite(values)
    data = np.where(finite, values, 0.0).sum(axis=0)
    count = finite.sum(axis=0).astype(np.float64)
    depth, rows, columns = data.shape
    n_segments = columns // _SEGMENT
    sums = []
    for field in (data, count):
        field = field[:, :, : n_segments * _SEGMENT].reshape(depth, rows, n_segments, _SEGMENT).sum(axis=3)
        table = np.concatenate([np.zeros((depth, 1, n_segments)), np.cumsum(field, axis=1)], axis=1)
        sums.append(table[:, _WINDOW:] - table[:, :-_WINDOW])
    return sums[0], sums[1]


def _step_statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The standardised chi-squared of a step at every boundary row of the pixel grid, and its log step.

    ``values`` ``(K, D, G, Wg)``: ``|HH|`` of the 2x2 blocks at every offset (NaN where left out),
    grid row ``r`` covering pixel rows ``r`` and ``r + 1``. Returns two arrays of length ``G + 1``
    (one per boundary ``b`` between pixel rows ``b - 1`` and ``b``): the statistic (NaN where the
    four windows do not fit or no segment has data) and the mean log step over the segments.
    """
    grid_rows = values.shape[2]
    sums, counts = _window_sums(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_mean = np.log(sums / counts)
    statistic = np.full(grid_rows + 1, np.nan)
    mean_step = np.full(grid_rows + 1, np.nan)
    w = _WINDOW
    # boundary b: B ends at grid row b - 2 (the block at b - 1 straddles it), C starts at b
    boundaries = np.arange(2 * w + 1, grid_rows - 2 * w + 1)
    if boundaries.size == 0 or counts.shape[2] == 0:
        return statistic, mean_step
    starts = {"A": boundaries - 1 - 2 * w, "B": boundaries - 1 - w, "C": boundaries, "D": boundaries + w}
    logs = {k: log_mean[:, s] for k, s in starts.items()}
    ns = {k: counts[:, s] for k, s in starts.items()}
    step = (logs["C"] - logs["B"]) - ((logs["B"] - logs["A"]) + (logs["D"] - logs["C"])) / 2.0
    enough = np.all([n >= _MIN_COUNT for n in ns.values()], axis=0) & np.isfinite(step)
    with np.errstate(divide="ignore"):
        scale = 2.25 * (1 / ns["B"] + 1 / ns["C"]) + 0.25 * (1 / ns["A"] + 1 / ns["D"])
    z = np.where(enough, step / np.sqrt(np.where(enough, scale, 1.0)), 0.0)
    if not np.any(enough):
        return statistic, mean_step
    spread = _MAD_TO_STD * np.median(np.abs(z[enough] - np.median(z[enough])))
    if spread <= 0:
        return statistic, mean_step
    z = z / spread
    degrees = enough.sum(axis=(0, 2)).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic[boundaries] = np.where(
            degrees > 0, (np.sum(z**2, axis=(0, 2)) - degrees) / np.sqrt(2 * degrees), np.nan
        )
        mean_step[boundaries] = np.sum(np.where(enough, step, 0.0), axis=(0, 2)) / degrees
    return statistic, mean_step


def _steps_along_rows(values: np.ndarray) -> list[int]:
    """Boundary rows of the steps in ``values (K, D, G, Wg)``, in increasing order."""
    statistic, _ = _step_statistics(values)
    statistic = np.nan_to_num(statistic, nan=-np.inf)
    found: list[int] = []
    while len(found) < _MAX_STEPS:
        best = int(np.argmax(statistic))
        if not statistic[best] > _THRESHOLD:
            break
        found.append(best)
        statistic[max(best - 2 * _WINDOW - 1, 0) : best + 2 * _WINDOW + 2] = -np.inf
    return sorted(found)


def find_steps(values: np.ndarray) -> tuple[list[int], list[int]]:
    """Rows and columns at which the noise level steps across the whole image.

    Parameters
    ----------
    values : ndarray, shape (K, D, H - 1, W - 1)
        Absolute finest diagonal Haar details of the 2x2 blocks at every offset (entry ``(r, c)``
        is the block of pixels ``r, r + 1`` by ``c, c + 1``), each divided by the known part of
        its spread (1 for Gaussian noise), NaN where a block is left out (edges, masked air).
        ``K`` pools the parts of complex data; ``D`` slices are pooled too.

    Returns
    -------
    rows, columns : list of int
        Boundaries ``b`` of the image's pixel grid (the step is between pixel ``b - 1`` and
        ``b``), increasing, each at least ``2 * 8 + 1`` pixels from the image's edges and from each
        other; empty where the noise level has no step.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> level = np.where(np.arange(96) < 40, 1.0, 2.0)[:, None] * np.ones((96, 160))
    >>> noise = level * rng.standard_normal((96, 160))
    >>> from c2s_denoise.physics.noise.wavelet import _constant_mask
    >>> from c2s_denoise.physics.noise.local_map import _every_shift
    >>> coefficients = _every_shift(noise[None], _constant_mask(noise[None]))[0]
    >>> find_steps(np.abs(coefficients)[None])
    ([40], [])
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 4:
        raise ValueError(f"expected values of shape (K, D, H - 1, W - 1), got {values.shape}")
    return _steps_along_rows(values), _steps_along_rows(values.swapaxes(2, 3))
