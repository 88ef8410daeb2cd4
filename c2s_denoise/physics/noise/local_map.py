"""A local noise map from the image alone: the wavelet MAD in cells, robustly smoothed (issue 23).

Parallel imaging (the g-factor of SENSE or GRAPPA) and bias-field correction leave a noise level
that varies smoothly across the image, often by a factor 2 to 3. :func:`estimate_noise_map`
measures it where :func:`~c2s_denoise.physics.noise.estimate_sigma_wavelet` measures one number:

1. The finest diagonal Haar detail ``HH = (a - b - c + d) / 2`` of the 2x2 blocks at every offset
   (four times as many coefficients as the non-overlapping blocks; neighbours are correlated by
   -1/2, their absolute values by about 0.2, so a cell's median scatters 1.6 times less: 9%
   instead of 14% on white noise). For white Gaussian noise of level ``sigma``,
   ``HH ~ N(0, sigma**2)``.
2. A block counts only if its edge statistic (horizontal and vertical details, steps to the
   neighbouring blocks' means; for Gaussian noise independent of ``HH``) is below 2.5 times the
   local noise of the previous pass, so anatomy leaves the estimate without biasing the noise.
3. ``sigma = median(|HH|) / 0.6745`` in cells of 16 x 16 pixels; cells with fewer than 32 blocks
   (masked air, the object's border) take the value of the nearest measured cell.
4. The log cell map is median filtered (3 x 3 cells, and 3 slices in volumes) and smoothed by a
   Gaussian of one cell (and one slice), then interpolated bilinearly onto the pixels.
5. Magnitude images (``"rician"``, ``"ncchi"``): a block's coefficient has the standard deviation
   ``h(A / sigma) sigma`` of noncentral-chi noise, ``h`` from 0.66 in air (one coil) to 1 in
   bright tissue, with ``A`` the unbiased amplitude of the mean magnitude over 6 x 6 pixels
   (0, air, where that mean is within one standard error of the air's mean: the noisy amplitude
   of air is often above 0 and would make ``h`` too large, ``sigma`` 7% low for one coil).
   Each ``|HH|`` is divided by its ``h`` (the known law corrects air and dark tissue alike, so
   the map needs no extrapolation from the bright part). The first pass assumes air everywhere
   (the largest ``sigma`` the data allow) and the passes converge from above.

Steps 2-5 repeat until the cell map moves by less than 0.2% on average (10 passes at most).

6. Steps (the g-factor of SENSE jumps where the rows that fold together change): the last pass's
   coefficients are also taken in cells of 4 x 4 pixels, and each cell's departure from the
   smooth map (its log median minus the smooth map's log) is averaged over windows it chooses by
   intersecting confidence intervals (:mod:`~c2s_denoise.physics.noise.adaptive_windows`).
   Where that average is more than 1.5 standard errors from 0 it is added to the smooth map
   (fully from 3); elsewhere the smooth map stays. A Gaussian of half a fine cell and bilinear
   interpolation give the pixels.
7. Steps across the whole image (the fold boundaries of uniform undersampling) are tested row by
   row and column by column (:func:`~c2s_denoise.physics.noise.map_steps.find_steps`); where
   there are some, steps 1-6 run again on each rectangle between them.

At the image's edges the filters see the cell map continued by odd reflection and the
interpolation continues the line through the two end cells: a level rising toward the edge (the
g-factor's does) is not pulled toward the interior's.

The choices were measured on MNI152 and dipy's T1 slice; docs/method.md ("Noise maps from the
image alone") gives the numbers.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from ..magnitude import _background_mean, _check_n_coils, unbias_magnitude
from .adaptive_windows import ici_average
from .cell_grid import cell_medians, upsample
from .foreground import _ncchi_std_factor
from .map_steps import find_steps
from .wavelet import _MAD_TO_STD, _as_slices, _constant_mask, _haar_finest

__all__ = ["estimate_noise_map"]

_NOISE_MODELS = ("gaussian", "rician", "ncchi")
_MIN_SIZE = 16
# Side of a cell, in pixels (and in 2x2 blocks at every offset).
_CELL = 16
# Coefficients with an edge statistic above _EDGE_GATE times the local sigma are left out.
_EDGE_GATE = 2.5
# Magnitude images: a block's amplitude is read from the mean over this many blocks squared (6 x 6 pixels).
_AMPLITUDE_WINDOW = 5
# ... whose air value has standard error h0 sigma / _WINDOW_ROOT_N (6 x 6 pixels with triangular
# weights, 31 effective), and a block below the air mean plus _AIR_Z standard errors is air.
_WINDOW_ROOT_N = 5.56
_AIR_Z = 1.0
# A cell needs this many selected coefficients (pooled over the parts of complex data).
_MIN_COUNT = 32
# Gaussian smoothing of the log cell map, in cells (in-plane) and slices.
_SMOOTH_CELLS = 1.0
_SMOOTH_SLICES = 1.0
# The final map: cells of this side (pixels), with at least _FINE_MIN_COUNT coefficients ...
_FINE_CELL = 4
_FINE_MIN_COUNT = 4
# ... whose log median has the variance _LOG_MEDIAN_VARIANCE / count (white noise, every offset) ...
_LOG_MEDIAN_VARIANCE = 1.8
# ... averaged over adaptive windows (one-sided, in fine cells) of this confidence width ...
_WINDOWS = (2, 3, 4, 6, 8, 11, 16)
_ICI_GAMMA = 1.5
# ... which replace the smooth map where they depart from it by more than this many standard errors
# (fully from the second on) ...
_DEPARTURE = (1.5, 3.0)
# ... and smoothed by a Gaussian of this width, in fine cells.
_FINE_SMOOTH_CELLS = 0.5
_ITERATIONS = 10
# The passes stop once the cells' log sigma moves by less than this on average.
_TOLERANCE = 0.002
# End of the table of the noncentral-chi spread (beyond it, its asymptotic form).
_TABLE_END = 50.0


@functools.lru_cache(maxsize=8)
def _std_factor_table(n_coils: float) -> tuple[np.ndarray, np.ndarray]:
    """``std(M) / sigma`` of noncentral-chi noise tabulated on ``a = A / sigma`` in ``[0, _TABLE_END]``."""
    grid = np.linspace(0.0, _TABLE_END, 2001)
    return grid, _ncchi_std_factor(grid, n_coils)


def _std_factor(amplitude: np.ndarray, n_coils: float) -> np.ndarray:
    """``std(M) / sigma`` at ``a = A / sigma``: the table, and ``sqrt(1 - (N - 1/2) / a**2)`` beyond it."""
    grid, table = _std_factor_table(n_coils)
    far = np.sqrt(np.clip(1.0 - (n_coils - 0.5) / np.maximum(amplitude, _TABLE_END) ** 2, 1e-12, None))
    return np.where(amplitude > _TABLE_END, far, np.interp(amplitude, grid, table))


def _check_image(image: np.ndarray, noise_model: str, n_coils: float) -> tuple[np.ndarray, float]:
    """``image`` as slices ``(D, H, W)`` (float64 or complex128) and the coil number of the model."""
    if noise_model not in _NOISE_MODELS:
        raise ValueError(f"noise_model must be one of {_NOISE_MODELS}, got {noise_model!r}")
    n = _check_n_coils(n_coils)
    if noise_model == "rician" and n != 1.0:
        raise ValueError(f"noise_model='rician' is the one-coil case; use 'ncchi' for n_coils={n_coils!r}")
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or a volume (D, H, W), got shape {array.shape}")
    if min(array.shape[-2:]) < _MIN_SIZE or array.size == 0:
        raise ValueError(
            f"the image is too small for a local noise map: {array.shape[-2:]} in-plane, "
            f"at least {_MIN_SIZE} x {_MIN_SIZE} pixels are needed"
        )
    if np.iscomplexobj(array) and noise_model != "gaussian":
        raise ValueError(
            f"noise_model={noise_model!r} describes magnitude images, but the image is complex: "
            "the noise of complex images is Gaussian (use noise_model='gaussian')"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("the image has non-finite values (NaN or inf)")
    return _as_slices(array, allow_complex=True), n


def _smooth_cells(log_sigma: np.ndarray, valid: np.ndarray, smooth: float, *, odd_edges: bool = False) -> np.ndarray:
    """Fill invalid cells from the nearest valid ones, then median filter and Gaussian (in 3-D).

    With ``odd_edges`` the filters see the map continued beyond its edges by odd reflection
    (``2 f(edge) - f(edge - i)``), which keeps a linear trend: a level that rises toward the
    image's edge (the g-factor's does) is not pulled toward the interior's there. Otherwise the
    edge values are repeated (stable, for the passes that decide which blocks count).
    """
    _, indices = ndimage.distance_transform_edt(~valid, return_indices=True)
    filled = log_sigma[tuple(indices)]
    depth = filled.shape[0]
    widths = (_SMOOTH_SLICES if depth > 1 else 0.0, smooth, smooth)
    pad = [(0, 0)] * 3
    if odd_edges:
        pad = [
            (0, 0) if w == 0 or n < 2 else (min(n - 1, int(np.ceil(4 * w)) + 1),) * 2
            for w, n in zip(widths, filled.shape)
        ]
        filled = np.pad(filled, pad, mode="reflect", reflect_type="odd")
    filled = ndimage.median_filter(filled, size=(3 if depth >= 3 else 1, 3, 3), mode="nearest")
    smoothed = ndimage.gaussian_filter(filled, sigma=widths, mode="nearest")
    return smoothed[tuple(slice(before, smoothed.shape[k] - after) for k, (before, after) in enumerate(pad))]


def _adaptive_cells(log_sigma: np.ndarray, count: np.ndarray, smooth_log: np.ndarray) -> np.ndarray:
    """The fine log cell map ``(D, ny, nx)``: the smooth map, except where the data depart from it (steps).

    ``count`` is the number of coefficients behind each fine cell's median, ``smooth_log`` the
    smooth map on the fine cells. Slice by slice,
    :func:`~c2s_denoise.physics.noise.adaptive_windows.ici_average` with the precision
    ``count / _LOG_MEDIAN_VARIANCE`` (0 below ``_FINE_MIN_COUNT``) averages the cells'
    departure from the smooth map over adaptive windows (with ``P``, the summed precision of the
    chosen windows); where that average ``d`` is ``z = |d| sqrt(P / 4)`` (the four directions' windows overlap
    near the cell) standard errors from 0 by more than ``_DEPARTURE[0]``, ``smooth + d`` replaces the smooth map (fully from ``_DEPARTURE[1]`` on). Cells without data keep the smooth map; then a Gaussian of
    ``_FINE_SMOOTH_CELLS`` cells (and ``_SMOOTH_SLICES`` slices in volumes).
    """
    precision = np.where(count >= _FINE_MIN_COUNT, count, 0) / _LOG_MEDIAN_VARIANCE
    # the windows average the departure from the smooth map, not the map: a trend the smooth map
    # follows (a level rising toward the image's edge) does not bias the one-sided windows there
    departure = log_sigma - smooth_log
    averaged, window_precision = (
        np.stack(parts)
        for parts in zip(*(ici_average(f, w, _WINDOWS, _ICI_GAMMA) for f, w in zip(departure, precision)))
    )
    start, full = _DEPARTURE
    averaged = np.nan_to_num(averaged)
    z = np.abs(averaged) * np.sqrt(window_precision / 4.0)
    weight = np.where(precision > 0, np.clip((z - start) / (full - start), 0.0, 1.0), 0.0)
    blended = smooth_log + weight * averaged
    widths = (_SMOOTH_SLICES if blended.shape[0] > 1 else 0.0, _FINE_SMOOTH_CELLS, _FINE_SMOOTH_CELLS)
    return ndimage.gaussian_filter(blended, sigma=widths, mode="nearest")


def _every_shift(part: np.ndarray, masked: np.ndarray) -> list[np.ndarray]:
    """:func:`_haar_finest` of the 2x2 blocks at every offset, on a grid ``(D, H - 1, W - 1)``.

    Entry ``(r, c)`` is the block of pixels ``r, r + 1`` by ``c, c + 1`` (every entry is some
    offset's block). Returns ``[coefficients, means, details, usable]``.
    """
    depth, height, width = part.shape
    grid = (depth, height - 1, width - 1)
    out = [np.full(grid, np.nan), np.full(grid, np.nan), np.full(grid, np.nan), np.zeros(grid, dtype=bool)]
    for i in (0, 1):
        for j in (0, 1):
            shape = (depth, (height - i) // 2, (width - j) // 2)
            for target, array in zip(out, _haar_finest(part[:, i:, j:], masked[:, i:, j:])):
                target[:, i::2, j::2][:, : shape[1], : shape[2]] = array.reshape(shape)
    return out


def _local_sigma(
    slices: np.ndarray,
    model: str,
    n_coils: float,
    *,
    cell: int = _CELL,
    gate: float = _EDGE_GATE,
    smooth: float = _SMOOTH_CELLS,
    iterations: int = _ITERATIONS,
    fine: int = _FINE_CELL,
    amp_window: int = _AMPLITUDE_WINDOW,
    steps: bool = True,
) -> np.ndarray:
    """The noise map of slices ``(D, H, W)``; the keywords are the tuning of :func:`estimate_noise_map`.

    With ``steps``, where the noise level steps across whole rows or columns
    (:func:`~c2s_denoise.physics.noise.map_steps.find_steps`), the map is estimated again on each
    rectangle between the steps, so that no cell or smoothing reaches across one.
    """
    masked = _constant_mask(slices)
    parts = (slices.real, slices.imag) if np.iscomplexobj(slices) else (slices,)
    haar = [_every_shift(part, masked) for part in parts]
    coefficients, means, details, usable = (np.stack([h[k] for h in haar]) for k in range(4))
    if not np.any(coefficients[usable] != 0):
        raise ValueError("the image is noise-free (no 2x2 block has finest-scale detail): there is no noise to map")
    magnitude = model != "gaussian"
    if magnitude:
        means = ndimage.uniform_filter(means, size=(1, 1, amp_window, amp_window), mode="nearest")
    grid = coefficients.shape[2:]
    height, width = slices.shape[1:]
    # the first pass assumes the background's spread (the largest sigma the magnitudes allow)
    h0 = float(_ncchi_std_factor(0.0, n_coils))
    scale = np.full(coefficients.shape, h0 if magnitude else 1.0)
    selected = usable
    log_cells = None
    values = np.where(selected, np.abs(coefficients) / scale, np.nan)
    for _ in range(iterations):
        median, count = cell_medians(values, cell)
        valid = (count >= _MIN_COUNT) & (median > 0)
        if not np.any(valid):
            if log_cells is None:
                raise ValueError(
                    "the image is (nearly) noise-free: too few 2x2 blocks have finest-scale detail to map the noise"
                )
            break  # keep the previous map
        previous = log_cells
        log_cells = _smooth_cells(np.log(np.where(valid, median, 1.0) / _MAD_TO_STD), valid, smooth)
        if previous is not None and np.mean(np.abs(log_cells - previous)) < _TOLERANCE:
            break
        sigma_blocks = upsample(np.exp(log_cells), grid, (cell - 1) / 2.0, float(cell))[None]
        if magnitude:
            amplitude = np.asarray(unbias_magnitude(means, sigma_blocks, n_coils)) / sigma_blocks
            # within a standard error of the air's mean, a block is read as air (A = 0): the
            # unbiased amplitude of noise alone is often > 0 and would read sigma too low
            floor = (_background_mean(n_coils) + _AIR_Z * h0 / _WINDOW_ROOT_N) * sigma_blocks
            amplitude = np.where(means > floor, amplitude, 0.0)
            scale = _std_factor(amplitude, n_coils)
        selected = usable & (details < gate * sigma_blocks * scale)
        values = np.where(selected, np.abs(coefficients) / scale, np.nan)
    # the smooth map of the last pass's coefficients, now continued at the edges by its trend (in the
    # passes above, a magnitude image's low edge cell would lower its own air floor and drift)
    median, count = cell_medians(values, cell)
    valid = (count >= _MIN_COUNT) & (median > 0)
    if np.any(valid):
        log_cells = _smooth_cells(np.log(np.where(valid, median, 1.0) / _MAD_TO_STD), valid, smooth, odd_edges=True)
    sigma = _final_map(values, log_cells, (height, width), cell, fine)
    if steps:
        rows, columns = find_steps(values)
        if rows or columns:
            tuning = {"cell": cell, "gate": gate, "smooth": smooth, "iterations": iterations, "fine": fine}
            sigma = _between_steps(slices, model, n_coils, rows, columns, sigma, {**tuning, "amp_window": amp_window})
    return sigma


def _final_map(values: np.ndarray, log_cells: np.ndarray, shape: tuple[int, int], cell: int, fine: int) -> np.ndarray:
    """The map on the pixels: the last pass's coefficients in fine cells over adaptive windows (local steps stay sharp)."""
    median, count = cell_medians(values, fine)
    kept = (count >= _FINE_MIN_COUNT) & (median > 0)
    if not np.any(kept):  # too few coefficients for fine cells: the smooth map
        return upsample(np.exp(log_cells), shape, cell / 2.0, float(cell))
    smooth_log = upsample(log_cells, median.shape[1:], (cell - fine) / (2.0 * fine), cell / fine)
    fine_log = _adaptive_cells(np.log(np.where(kept, median, 1.0) / _MAD_TO_STD), np.where(kept, count, 0), smooth_log)
    return upsample(np.exp(fine_log), shape, fine / 2.0, float(fine))


def _between_steps(
    slices: np.ndarray, model: str, n_coils: float, rows: list[int], columns: list[int], sigma: np.ndarray, tuning: dict
) -> np.ndarray:
    """``sigma`` estimated again on each rectangle between the step ``rows`` and ``columns`` (a new array).

    A rectangle without enough noise to map (masked air) keeps the map of the whole image.
    """
    out = sigma.copy()
    row_edges = [0, *rows, slices.shape[1]]
    column_edges = [0, *columns, slices.shape[2]]
    for top, bottom in zip(row_edges[:-1], row_edges[1:]):
        for left, right in zip(column_edges[:-1], column_edges[1:]):
            try:
                part = _local_sigma(slices[:, top:bottom, left:right], model, n_coils, steps=False, **tuning)
            except ValueError:  # no noise there (masked or constant)
                continue
            out[:, top:bottom, left:right] = part
    return out


def estimate_noise_map(image: np.ndarray, *, noise_model: str = "gaussian", n_coils: float = 1.0) -> np.ndarray:
    """Estimate the local noise standard deviation of an image or volume, pixel by pixel.

    The noise level may vary across the image, smoothly (bias-field correction) or with steps
    (the g-factor of parallel imaging); the map is the robust wavelet MAD of the finest diagonal
    Haar detail in cells of 16 x 16 pixels, without edge blocks, smoothed, and where finer cells
    of 4 x 4 pixels averaged over adaptive windows show a step, those; steps that run across
    the whole image (the fold boundaries of SENSE) are found at their row or column and the map
    is estimated on each side separately (see the module docstring). On MNI152 and dipy's T1
    slice its median absolute relative error inside the head is 1-4.2% for Gaussian, complex,
    Rician and 4-coil noncentral-chi noise and smooth maps, 3.6-3.9% for SENSE at R = 3
    (``benchmarks/results/noise_map_accuracy.md``).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (D, H, W)
        Image or volume (slices along the first axis), at least 16 x 16 pixels in-plane, real or
        complex (complex: the real and imaginary parts are pooled). A volume's map is smoothed
        across neighbouring slices too.
    noise_model : {"gaussian", "rician", "ncchi"}, default="gaussian"
        ``"gaussian"``: the noise of a real or complex image is Gaussian. ``"rician"`` (one coil)
        and ``"ncchi"`` (``n_coils`` coils combined by root-sum-of-squares): a magnitude image,
        whose noise is corrected for its noncentral-chi law.
    n_coils : float, default=1.0
        Number ``N >= 1`` of coils of ``"ncchi"`` (must be 1 for ``"rician"``; ignored by
        ``"gaussian"``).

    Returns
    -------
    ndarray of float64, the shape of ``image``
        Noise standard deviation per real component (per coil, for magnitude images), in the
        image's units: the ``sigma`` that :func:`~c2s_denoise.physics.noise.estimate_sigma`
        returns, now per pixel. Finite and strictly positive; in masked (constant) air it is
        carried over from the nearest measured region.

    Raises
    ------
    ValueError
        For an unknown ``noise_model``, a magnitude model with complex data, ``n_coils`` below 1
        (or not 1 with ``"rician"``), a shape other than 2-D or 3-D, fewer than 16 x 16 pixels,
        non-finite values, or a noise-free image (no 2x2 block with finest-scale detail).

    Notes
    -----
    On integer (quantised) images the cell medians are not interpolated within a grey level, as
    :func:`~c2s_denoise.physics.noise.estimate_sigma_wavelet` does: a noise level of one grey
    level reads about 20% low, two and more are read within a few percent.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> level = np.linspace(0.05, 0.1, 64)[None, :] * np.ones((64, 1))
    >>> sigma = estimate_noise_map(level * rng.standard_normal((64, 64)))
    >>> sigma.shape, bool(0.04 < sigma[:, :8].mean() < 0.07 < sigma[:, -8:].mean() < 0.12)
    ((64, 64), True)
    """
    slices, n = _check_image(image, noise_model, n_coils)
    sigma = _local_sigma(slices, noise_model, n)
    sigma = np.maximum(sigma, np.finfo(np.float64).tiny)
    return sigma[0] if np.ndim(image) == 2 else sigma
