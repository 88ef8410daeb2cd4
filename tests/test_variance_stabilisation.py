"""The variance-stabilising transform of magnitude noise and its exact unbiased inverse (docs/method.md section 10)."""

import numpy as np
import pytest
from scipy.stats import kstest

from c2s_denoise.physics.magnitude import ncchi_mean
from c2s_denoise.physics.variance_stabilisation import (
    floor_error,
    floor_weights,
    stabilise,
    stabilised_mean,
    stabilised_std,
    unstabilise,
)


def _rss_magnitude(amplitude, sigma, n_coils, n_samples, rng):
    """Monte Carlo RSS magnitudes of ``n_coils`` coils whose noise-free RSS is ``amplitude``."""
    weights = rng.standard_normal(n_coils) + 1j * rng.standard_normal(n_coils)
    weights /= np.linalg.norm(weights)
    noise = sigma * (rng.standard_normal((n_samples, n_coils)) + 1j * rng.standard_normal((n_samples, n_coils)))
    return np.sqrt(np.sum(np.abs(amplitude * weights + noise) ** 2, axis=1))


@pytest.mark.parametrize("n_coils", [1, 4, 8])
def test_stabilised_noise_is_gaussian_of_level_sigma_with_the_tabulated_mean(n_coils):
    """Monte Carlo: f(M) is close to Gaussian (Kolmogorov distance to a normal law < 0.02, where the raw
    one-coil air's is 0.047) with spread sigma within 10% (3% in tissue, A >= 3 sigma), and E[f(M)]
    is the tabulated stabilised mean."""
    rng = np.random.default_rng(n_coils)
    sigma = 0.3
    for snr in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0):
        samples = _rss_magnitude(snr * sigma, sigma, n_coils, 200_000, rng)
        stabilised = stabilise(samples, sigma, n_coils)
        assert stabilised.std() == pytest.approx(sigma, rel=0.1 if snr < 3 else 0.03), snr
        standardised = (stabilised - stabilised.mean()) / stabilised.std()
        assert kstest(standardised, "norm").statistic < 0.02, snr
        # the standard error of the mean is sigma / sqrt(2e5) = 0.0022 sigma: 5 of them
        assert stabilised.mean() == pytest.approx(stabilised_mean(snr * sigma, sigma, n_coils), abs=0.011 * sigma)
    raw_air = _rss_magnitude(0.0, sigma, n_coils, 200_000, rng)
    assert raw_air.std() < 0.75 * sigma  # what the stabilisation corrects
    if n_coils == 1:
        assert kstest((raw_air - raw_air.mean()) / raw_air.std(), "norm").statistic > 0.04


@pytest.mark.parametrize("n_coils", [1, 2.5, 8])
def test_stabilised_air_has_mean_zero_and_spread_close_to_one(n_coils):
    assert stabilised_mean(0.0, 1.0, n_coils) == 0.0
    a = np.linspace(0.0, 15.0, 61)
    np.testing.assert_allclose(stabilised_std(a, n_coils), 1.0, atol=0.1)
    np.testing.assert_allclose(stabilised_std(a[a >= 3], n_coils), 1.0, atol=0.03)


def test_transform_has_no_flat_steps():
    """A transform with near-flat stretches piles samples into spikes of the density (moments can still match):
    a score-based denoiser reads those spikes as signal. The slope of f stays within [0.5, 10]."""
    m = np.linspace(0.05, 40.0, 8000)
    for n_coils in (1, 4, 8):
        slope = np.diff(stabilise(m, 1.0, n_coils)) / np.diff(m)
        assert slope.min() > 0.5 and slope.max() < 10.0, n_coils


@pytest.mark.parametrize("n_coils", [1, 4, 16])
def test_inverse_is_exact_and_unbiased(n_coils):
    """unstabilise(E[f(M) | A]) = A from the air to very high SNR, and the Monte Carlo mean of f(M) maps to A."""
    a = np.concatenate([np.linspace(0.0, 5.0, 501), np.geomspace(5.0, 1e4, 200)])
    np.testing.assert_allclose(unstabilise(stabilised_mean(a, 2.0, n_coils), 2.0, n_coils), a, rtol=1e-6, atol=1e-6)
    # values at or below the air's stabilised mean map to 0
    air = float(stabilised_mean(0.0, 2.0, n_coils))
    np.testing.assert_array_equal(unstabilise(np.array([0.0, 0.5 * air, air]), 2.0, n_coils), 0.0)
    # far from the background f(M) = M + c: the stabilised mean follows the noncentral-chi mean
    far = np.array([200.0, 1e3])
    shift = stabilised_mean(far, 1.0, n_coils) - ncchi_mean(far, 1.0, n_coils)
    assert shift[0] == pytest.approx(shift[1], abs=1e-9)
    # unbiased: averaging many stabilised samples at A and inverting gives A back
    rng = np.random.default_rng(0)
    for snr in (0.7, 2.0, 6.0):
        samples = stabilise(_rss_magnitude(snr, 1.0, n_coils, 400_000, rng), 1.0, n_coils)
        assert unstabilise(samples.mean(), 1.0, n_coils) == pytest.approx(snr, abs=0.02)


def test_floor_shrinkage_flattens_the_air_and_leaves_tissue():
    """Near the floor the inverse is a square root: small errors in air become bright pixels; the shrinkage
    soft-thresholds the A**2 estimate by t / k and leaves amplitudes well above it nearly unchanged."""
    rng = np.random.default_rng(3)
    error = 0.1 * rng.standard_normal(100_000)  # a denoised stabilised air: mean 0, spread 0.1 sigma
    exact = unstabilise(error, 1.0, 1)
    assert np.percentile(exact, 99) > 0.7  # the speckle: 7 times the error spread
    spread = floor_error(error)
    assert spread == pytest.approx(0.1, rel=0.02)
    shrunk = unstabilise(error, 1.0, 1, floor_shrinkage=1.5 * spread)
    assert np.mean(shrunk > 0) < 0.1 and np.percentile(shrunk, 99) < 0.6
    tissue = np.array([5.0, 10.0, 50.0])
    recovered = unstabilise(stabilised_mean(tissue, 1.0, 1), 1.0, 1, floor_shrinkage=0.15)
    np.testing.assert_allclose(recovered, tissue, rtol=0.01)
    assert floor_error(np.abs(error)) == 0.0  # nothing below the air's level: nothing measured
    with pytest.raises(ValueError, match="floor_shrinkage"):
        unstabilise(1.0, 1.0, floor_shrinkage=-1.0)


@pytest.mark.parametrize("n_coils", [1, 4, 8])
def test_the_floor_shrinkage_spares_dark_tissue_and_still_flattens_the_air(n_coils):
    """Dark tissue a couple of sigma above the floor (cerebrospinal fluid in a T1 scan) is near the
    floor too: a shrinkage everywhere pulls it down by about ``t s / (2 k A**2)`` (5-12% at 2 sigma
    for 1-8 coils); the weights of its neighbourhood keep its inverse exact, and the air beside it
    is still flattened."""
    rng = np.random.default_rng(4)
    amplitude = np.zeros((6, 64, 64))
    amplitude[:, :, 32:] = 2.0  # air on the left, dark tissue on the right
    estimate = stabilised_mean(amplitude, 1.0, n_coils) + 0.1 * rng.standard_normal(amplitude.shape)
    spread = floor_error(estimate)
    tissue, air = (slice(None), slice(None), slice(36, None)), (slice(None), slice(None), slice(0, 28))
    everywhere = unstabilise(estimate, 1.0, n_coils, floor_shrinkage=1.5 * spread)
    weights = floor_weights(estimate, spread)
    gated = unstabilise(estimate, 1.0, n_coils, floor_shrinkage=1.5 * spread * weights)
    exact = unstabilise(estimate, 1.0, n_coils)
    assert np.mean(everywhere[tissue]) < 0.97 * np.mean(exact[tissue])  # the bias the weights remove
    assert np.mean(gated[tissue]) == pytest.approx(np.mean(exact[tissue]), rel=1e-12)
    assert np.mean(gated[tissue]) == pytest.approx(2.0, rel=0.02)
    np.testing.assert_array_equal(gated[air], everywhere[air])  # the air keeps its whole shrinkage
    assert np.mean(gated[air] > 0) < 0.1 < np.mean(exact[air] > 0)
    assert weights[air].min() == 1.0 and weights[tissue].max() == 0.0
    assert not floor_weights(estimate, 0.0).any()  # no error measured: nothing to shrink
    with pytest.raises(ValueError, match="2-D"):
        floor_weights(np.zeros(5), 0.1)


def test_transform_is_increasing_and_keeps_input_and_dtype():
    m = np.linspace(0.0, 100.0, 100_001)
    f = stabilise(m, 1.0, 4)
    assert np.all(np.diff(f) > 0)
    # in units of sigma: stabilise(M, s) = s * stabilise(M / s, 1)
    np.testing.assert_allclose(stabilise(m, 0.25, 4), 0.25 * stabilise(m / 0.25, 1.0, 4), rtol=1e-12, atol=1e-12)
    image = np.abs(np.random.default_rng(1).normal(size=(2, 5, 7))).astype(np.float32)
    before = image.copy()
    out = stabilise(image, np.array([0.5, 1.0])[:, None, None], 1)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(stabilise(image, 0.0), image)  # no noise: nothing to stabilise
    assert unstabilise(out, np.array([0.5, 1.0])[:, None, None], 1).dtype == np.float32
    assert np.isnan(unstabilise(np.nan, 1.0))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="n_coils"):
        stabilise(1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="sigma"):
        unstabilise(1.0, -1.0)
    with pytest.raises(ValueError, match="sigma"):
        stabilised_mean(1.0, np.nan)
