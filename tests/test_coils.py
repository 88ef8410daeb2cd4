"""Coil noise covariance, prewhitening and coil combination (docs/method.md section 10).

Every check compares with the ground truth of :func:`c2s_denoise.physics.simulate.simulate_multicoil`
(true noise covariance, coil maps and noise-free coil images), so a wrong factor of 2, a
missing conjugate or a biased estimate fails here. Images are small (96x96 objects, read out
over a 192x96 field of view); the whole file runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from c2s_denoise.io.kspace import centered_ifft2
from c2s_denoise.physics.coil_combination import combine_coils, normalized_sensitivities
from c2s_denoise.physics.coil_noise import diagonal_haar, estimate_noise_covariance, whitening_matrix
from c2s_denoise.physics.phantom import brain_phantom
from c2s_denoise.physics.simulate import noise_covariance, simulate_multicoil

SIZE = 96  # object field of view; the readout is oversampled to 2 * SIZE


@pytest.fixture(scope="module")
def phantom() -> np.ndarray:
    return brain_phantom((4, SIZE, SIZE), seed=0)


def coil_images(scan) -> np.ndarray:
    return centered_ifft2(scan.kspace.astype(np.complex128))


def whiten(matrix: np.ndarray, images: np.ndarray) -> np.ndarray:
    return np.einsum("ij,...jhw->...ihw", matrix, images)


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))


def variance_errors(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.abs(np.real(np.diag(estimate)) / np.real(np.diag(truth)) - 1)


def full_fov(image: np.ndarray) -> np.ndarray:
    """A cropped ``(S, SIZE, SIZE)`` image placed in the oversampled ``(S, 2 SIZE, SIZE)`` field of view."""
    out = np.zeros((image.shape[0], 2 * SIZE, SIZE), dtype=image.dtype)
    out[:, SIZE // 2 : SIZE // 2 + SIZE] = image
    return out


def crop(image: np.ndarray) -> np.ndarray:
    return image[..., SIZE // 2 : SIZE // 2 + SIZE, :]


def psnr_in(mask: np.ndarray, estimate: np.ndarray, reference: np.ndarray) -> float:
    data_range = float(reference.max() - reference.min())
    return float(10 * np.log10(data_range**2 / np.mean((estimate - reference)[mask] ** 2)))


# ----------------------------------------------------------------------------- covariance estimate
# Repeats of the 4-slice phantom per coil count: about 65k Haar blocks for 4-16 coils. One coil
# needs 6x more: with one coil the iteratively trimmed estimate is far less efficient (its error
# is about 10x that of the plain sample variance).
REPEATS = {1: 12, 4: 2, 8: 2, 16: 2}


@pytest.mark.parametrize("n_coils", [1, 4, 8, 16])
def test_covariance_matches_the_simulated_truth(phantom: np.ndarray, n_coils: int) -> None:
    clean = np.tile(phantom, (REPEATS[n_coils], 1, 1))
    scan = simulate_multicoil(clean, n_coils=n_coils, sigma=0.03, correlation=0.3, seed=3)
    truth = scan.noise_covariance
    estimate = estimate_noise_covariance(coil_images(scan))
    assert estimate.shape == (n_coils, n_coils)
    assert estimate.dtype == np.complex128
    np.testing.assert_allclose(estimate, estimate.conj().T, atol=1e-15 * np.abs(estimate).max())
    assert np.linalg.eigvalsh(estimate).min() > 0
    assert relative_error(estimate, truth) < 0.05
    assert variance_errors(estimate, truth).max() < 0.05
    if n_coils > 1:  # the off-diagonal (correlation) terms are part of what is checked
        assert np.max(np.abs(truth - np.diag(np.diag(truth)))) > 0.1 * np.real(truth[0, 0])


def test_covariance_is_insensitive_to_the_signal_level(phantom: np.ndarray) -> None:
    """Ten times more signal (SNR 10x higher) must not change the noise estimate (no signal leakage)."""
    estimates = []
    for scale in (1.0, 10.0):
        scan = simulate_multicoil(scale * np.tile(phantom, (2, 1, 1)), n_coils=8, sigma=0.03, seed=5)
        estimates.append(estimate_noise_covariance(coil_images(scan)))
    truth = scan.noise_covariance
    assert relative_error(estimates[1], truth) < 0.05
    assert relative_error(estimates[1], estimates[0]) < 0.03


def test_haar_coefficients_are_orthonormal_and_cancel_smooth_signal() -> None:
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal((3, 2, 64, 64)) + 1j * rng.standard_normal((3, 2, 64, 64))) / np.sqrt(2)
    d = diagonal_haar(noise)
    assert d.shape == (2, 3 * 32 * 32)
    assert np.mean(np.abs(d) ** 2) == pytest.approx(1.0, rel=0.03)  # unit variance kept: orthonormal
    yy, xx = np.mgrid[:64, :65]
    plane = (1 + 0.3 * yy - 0.2 * xx + 2j)[None, None] * np.ones((1, 2, 1, 1))
    assert np.abs(diagonal_haar(plane)).max() < 1e-12  # linear ramps cancel; the odd column is dropped


# ----------------------------------------------------------------------------- noise scan
def test_noise_scan_gives_the_sample_covariance() -> None:
    n_coils, n_samples = 6, 4000
    truth = noise_covariance(n_coils, 0.5, correlation=0.4, seed=2)
    rng = np.random.default_rng(1)
    white = (rng.standard_normal((n_coils, n_samples)) + 1j * rng.standard_normal((n_coils, n_samples))) / np.sqrt(2)
    samples = np.linalg.cholesky(truth) @ white
    samples[:, :20] *= 30  # a few spikes: a noise scan is used as it is, not trimmed
    sample_covariance = samples @ samples.conj().T / n_samples
    estimate = estimate_noise_covariance(noise_samples=samples.astype(np.complex64))
    np.testing.assert_allclose(estimate, sample_covariance, rtol=1e-5, atol=1e-6 * np.abs(truth).max())
    clean = samples.copy()
    clean[:, :20] /= 30
    assert relative_error(estimate_noise_covariance(noise_samples=clean), truth) < 0.05


# ----------------------------------------------------------------------------- whitening
@pytest.mark.parametrize("n_coils", [1, 4, 16])
def test_whitening_matrix_gives_twice_identity(n_coils: int) -> None:
    psi = noise_covariance(n_coils, 0.07, correlation=0.45, seed=n_coils)
    w = whitening_matrix(psi)
    np.testing.assert_allclose(w @ psi @ w.conj().T, 2 * np.eye(n_coils), atol=1e-10)
    np.testing.assert_allclose(np.triu(w, 1), 0, atol=1e-12)  # lower triangular
    assert np.all(np.abs(np.diag(w)) > 0)


def test_whitened_noise_has_unit_std_per_real_component() -> None:
    n_coils = 8
    scan = simulate_multicoil(np.zeros((4, 128, 128)), n_coils=n_coils, sigma=0.04, correlation=0.4, seed=7)
    noise = coil_images(scan)  # pure noise
    for psi, tolerance in ((scan.noise_covariance, 0.02), (estimate_noise_covariance(noise), 0.05)):
        whitened = whiten(whitening_matrix(psi), noise)
        samples = np.moveaxis(whitened, 1, 0).reshape(n_coils, -1)
        empirical = samples @ samples.conj().T / samples.shape[1]
        assert relative_error(empirical, 2 * np.eye(n_coils)) < tolerance
        assert np.std(samples.real, axis=1) == pytest.approx(np.ones(n_coils), rel=tolerance)
        assert np.std(samples.imag, axis=1) == pytest.approx(np.ones(n_coils), rel=tolerance)
    # the raw coil noise was not white: the whitening did something
    raw = np.moveaxis(noise, 1, 0).reshape(n_coils, -1)
    raw_cov = raw @ raw.conj().T / raw.shape[1]
    assert np.abs(raw_cov / np.sqrt(np.outer(np.diag(raw_cov), np.diag(raw_cov))) - np.eye(n_coils)).max() > 0.2


# ----------------------------------------------------------------------------- combined image noise
def assert_unit_noise(noise: np.ndarray, mask: np.ndarray, where: str) -> None:
    values = noise[mask]
    assert values.size > 2000, where
    for part, name in ((values.real, "real"), (values.imag, "imag")):
        assert np.std(part) == pytest.approx(1.0, rel=0.05), f"{name} std in {where}: {np.std(part):.3f}"


@pytest.mark.parametrize("n_coils", [4, 8])
def test_pure_noise_combines_to_unit_noise_with_true_maps(n_coils: int) -> None:
    scan = simulate_multicoil(np.zeros((4, SIZE, SIZE)), n_coils=n_coils, sigma=0.05, seed=11)
    combined = combine_coils(coil_images(scan), noise_covariance=scan.noise_covariance, sensitivities=scan.coil_maps)
    assert combined.image.dtype == np.complex64 and combined.image.shape == (4, 2 * SIZE, SIZE)
    assert combined.noise_sigma == 1.0
    # unit noise wherever the coils are, near them or far from them (the RSS image's noise varies)
    coverage = np.sqrt(np.sum(np.abs(scan.coil_maps) ** 2, axis=0))
    near = np.broadcast_to(coverage > np.median(coverage), combined.image.shape)
    assert_unit_noise(combined.image, near, "well covered pixels")
    assert_unit_noise(combined.image, ~near, "poorly covered pixels")


@pytest.mark.parametrize("n_coils", [4, 8])
def test_noise_of_the_combined_phantom_is_unit_in_tissue_and_air(phantom: np.ndarray, n_coils: int) -> None:
    scan = simulate_multicoil(np.tile(phantom, (2, 1, 1)), n_coils=n_coils, sigma=0.05, seed=12)
    coils = coil_images(scan)
    noisy = combine_coils(coils)  # estimated covariance and sensitivities
    psi = noisy.noise_covariance
    assert relative_error(psi, scan.noise_covariance) < 0.05
    # the sensitivities the noisy combination used, back in the coils' units, for both combinations
    w = whitening_matrix(psi)
    unwhiten = np.linalg.inv(w)
    maps = np.stack([whiten(unwhiten, normalized_sensitivities(whiten(w, c))) for c in coils])
    again = combine_coils(coils, noise_covariance=psi, sensitivities=maps)
    np.testing.assert_allclose(again.image, noisy.image, atol=1e-4)
    clean = combine_coils(scan.clean_coil_images, noise_covariance=psi, sensitivities=maps)
    noise = noisy.image - clean.image
    reference = full_fov(scan.clean_rss)
    tissue = reference > 0.1 * reference.max()
    air = np.zeros_like(tissue)
    air[:, : SIZE // 3] = air[:, -SIZE // 3 :] = True  # the readout margins hold no object
    assert_unit_noise(noise, tissue, "tissue")
    assert_unit_noise(noise, air, "air")


def test_noise_in_air_is_zero_mean(phantom: np.ndarray) -> None:
    """Sensitivities and phase taken from noise-dominated low-resolution images would align with the noise and
    leave a positive floor in air (0.6-0.8 in SNR units before the smooth fallback); air must stay zero-mean."""
    scan = simulate_multicoil(phantom[:2], n_coils=8, sigma=0.05, seed=0)
    image = combine_coils(coil_images(scan)).image
    air = np.concatenate([image[:, : SIZE // 4], image[:, -SIZE // 4 :]], axis=1)
    assert abs(float(np.mean(air.real))) < 0.05
    assert float(np.mean(np.abs(air))) == pytest.approx(np.sqrt(np.pi / 2), rel=0.02)  # Rayleigh, unit sigma


# ----------------------------------------------------------------------------- RSS scale
def test_rss_gain_restores_the_rss_of_noise_free_coils(phantom: np.ndarray) -> None:
    scan = simulate_multicoil(phantom, n_coils=8, sigma=0.05, seed=13)
    combined = combine_coils(
        scan.clean_coil_images, noise_covariance=scan.noise_covariance, sensitivities=scan.coil_maps
    )
    assert combined.rss_gain.dtype == np.float32 and combined.rss_gain.shape == combined.image.shape
    on_rss_scale = np.abs(combined.image.astype(np.complex128)) * combined.rss_gain
    rss = np.sqrt(np.sum(np.abs(scan.clean_coil_images) ** 2, axis=1))
    np.testing.assert_allclose(on_rss_scale, rss, rtol=1e-4, atol=1e-4 * rss.max())
    np.testing.assert_allclose(crop(on_rss_scale), scan.clean_rss, rtol=1e-4, atol=1e-4 * rss.max())
    # the combined image itself is in SNR units, not on the RSS scale
    assert np.abs(combined.image).max() > 5 * rss.max()


def test_combined_magnitude_beats_the_noisy_rss(phantom: np.ndarray) -> None:
    scan = simulate_multicoil(phantom, n_coils=8, sigma=0.08, seed=14)  # low SNR
    coils = coil_images(scan)
    combined = combine_coils(coils)
    estimate = crop(np.abs(combined.image) * combined.rss_gain)
    noisy_rss = crop(np.sqrt(np.sum(np.abs(coils) ** 2, axis=1)))
    reference = scan.clean_rss
    obj = reference > 0.05 * reference.max()
    gained = psnr_in(obj, estimate, reference) - psnr_in(obj, noisy_rss, reference)
    assert gained > 2.0, gained
    # and the combined magnitude is on the RSS scale: no global gain error
    assert np.median(estimate[obj] / reference[obj]) == pytest.approx(1.0, abs=0.05)


# ----------------------------------------------------------------------------- errors
def test_real_input_is_refused() -> None:
    real = np.ones((2, 4, 32, 32))
    with pytest.raises(ValueError, match="complex"):
        estimate_noise_covariance(real)
    with pytest.raises(ValueError, match="complex"):
        estimate_noise_covariance(noise_samples=np.ones((4, 1000)))
    with pytest.raises(ValueError, match="coil images must be complex"):
        combine_coils(real, noise_covariance=np.eye(4))


def test_too_few_samples() -> None:
    rng = np.random.default_rng(0)
    tiny = rng.standard_normal((1, 4, 4, 4)) + 1j * rng.standard_normal((1, 4, 4, 4))
    with pytest.raises(ValueError, match=r"too few signal-free samples .*4 coil\(s\): 4 \(need at least 200\)"):
        estimate_noise_covariance(tiny)
    with pytest.raises(ValueError, match="too few"):
        combine_coils(tiny)
    with pytest.raises(ValueError, match="too few"):
        estimate_noise_covariance(noise_samples=tiny.reshape(4, -1))


def test_wrong_covariance_and_sensitivity_shapes() -> None:
    scan = simulate_multicoil(np.zeros((1, 32, 32)), n_coils=4, sigma=0.05, seed=0)
    coils = coil_images(scan)
    with pytest.raises(ValueError, match=r"noise covariance has shape \(3, 3\) for 4 coil"):
        combine_coils(coils, noise_covariance=np.eye(3))
    with pytest.raises(ValueError, match="sensitivities have shape"):
        combine_coils(coils, noise_covariance=scan.noise_covariance, sensitivities=scan.coil_maps[:3])
    with pytest.raises(ValueError, match="slices, coils, H, W"):
        combine_coils(coils[0, 0], noise_covariance=np.eye(1))


def test_a_coil_that_is_all_zero() -> None:
    scan = simulate_multicoil(np.zeros((2, 32, 32)), n_coils=4, sigma=0.05, seed=0)
    coils = coil_images(scan)
    coils[:, 2] = 0
    with pytest.raises(ValueError, match="coil 2 has no noise"):
        estimate_noise_covariance(coils)
    with pytest.raises(ValueError, match="coil 2 has no noise"):
        combine_coils(coils)
    duplicated = coil_images(scan)
    duplicated[:, 1] = duplicated[:, 0]
    with pytest.raises(ValueError, match="(?i)singular"):
        estimate_noise_covariance(duplicated)
