"""Three slicing planes mixed by SURE (docs/method.md section 6, "Three slicing planes").

- ``sure_weights``: the weights of the formula against the oracle weights (the true MSE) for
  linear smoothers whose divergence is known exactly; its doctest (James-Stein shrinkage).
- ``multiplanar_volume``: each plane is the denoiser applied along that axis and put back; the
  Monte-Carlo divergence matches the exact one; near-isotropic volumes get a mix better than any
  one plane, volumes that vary fast across slices keep the acquired slices, and the full
  denoiser runs only along the planes that get weight.
- The estimator: the volume goes through the network along each axis (weights forced), images and
  ``multiplanar=False`` are unchanged, and results are deterministic.
"""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest
from conftest import smooth_periodic as _smooth

from c2s_denoise import C2SDenoiser
from c2s_denoise import sure_weights as sure_weights_module
from c2s_denoise.estimator import _planes
from c2s_denoise.estimator._planes import MIN_SLICES, SLICING_PLANES, multiplanar_volume
from c2s_denoise.sure_weights import sure_weights


def _filter_trace(passes: int, n_axes: int) -> float:
    """``div / N`` of :func:`_smooth`: the centre tap of the filter, ``(c_passes)^n_axes``."""
    taps = np.array([1.0])
    for _ in range(passes):
        taps = np.convolve(taps, [0.25, 0.5, 0.25])
    return float(taps[taps.size // 2] ** n_axes)


def _isotropic_volume(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    return _smooth(np.random.default_rng(seed).standard_normal(shape), (0, 1, 2), passes=6) * 8


def test_the_doctest_holds():
    assert doctest.testmod(sure_weights_module, raise_on_error=False).failed == 0


def test_sure_weights_match_the_oracle_weights_of_linear_smoothers():
    rng = np.random.default_rng(1)
    clean = _isotropic_volume((24, 24, 24), seed=2)
    sigma = 0.5
    noisy = clean + sigma * rng.standard_normal(clean.shape)
    estimates = [noisy, _smooth(noisy, (0, 1, 2), 1), _smooth(noisy, (0, 1, 2), 4)]
    divergences = np.array([1.0, _filter_trace(1, 3), _filter_trace(4, 3)])
    weights = sure_weights(np.stack([(e - noisy).ravel() for e in estimates]), divergences, sigma)

    def mse(w):
        return float(np.mean((sum(wi * e for wi, e in zip(w, estimates)) - clean) ** 2))

    grid = [np.array(w) / 40 for w in itertools.product(range(41), repeat=3) if sum(w) == 40]
    oracle = min(grid, key=mse)
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
    assert np.abs(weights - oracle).max() < 0.06, (weights, oracle)
    assert mse(weights) < 1.01 * mse(oracle)
    # the factor 2 sigma^2 of the divergence term matters: without it the identity wins
    wrong = sure_weights(np.stack([(e - noisy).ravel() for e in estimates]), divergences * 0, sigma)
    assert mse(wrong) > 1.5 * mse(weights)


def test_sure_weights_take_equal_estimates_and_reject_bad_shapes():
    residual = np.ones((2, 50))
    weights = sure_weights(residual, np.array([0.5, 0.5]), 1.0)
    assert np.isfinite(weights).all() and weights.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="residuals"):
        sure_weights(np.ones(5), np.ones(1), 1.0)


def test_each_plane_is_the_denoiser_along_that_axis():
    volume = np.random.default_rng(0).standard_normal((1, 5, 6, 7))
    seen = []

    def along_first_axis(v):  # marks the first spatial axis: a cumulative sum along it
        seen.append(v.shape)
        return np.cumsum(v, axis=1)

    estimates = [_planes._along(along_first_axis, volume, order) for order in SLICING_PLANES]
    assert seen == [(1, 5, 6, 7), (1, 6, 5, 7), (1, 7, 6, 5)]
    for axis, estimate in enumerate(estimates):
        np.testing.assert_allclose(estimate, np.cumsum(volume, axis=1 + axis))


def test_the_probe_divergence_is_the_exact_one(monkeypatch):
    clean = _isotropic_volume((16, 20, 18), seed=3)[None]
    sigma = 0.3
    noisy = clean + sigma * np.random.default_rng(4).standard_normal(clean.shape)
    seen = {}

    def recording(residuals, divergences, sigma_):
        seen["divergences"] = divergences
        return sure_weights(residuals, divergences, sigma_)

    monkeypatch.setattr(_planes, "sure_weights", recording)
    in_plane = lambda v: _smooth(v, (2, 3), passes=2)  # noqa: E731  (a 2-D smoother of each slice)
    multiplanar_volume(in_plane, in_plane, noisy, slice(0, 1), sigma)
    np.testing.assert_allclose(seen["divergences"], _filter_trace(2, 2), rtol=0.02)


def test_near_isotropic_volumes_mix_the_planes_and_layered_ones_keep_their_slices():
    rng = np.random.default_rng(5)
    sigma = 0.5
    in_plane = lambda v: _smooth(v, (2, 3), passes=3)  # noqa: E731

    def errors(clean):
        noisy = clean + sigma * rng.standard_normal(clean.shape)
        mix, weights = multiplanar_volume(in_plane, in_plane, noisy, slice(0, 1), sigma, sure_filter=False)
        planes = [_planes._along(in_plane, noisy, order) for order in SLICING_PLANES]
        return float(np.mean((mix - clean) ** 2)), [float(np.mean((p - clean) ** 2)) for p in planes], weights

    mixed, planes, weights = errors(_isotropic_volume((24, 32, 32), seed=6)[None])
    assert weights.min() > 0.1 and mixed < 0.9 * min(planes)
    layers = np.repeat(rng.standard_normal((24, 1, 1)), 32, 1).repeat(32, 2) * 3  # flat slices, each its own level
    mixed, planes, weights = errors(_smooth(layers, (1, 2), passes=6)[None])
    assert weights[0] > 0.9 and mixed <= 1.01 * planes[0]


def test_the_full_denoiser_runs_only_along_planes_with_weight():
    clean = np.repeat(np.random.default_rng(8).standard_normal((20, 1, 1)), 24, 1).repeat(24, 2)[None] * 3
    noisy = clean + 0.5 * np.random.default_rng(9).standard_normal(clean.shape)
    once = lambda v: _smooth(v, (2, 3), passes=3)  # noqa: E731
    shapes = []

    def full(v):
        shapes.append(v.shape)
        return once(v)

    mix, weights = multiplanar_volume(full, once, noisy, slice(0, 1), 0.5, sure_filter=False)
    weighted = [plane for plane in range(3) if weights[plane] > 0]
    assert weights[0] > 0.99 and len(weighted) < 3
    assert shapes == [tuple(noisy.shape[i] for i in (0, *(1 + a for a in SLICING_PLANES[p]))) for p in weighted]
    expected = sum(weights[p] * _planes._along(once, noisy, SLICING_PLANES[p]) for p in weighted)
    np.testing.assert_allclose(mix, expected, rtol=1e-12)


def test_with_the_sure_filter_the_weighted_planes_are_filtered_together():
    rng = np.random.default_rng(10)
    clean = _isotropic_volume((24, 32, 32), seed=11)[None]
    noisy = clean + 0.5 * rng.standard_normal(clean.shape)
    in_plane = lambda v: _smooth(v, (2, 3), passes=3)  # noqa: E731
    filtered, weights = multiplanar_volume(in_plane, in_plane, noisy, slice(0, 1), 0.5)
    convex, same = multiplanar_volume(in_plane, in_plane, noisy, slice(0, 1), 0.5, sure_filter=False)
    np.testing.assert_array_equal(weights, same)
    perturbed, probe, epsilon = _planes.probed(noisy, slice(0, 1), 0.5)
    planes = [p for p in range(3) if weights[p] > 0]
    singles = [_planes._along(in_plane, noisy, SLICING_PLANES[p]) for p in planes]
    responses = [_planes._along(in_plane, perturbed, SLICING_PLANES[p]) for p in planes]
    expected = _planes.sure_filtered(singles, singles, responses, probe, epsilon, noisy, 0.5)
    np.testing.assert_allclose(filtered, expected, rtol=1e-10)
    assert np.mean((filtered - clean) ** 2) < 0.95 * np.mean((convex - clean) ** 2)


@pytest.fixture(scope="module")
def volume_model():
    rng = np.random.default_rng(0)
    clean = _isotropic_volume((MIN_SLICES, 24, 20), seed=7)
    clean = (clean - clean.min()) / np.ptp(clean)
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    return C2SDenoiser(max_iter=40, random_state=0, sigma=0.1).fit([noisy]), noisy


def test_the_estimator_sends_the_volume_through_each_plane(volume_model, monkeypatch):
    model, noisy = volume_model
    for plane, order in enumerate(SLICING_PLANES):
        monkeypatch.setattr(_planes, "sure_weights", lambda r, d, s, plane=plane: np.eye(3)[plane])
        forced = model.set_params(multiplanar=True, sure_filter=False).transform([noisy])[0]
        along = model.set_params(multiplanar=False).transform([noisy.transpose(order)])[0]
        np.testing.assert_allclose(forced, along.transpose(np.argsort(order)), atol=1e-6)
    model.set_params(sure_filter=True)


def test_images_and_multiplanar_false_are_unchanged_and_results_repeat(volume_model):
    model, noisy = volume_model
    images = noisy[:3]
    np.testing.assert_array_equal(
        model.set_params(multiplanar=True).transform(images), model.set_params(multiplanar=False).transform(images)
    )
    first = model.set_params(multiplanar=True).transform([noisy, noisy[:6]])
    np.testing.assert_array_equal(first[0], model.transform([noisy])[0])
    np.testing.assert_array_equal(first[1], model.transform([noisy[:6]])[0])
    thin = model.set_params(multiplanar=False).transform([noisy[: MIN_SLICES - 1]])[0]
    np.testing.assert_array_equal(model.set_params(multiplanar=True).transform([noisy[: MIN_SLICES - 1]])[0], thin)
