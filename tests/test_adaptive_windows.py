"""Adaptive-window averaging by intersecting confidence intervals (physics/noise/adaptive_windows.py).

The rule behind the noise map's steps (docs/method.md, "Noise maps from the image alone"): on a
flat field the windows grow and the noise falls as one over the root of the window's precision;
next to a step they stop on the step's side, so both sides stay unbiased where one fixed
smoothing width would blur them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from c2s_denoise.physics.noise.adaptive_windows import ici_average

SIZES = (2, 3, 4, 6, 8, 11, 16)
NOISE = 0.1


def noisy(field: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return field + NOISE * rng.standard_normal(field.shape), np.full(field.shape, 1.0 / NOISE**2)


def test_flat_field_is_averaged_over_large_windows():
    values, precision = noisy(np.zeros((64, 64)))
    average, window_precision = ici_average(values, precision, SIZES, 1.5)
    # one 2 x 3 window would leave NOISE / sqrt(6) = 0.041; the large windows leave far less
    assert np.std(average) < 0.2 * NOISE
    assert np.median(window_precision) > 100 * precision[0, 0]


def test_step_is_kept_where_a_fixed_smoothing_blurs_it():
    step = np.zeros((64, 64))
    step[32:] = 1.0
    values, precision = noisy(step, seed=1)
    average, _ = ici_average(values, precision, SIZES, 1.5)
    blurred = ndimage.gaussian_filter(values, 3.0, mode="nearest")  # a comparable noise reduction
    rows = slice(28, 36)  # four rows on each side of the step
    assert np.abs(average[rows] - step[rows]).mean() < 0.05
    assert np.abs(blurred[rows] - step[rows]).mean() > 0.2
    assert np.std((average - step)[:16]) < 0.3 * NOISE  # far from the step it is as quiet as on a flat field


def test_cells_without_data_are_filled_from_their_windows_or_left_nan():
    values, precision = noisy(np.full((40, 40), 2.0), seed=2)
    precision[:, :20] = 0.0  # no data on the left half ...
    values[:, :20] = 1e9  # ... whatever the values say there
    average, window_precision = ici_average(values, precision, (1, 2, 4), 1.5)
    reached = np.isfinite(average)
    assert np.all(reached[:, 17:]) and not np.any(reached[:, :16])  # windows reach 3 cells left, no more
    assert np.allclose(average[reached], 2.0, atol=4 * NOISE)  # the values without precision are ignored
    assert np.all(window_precision[~reached] == 0.0)
