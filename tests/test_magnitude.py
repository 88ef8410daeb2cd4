"""Magnitude bias of noncentral-chi noise: its mean, second moment and inverse."""

import numpy as np
import pytest
from scipy.special import gamma

from c2s_denoise.physics.magnitude import ncchi_mean, ncchi_second_moment, unbias_magnitude


def _rss_magnitude(amplitude, sigma, n_coils, n_samples, rng):
    """Monte Carlo RSS magnitudes: the signal split over the coils with random complex weights."""
    weights = rng.standard_normal(n_coils) + 1j * rng.standard_normal(n_coils)
    weights /= np.linalg.norm(weights)  # RSS of the noise-free coil images = amplitude
    noise = sigma * (rng.standard_normal((n_samples, n_coils)) + 1j * rng.standard_normal((n_samples, n_coils)))
    return np.sqrt(np.sum(np.abs(amplitude * weights + noise) ** 2, axis=1))


@pytest.mark.parametrize("n_coils", [1, 4, 8, 16])
def test_ncchi_moments_match_monte_carlo(n_coils):
    rng = np.random.default_rng(n_coils)
    sigma = 0.7
    for snr in (0.0, 0.5, 1.0, 2.0, 5.0, 20.0):
        samples = _rss_magnitude(snr * sigma, sigma, n_coils, 200_000, rng)
        assert ncchi_mean(snr * sigma, sigma, n_coils) == pytest.approx(samples.mean(), rel=0.01)
        assert ncchi_second_moment(snr * sigma, sigma, n_coils) == pytest.approx(np.mean(samples**2), rel=0.01)


@pytest.mark.parametrize("n_coils", [1, 2, 4, 16, 64])
def test_ncchi_mean_limits(n_coils):
    # air: the central chi mean sigma sqrt(2) Gamma(N + 1/2) / Gamma(N)
    assert ncchi_mean(0.0, 2.0, n_coils) == pytest.approx(2.0 * np.sqrt(2) * gamma(n_coils + 0.5) / gamma(n_coils))
    # far from the background: E[M]**2 = A**2 + (2N - 1) sigma**2 + (N - 1/2) sigma**4 / A**2 + ...
    for snr in (100.0, 1e3, 1e6, 1e30):
        expected = np.sqrt(snr**2 + 2 * n_coils - 1 + (n_coils - 0.5) / snr**2)
        assert ncchi_mean(snr, 1.0, n_coils) == pytest.approx(expected, rel=1e-8)
    assert ncchi_mean(np.inf, 1.0, n_coils) == np.inf
    # increasing in A (what the inversion relies on), with no jump where the asymptotic series takes over
    a = np.linspace(0, 3 * np.sqrt(4 * max(n_coils, 25)), 20_001)
    mean = ncchi_mean(a, 1.0, n_coils)
    assert np.all(np.isfinite(mean))
    assert np.all(np.diff(mean) > 0)
    assert np.max(np.abs(np.diff(mean, 2))) < 1e-5


def test_ncchi_mean_rician_closed_form():
    """N = 1: sigma sqrt(pi/2) exp(-x/2) ((1 + x) I0(x/2) + x I1(x/2)), x = A**2 / (2 sigma**2)."""
    from scipy.special import ive

    a = np.linspace(0, 40, 401)
    x = a**2 / 2
    rician = np.sqrt(np.pi / 2) * ((1 + x) * ive(0, x / 2) + x * ive(1, x / 2))
    np.testing.assert_allclose(ncchi_mean(a, 1.0), rician, rtol=1e-12)


def test_ncchi_mean_broadcasts_and_keeps_dtype():
    a = np.linspace(0, 5, 12, dtype=np.float32).reshape(3, 4)
    out = ncchi_mean(a, np.array([0.5, 1.0, 1.5, 2.0]), 4)
    assert out.shape == (3, 4) and out.dtype == np.float32
    assert ncchi_mean(np.array([1.0, -1.0]), 1.0)[1] == ncchi_mean(1.0, 1.0)  # depends on A**2 only
    np.testing.assert_array_equal(ncchi_mean(a, 0.0), a)  # no noise, no bias
    assert isinstance(ncchi_mean(1.0, 1.0), float)


@pytest.mark.parametrize("n_coils", [1, 4, 8, 16, 32])
def test_unbias_inverts_the_mean(n_coils):
    sigma = 3.0
    a = sigma * np.concatenate([np.linspace(0.5, 50, 5001), [100.0, 999.0, 1001.0, 1e4, 1e8]])
    recovered = unbias_magnitude(ncchi_mean(a, sigma, n_coils), sigma, n_coils)
    np.testing.assert_allclose(recovered, a, rtol=1e-3)
    assert np.max(np.abs(recovered / a - 1)) < 1e-4  # the table is far better than required


@pytest.mark.parametrize("n_coils", [1, 4])
def test_unbias_maps_the_background_to_zero(n_coils):
    background = ncchi_mean(0.0, 1.0, n_coils)
    values = np.array([-1.0, 0.0, 0.5 * background, background, background * (1 + 1e-9), np.nan])
    out = unbias_magnitude(values, 1.0, n_coils)
    np.testing.assert_array_equal(out[:4], 0.0)
    assert 0 < out[4] < 1e-3
    assert np.isnan(out[5])


def test_unbias_removes_the_bias_of_averaged_magnitudes():
    """The mean of many noisy magnitudes of a dark signal is biased by 50%; unbiased it is A again."""
    rng = np.random.default_rng(0)
    amplitude, sigma = 1.5, 1.0
    samples = _rss_magnitude(amplitude, sigma, 8, 400_000, rng)
    assert samples.mean() > 2.5 * amplitude
    assert unbias_magnitude(samples.mean(), sigma, 8) == pytest.approx(amplitude, rel=0.02)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unbias_keeps_shape_and_dtype_and_leaves_its_input_alone(dtype):
    rng = np.random.default_rng(1)
    image = (rng.random((2, 3, 16, 16)) * 40).astype(dtype)
    copy = image.copy()
    out = unbias_magnitude(image, 2.0, 4)
    assert out.shape == image.shape and out.dtype == dtype
    np.testing.assert_array_equal(image, copy)
    assert out is not image and not np.shares_memory(out, image)
    assert np.all(out <= image) and np.all(out >= 0)
    # a per-pixel noise map broadcasts, and sigma = 0 leaves the values as they are
    sigma_map = np.where(np.arange(16) < 8, 2.0, 0.0)
    mixed = unbias_magnitude(image, sigma_map, 4)
    np.testing.assert_array_equal(mixed[..., 8:], image[..., 8:])
    np.testing.assert_allclose(mixed[..., :8], out[..., :8], rtol=1e-6)
    assert unbias_magnitude(np.arange(5, dtype=np.int16), 1.0).dtype == np.float64


def test_bad_parameters_are_rejected():
    for call in (ncchi_mean, ncchi_second_moment, unbias_magnitude):
        with pytest.raises(ValueError, match="sigma"):
            call(1.0, -1.0)
        with pytest.raises(ValueError, match="sigma"):
            call(1.0, np.nan)
        with pytest.raises(ValueError, match="n_coils"):
            call(1.0, 1.0, 0)
