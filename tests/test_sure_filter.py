"""The SURE filter over denoised estimates (docs/method.md section 6, "A SURE filter over the estimates").

- ``fit_sure_filter``: against the oracle filter (least squares against the clean volume) of
  linear smoothers; the factor of the divergence term matters; the doctest (James-Stein); the
  columns are the estimates shifted with the edge repeated, whatever the block size; thin axes get
  no neighbourhood.
- The estimator: the planes of a volume are mixed by the filter fitted on them (better than their
  convex mix on an undertrained model, item by item, repeatable); thin volumes and single images
  keep the network's output, models saved before it the convex mix.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from conftest import smooth_periodic as _smooth

from c2s_denoise import C2SDenoiser
from c2s_denoise import sure_filter as sure_filter_module
from c2s_denoise.estimator import _planes
from c2s_denoise.estimator.legacy import upgrade_params
from c2s_denoise.sure_filter import apply_sure_filter, filter_radii, fit_sure_filter


def _case(seed: int = 0, sigma: float = 0.5):
    rng = np.random.default_rng(seed)
    clean = _smooth(rng.standard_normal((1, 12, 40, 40)), (1, 2, 3), passes=5) * 10
    noisy = clean + sigma * rng.standard_normal(clean.shape)
    probe = rng.standard_normal(clean.shape)
    return clean, noisy, probe, sigma


def _oracle(estimates: np.ndarray, clean: np.ndarray, radius: int) -> np.ndarray:
    """The least-squares filter against the clean volume: columns from the filter itself (unit coefficients)."""
    n = estimates.shape[0] * int(np.prod([2 * r + 1 for r in filter_radii(clean.shape[1:], radius)]))
    columns = np.stack([apply_sure_filter(estimates, np.eye(n)[j], radius).ravel() for j in range(n)], 1)
    return np.linalg.lstsq(columns, clean.ravel(), rcond=None)[0]


def test_the_doctest_holds():
    assert doctest.testmod(sure_filter_module, raise_on_error=False).failed == 0


def test_the_sure_filter_matches_the_oracle_filter_of_linear_smoothers():
    clean, noisy, probe, sigma = _case()
    smoothers = [lambda v: _smooth(v, (2, 3), 1), lambda v: _smooth(v, (1,), 2)]  # in-plane, across slices
    epsilon = 1e-3
    estimates = np.stack([f(noisy) for f in smoothers])
    responses = np.stack([f(noisy + epsilon * probe) for f in smoothers])

    def mse(coefficients):
        return float(np.mean((apply_sure_filter(estimates, coefficients) - clean) ** 2))

    fitted = fit_sure_filter(estimates, responses, probe, epsilon, noisy, sigma)
    oracle = _oracle(estimates, clean, 1)
    assert fitted.shape == (2 * 27,)
    assert mse(fitted) < 1.1 * mse(oracle)  # 54 coefficients from 19,200 voxels
    # better than either smoother alone, and than their mean
    assert mse(fitted) < 0.8 * min(float(np.mean((e - clean) ** 2)) for e in [*estimates, estimates.mean(0)])
    # the divergence term, 2 sigma^2 div, matters: half of it lets the filter keep much more noise
    half = fit_sure_filter(estimates, responses, probe, 2 * epsilon, noisy, sigma)  # the divergence halved
    assert mse(half) > 1.3 * mse(fitted)


def test_columns_are_the_estimates_shifted_with_the_edge_repeated_in_any_block(monkeypatch):
    estimates = np.random.default_rng(1).standard_normal((2, 1, 5, 6, 7))
    shifts = [(a, b, c) for a in range(3) for b in range(3) for c in range(3)]
    padded = np.pad(estimates[1], [(0, 0), (1, 1), (1, 1), (1, 1)], mode="edge")
    for index in (0, 5, 26):
        a, b, c = shifts[index]
        coefficients = np.zeros(54)
        coefficients[27 + index] = 1.0
        expected = padded[:, a : a + 5, b : b + 6, c : c + 7]
        np.testing.assert_array_equal(apply_sure_filter(estimates, coefficients), expected)
    clean = estimates[0] + 0.0
    responses = estimates + 1e-3 * np.random.default_rng(2).standard_normal(estimates.shape)
    whole = fit_sure_filter(estimates, responses, clean, 1e-3, clean, 0.3)
    monkeypatch.setattr(sure_filter_module, "BLOCK_VALUES", 1)  # one row per block
    np.testing.assert_allclose(fit_sure_filter(estimates, responses, clean, 1e-3, clean, 0.3), whole, rtol=1e-8)


def test_thin_axes_get_no_neighbourhood_and_bad_shapes_are_named():
    assert filter_radii((1, 64, 64), 1) == (0, 1, 1)
    assert filter_radii((2, 3, 64), 1) == (0, 1, 1)
    image = np.random.default_rng(3).standard_normal((1, 1, 16, 16))
    coefficients = fit_sure_filter(image[None], image[None] * 1.01, image, 0.01, image, 0.1)
    assert coefficients.shape == (9,)
    with pytest.raises(ValueError, match="need estimates"):
        fit_sure_filter(image[None], image[None][..., :8], image, 0.01, image, 0.1)
    with pytest.raises(ValueError, match="coefficients do not match"):
        apply_sure_filter(image[None], np.ones(27))


@pytest.fixture(scope="module")
def undertrained():
    rng = np.random.default_rng(0)
    clean = _smooth(rng.standard_normal((_planes.MIN_SLICES, 24, 24)), (0, 1, 2), passes=4)
    clean = (clean - clean.min()) / np.ptp(clean)
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    model = C2SDenoiser(max_iter=30, random_state=0, sigma=0.1, width=8, init="random").fit([noisy])
    return model, clean, noisy


def test_the_estimator_filters_the_planes_of_each_volume_and_beats_their_convex_mix(undertrained):
    model, clean, noisy = undertrained

    def mse(output):
        return float(np.mean((output - clean) ** 2))

    convex = model.set_params(sure_filter=False).transform([noisy])[0]
    filtered = model.set_params(sure_filter=True).transform([noisy])[0]
    assert mse(filtered) < 0.9 * mse(convex)  # SURE's filter fixes more of what the short fit got wrong
    together = model.transform([noisy, noisy[:6], noisy[0]])
    np.testing.assert_array_equal(together[0], filtered)
    np.testing.assert_array_equal(model.transform([noisy])[0], filtered)
    # thin volumes and single images keep the network's output
    model.set_params(sure_filter=False)
    np.testing.assert_array_equal(together[1], model.transform([noisy[:6]])[0])
    np.testing.assert_array_equal(together[2], model.transform([noisy[0]])[0])
    model.set_params(sure_filter=True)


def test_models_saved_before_the_filter_keep_the_convex_mix():
    state = {"sigma": 0.1}
    upgrade_params(state)
    assert state["sure_filter"] is False
