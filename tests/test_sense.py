"""SENSE simulation (``c2s_denoise.physics.sense``): the folding model, the unfolding and its exact noise map."""

from __future__ import annotations

import numpy as np
import pytest

from c2s_denoise.physics.sense import g_factor, normalise_coil_maps, sense_noise_map, sense_reconstruct, undersample
from c2s_denoise.physics.simulate import coil_maps, noise_covariance

SHAPE = (48, 48)
N_COILS = 8


def _maps(shape: tuple[int, int] = SHAPE, n_coils: int = N_COILS, seed: int = 0) -> np.ndarray:
    return normalise_coil_maps(coil_maps(n_coils, shape, seed=seed))


def _image(shape: tuple[int, int] = SHAPE, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random(shape) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))


def test_normalised_maps_have_unit_norm() -> None:
    maps = _maps()
    np.testing.assert_allclose(np.sum(np.abs(maps) ** 2, axis=0), 1.0, atol=1e-12)


@pytest.mark.parametrize("acceleration", [1, 2, 3, 4])
def test_folding_is_kspace_undersampling(acceleration: int) -> None:
    """R times the zero-filled image of every R-th k-space line is the folded model, R/H-periodic along axis 0."""
    maps, image = coil_maps(N_COILS, SHAPE, seed=2), _image()
    coil_images = maps * image
    mask = (np.arange(SHAPE[0]) % acceleration == 0)[:, None]
    kspace = np.fft.fft2(coil_images, norm="ortho")
    zero_filled = acceleration * np.fft.ifft2(mask * kspace, norm="ortho")
    reduced = SHAPE[0] // acceleration
    aliased = undersample(image, maps, acceleration, 0.0)
    assert aliased.shape == (N_COILS, reduced, SHAPE[1])
    for shift in range(acceleration):
        np.testing.assert_allclose(aliased, zero_filled[:, shift * reduced : (shift + 1) * reduced], atol=1e-12)


@pytest.mark.parametrize("acceleration", [1, 2, 3, 4])
@pytest.mark.parametrize("correlated", [False, True])
def test_noise_free_reconstruction_is_exact(acceleration: int, correlated: bool) -> None:
    maps, image = _maps(), _image()
    psi = noise_covariance(N_COILS, 0.05, seed=3) if correlated else None
    aliased = undersample(image, maps, acceleration, 0.0)
    np.testing.assert_allclose(sense_reconstruct(aliased, maps, acceleration, psi), image, atol=1e-9)
    stacked = sense_reconstruct(np.stack([aliased, 2 * aliased]), maps, acceleration, psi)
    np.testing.assert_allclose(stacked[1], 2 * image, atol=1e-9)


@pytest.mark.parametrize("acceleration", [1, 3])
def test_coil_noise_has_the_stated_covariance(acceleration: int) -> None:
    """E[n n^H] = 2 sigma^2 R Psi with Psi scaled to a mean diagonal of 1: sigma is the coils' mean level."""
    shape, sigma = (96, 96), 0.2
    psi = noise_covariance(N_COILS, 5.0, seed=6)  # any scale: only its shape counts
    noise = undersample(np.zeros(shape), _maps(shape), acceleration, sigma, seed=7, noise_covariance=psi)
    samples = noise.reshape(N_COILS, -1)
    measured = samples @ samples.conj().T / samples.shape[1]
    expected = 2 * sigma**2 * acceleration * psi / np.mean(np.real(np.diag(psi)))
    assert np.abs(measured - expected).max() < 0.1 * np.abs(expected).max()
    per_component = np.sqrt(np.mean(np.concatenate([samples.real, samples.imag]) ** 2))
    assert abs(per_component / (sigma * np.sqrt(acceleration)) - 1) < 0.02
    maps = _maps()
    np.testing.assert_allclose(sense_noise_map(maps, 2, sigma, psi), sense_noise_map(maps, 2, sigma, 3 * psi))


@pytest.mark.parametrize("correlated", [False, True])
def test_noise_map_matches_pseudo_replicas(correlated: bool) -> None:
    """300 noisy acquisitions at R = 3: the spread of each pixel matches the analytic map (and the g-factor)."""
    maps, image, acceleration, sigma = _maps(), _image(), 3, 0.1
    psi = noise_covariance(N_COILS, 1.0, seed=4) if correlated else None
    replicas = np.stack(
        [undersample(image, maps, acceleration, sigma, seed=k, noise_covariance=psi) for k in range(300)]
    )
    errors = sense_reconstruct(replicas, maps, acceleration, psi) - image
    expected = sense_noise_map(maps, acceleration, sigma, psi)
    for part in (errors.real, errors.imag):
        measured = np.sqrt(np.mean(part**2, axis=0))
        assert np.median(np.abs(measured / expected - 1)) < 0.05
    assert np.all(np.abs(np.mean(errors, axis=0)) < 6 * expected / np.sqrt(300))  # unbiased
    if not correlated:
        np.testing.assert_allclose(expected, sigma * np.sqrt(acceleration) * g_factor(maps, acceleration), rtol=1e-10)
    assert expected.max() > 2 * expected.min()  # the map is far from uniform, so a constant one would fail


@pytest.mark.parametrize("acceleration", [1, 2, 3, 4])
@pytest.mark.parametrize("correlated", [False, True])
def test_g_factor_is_at_least_one(acceleration: int, correlated: bool) -> None:
    maps = coil_maps(N_COILS, SHAPE, seed=5)  # not normalised: g does not depend on the maps' scale
    psi = noise_covariance(N_COILS, 0.3, seed=5) if correlated else None
    g = g_factor(maps, acceleration, psi)
    assert g.shape == SHAPE
    assert g.min() >= 1 - 1e-9
    if acceleration == 1:
        np.testing.assert_allclose(g, 1.0, atol=1e-9)
    else:
        assert g.max() > 1.01


def test_no_acceleration_gives_uniform_noise() -> None:
    """R = 1 with normalised maps and independent coils: SENSE is the matched filter, noise sigma everywhere."""
    noise = sense_noise_map(_maps(), 1, 0.07)
    np.testing.assert_allclose(noise, 0.07, rtol=1e-12)
    raw = sense_noise_map(coil_maps(N_COILS, SHAPE, seed=0), 1, 0.07)
    assert raw.max() > 1.3 * raw.min()  # without the normalisation it is not uniform


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: undersample(np.ones((50, 48)), _maps((50, 48)), 3, 0.1), "not divisible by the acceleration 3"),
        (lambda: sense_noise_map(_maps((50, 48)), 4, 0.1), "not divisible by the acceleration 4"),
        (lambda: g_factor(_maps((50, 48)), 3), "not divisible"),
        (lambda: undersample(np.ones((48, 40)), _maps(), 2, 0.1), "does not match the coil maps"),
        (lambda: undersample(np.ones(SHAPE), _maps(), 0, 0.1), "integer >= 1"),
        (lambda: undersample(np.ones(SHAPE), _maps(), 2, -1.0), "sigma must be"),
        (lambda: undersample(np.ones(SHAPE), _maps()[0], 2, 0.1), "shape (n_coils, H, W)"),
        (lambda: sense_reconstruct(np.ones((N_COILS, 16, 48)), _maps(), 2), "aliased images must have shape"),
        (lambda: sense_reconstruct(np.ones((4, 24, 48)), _maps(), 2), "aliased images must have shape"),
        (lambda: sense_reconstruct(np.ones((N_COILS, 24, 48)), _maps(), 2, np.eye(3)), "must have shape (8, 8)"),
        (lambda: sense_noise_map(_maps(), 2, 0.1, -np.eye(N_COILS)), "positive diagonal"),
        (lambda: sense_noise_map(_maps(), 2, 0.1, np.triu(np.ones((N_COILS, N_COILS)))), "Hermitian"),
        (lambda: sense_noise_map(_maps(), 2, 0.1, np.ones((N_COILS, N_COILS))), "positive definite"),
    ],
)
def test_bad_input_is_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
