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
   coefficients are also taken in cells of 4 x 4 pixels, and each cell's log median is averaged
   over windows it chooses by intersecting confidence intervals
   (:mod:`~c2s_denoise.physics.noise.adaptive_windows`). Where that average departs from the
   smooth map by more than 1.5 standard errors it replaces it (fully from 3); elsewhere the
   smooth map stays. A Gaussian of half a fine cell and bilinear interpolation give the pixels.

The choices were measured on MNI152 and dipy's T1 slice; docs/method.md ("Noise maps from the
image alone") gives the numbers.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from ..magnitude import _background_mean, _check_n_coils, unbias_magnitude
from .adaptive_windows import ici_average
from .foreground import _ncchi_std_factor
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


def _cell_medians(values: np.ndarray, cell: int) -> tuple[np.ndarray, np.ndarray]:
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


def _smooth_cells(log_sigma: np.ndarray, valid: np.ndarray, smooth: float) -> np.ndarray:
    """Fill invalid cells from the nearest valid ones, then median filter and Gaussian (in 3-D)."""
    _, indices = ndimage.distance_transform_edt(~valid, return_indices=True)
    filled = log_sigma[tuple(indices)]
    depth = filled.shape[0]
    filled = ndimage.median_filter(filled, size=(3 if depth >= 3 else 1, 3, 3), mode="nearest")
    widths = (_SMOOTH_SLICES if depth > 1 else 0.0, smooth, smooth)
    return ndimage.gaussian_filter(filled, sigma=widths, mode="nearest")


def _adaptive_cells(log_sigma: np.ndarray, count: np.ndarray, smooth_log: np.ndarray) -> np.ndarray:
    """The fine log cell map ``(D, ny, nx)``: the smooth map, except where the data depart from it (steps).

    ``count`` is the number of coefficients behind each fine cell's median, ``smooth_log`` the
    smooth map on the fine cells. Slice by slice,
    :func:`~c2s_denoise.physics.noise.adaptive_windows.ici_average` with the precision
    ``count / _LOG_MEDIAN_VARIANCE`` (0 below ``_FINE_MIN_COUNT``) gives an average over
    adaptive windows and the summed precision ``P`` of the chosen windows; where it departs from
    the smooth map by ``z = |ici - smooth| sqrt(P / 4)`` (the four directions' windows overlap
    near the cell) of more than ``_DEPARTURE[0]``, it replaces it (fully from ``_DEPARTURE[1]`` on). Cells without data keep the smooth map; then a Gaussian of
    ``_FINE_SMOOTH_CELLS`` cells (and ``_SMOOTH_SLICES`` slices in volumes).
    """
    precision = np.where(count >= _FINE_MIN_COUNT, count, 0) / _LOG_MEDIAN_VARIANCE
    averaged, window_precision = (
        np.stack(parts)
        for parts in zip(*(ici_average(f, w, _WINDOWS, _ICI_GAMMA) for f, w in zip(log_sigma, precision)))
    )
    start, full = _DEPARTURE
    z = np.abs(np.nan_to_num(averaged - smooth_log)) * np.sqrt(window_precision / 4.0)
    weight = np.where(precision > 0, np.clip((z - start) / (full - start), 0.0, 1.0), 0.0)
    blended = smooth_log + weight * np.nan_to_num(averaged - smooth_log)
    widths = (_SMOOTH_SLICES if blended.shape[0] > 1 else 0.0, _FINE_SMOOTH_CELLS, _FINE_SMOOTH_CELLS)
    return ndimage.gaussian_filter(blended, sigma=widths, mode="nearest")


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


def _upsample(cells: np.ndarray, shape: tuple[int, int], offset: float, step: float) -> np.ndarray:
    """Bilinear interpolation of cell values ``(D, ny, nx)`` onto a grid ``(D, *shape)``."""
    rows = _interpolation(shape[0], cells.shape[1], offset, step)
    columns = _interpolation(shape[1], cells.shape[2], offset, step)
    along_columns = np.tensordot(cells, columns, axes=([2], [1]))  # (D, ny, W)
    return np.ascontiguousarray(np.tensordot(rows, along_columns, axes=([1], [1])).transpose(1, 0, 2))


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
) -> np.ndarray:
    """The noise map of slices ``(D, H, W)``; the keywords are the tuning of :func:`estimate_noise_map`."""
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
        median, count = _cell_medians(values, cell)
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
        sigma_blocks = _upsample(np.exp(log_cells), grid, (cell - 1) / 2.0, float(cell))[None]
        if magnitude:
            amplitude = np.asarray(unbias_magnitude(means, sigma_blocks, n_coils)) / sigma_blocks
            # within a standard error of the air's mean, a block is read as air (A = 0): the
            # unbiased amplitude of noise alone is often > 0 and would read sigma too low
            floor = (_background_mean(n_coils) + _AIR_Z * h0 / _WINDOW_ROOT_N) * sigma_blocks
            amplitude = np.where(means > floor, amplitude, 0.0)
            scale = _std_factor(amplitude, n_coils)
        selected = usable & (details < gate * sigma_blocks * scale)
        values = np.where(selected, np.abs(coefficients) / scale, np.nan)
    # the final map: the last pass's coefficients in fine cells, over adaptive windows (steps stay sharp)
    median, count = _cell_medians(values, fine)
    kept = (count >= _FINE_MIN_COUNT) & (median > 0)
    if not np.any(kept):  # too few coefficients for fine cells: the smooth map
        return _upsample(np.exp(log_cells), (height, width), cell / 2.0, float(cell))
    smooth_log = _upsample(log_cells, median.shape[1:], (cell - fine) / (2.0 * fine), cell / fine)
    fine_log = _adaptive_cells(np.log(np.where(kept, median, 1.0) / _MAD_TO_STD), np.where(kept, count, 0), smooth_log)
    return _upsample(np.exp(fine_log), (height, width), fine / 2.0, float(fine))


def estimate_noise_map(image: np.ndarray, *, noise_model: str = "gaussian", n_coils: float = 1.0) -> np.ndarray:
    """Estimate the local noise standard deviation of an image or volume, pixel by pixel.

    The noise level may vary across the image, smoothly (bias-field correction) or with steps
    (the g-factor of parallel imaging); the map is the robust wavelet MAD of the finest diagonal
    Haar detail in cells of 16 x 16 pixels, without edge blocks, smoothed, and where finer cells
    of 4 x 4 pixels averaged over adaptive windows show a step, those (see the module
    docstring). On MNI152 and dipy's T1 slice its median absolute relative error inside the
    head is 1-4.4% for Gaussian, complex, Rician and 4-coil noncentral-chi noise and smooth
    maps, 4-6% for SENSE at R = 3 (``benchmarks/results/noise_map_accuracy.md``).

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
