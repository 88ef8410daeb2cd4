"""Noise-level estimators (METHOD.md section 7)."""

import numpy as np
import pytest

from c2s_denoise.noise import estimate_sigma


def _disc(size=128, radius=40):
    yy, xx = np.mgrid[:size, :size]
    return ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < radius**2).astype(float)


@pytest.mark.parametrize("sigma", [0.02, 0.1])
def test_wavelet_mad_recovers_gaussian_noise_level(sigma):
    rng = np.random.default_rng(0)
    image = _disc() * 0.8 + 0.1 + sigma * rng.standard_normal((128, 128))
    assert estimate_sigma(image, "wavelet") == pytest.approx(sigma, rel=0.05)


def test_wavelet_mad_on_volume_pools_slices():
    rng = np.random.default_rng(1)
    volume = np.stack([_disc(64, 20)] * 6) + 0.05 * rng.standard_normal((6, 64, 64))
    assert estimate_sigma(volume) == pytest.approx(0.05, rel=0.05)


def test_rayleigh_background_recovers_rician_noise_level():
    rng = np.random.default_rng(2)
    sigma = 0.05
    clean = _disc(160, 45)
    magnitude = np.abs(clean + sigma * rng.standard_normal(clean.shape) + 1j * sigma * rng.standard_normal(clean.shape))
    assert estimate_sigma(magnitude, "rayleigh") == pytest.approx(sigma, rel=0.05)


def test_estimators_reject_bad_input():
    with pytest.raises(ValueError, match="unknown noise estimator"):
        estimate_sigma(np.ones((4, 4)), "median")
    with pytest.raises(ValueError, match="empty"):
        estimate_sigma(np.ones((0, 4)))
    with pytest.raises(ValueError, match="no"):
        estimate_sigma(np.zeros((8, 8)), "rayleigh")
