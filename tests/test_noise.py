"""Noise-level estimators (docs/method.md section 7) against simulated truth."""

import numpy as np
import pytest

from c2s_denoise.physics.noise import (
    NOISE_ESTIMATORS,
    choose_noise_estimator,
    estimate_sigma,
    estimate_sigma_background,
    estimate_sigma_foreground,
    estimate_sigma_rayleigh,
    estimate_sigma_wavelet,
)
from c2s_denoise.physics.noise.auto import _air_fraction
from c2s_denoise.physics.phantom import brain_phantom

MAGNITUDE_ESTIMATORS = ("background", "foreground")


def _disc(size=128, radius=40):
    yy, xx = np.mgrid[:size, :size]
    return ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < radius**2).astype(float)


def _magnitude(clean, sigma, n_coils, rng):
    """RSS magnitude over ``n_coils`` coils: noncentral chi(2 n_coils) scaled by ``sigma``.

    The law depends on the noise-free RSS ``clean`` only, so the signal sits in coil 1 and the
    other coils contribute ``sigma**2 chi2(2 (n_coils - 1))``.
    """
    power = (clean + sigma * rng.standard_normal(clean.shape)) ** 2 + (sigma * rng.standard_normal(clean.shape)) ** 2
    if n_coils > 1:
        power += sigma**2 * rng.chisquare(2 * (n_coils - 1), clean.shape)
    return np.sqrt(power)


def _ellipse_mask(shape, ry, rx):
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    cy, cx = (shape[-2] - 1) / 2, (shape[-1] - 1) / 2
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1


def _old_wavelet(image):
    """The estimator before masked blocks were ignored: median |HH| over all 2x2 blocks."""
    s = np.asarray(image, dtype=float)
    hh = (s[:, 0::2, 0::2] - s[:, 0::2, 1::2] - s[:, 1::2, 0::2] + s[:, 1::2, 1::2]) / 2
    return float(np.median(np.abs(hh)) / 0.6745)


@pytest.fixture(scope="module")
def head():
    """Brain-like phantom volume, values in [0, 1], 52% air (big enough for a 1.5% estimator spread)."""
    return brain_phantom((8, 192, 192))


@pytest.fixture(scope="module")
def smooth_masked():
    """Smooth anatomy inside an ellipse covering 38% of the slices, Gaussian noise, exactly 0 outside."""
    rng = np.random.default_rng(5)
    shape = (8, 128, 128)
    yy, xx = np.mgrid[:128, :128] / 128
    clean = 0.5 + 0.2 * np.cos(3 * xx + 2 * yy) + 0.1 * np.sin(5 * yy)
    mask = _ellipse_mask(shape, 50, 40)
    sigma = 0.02
    volume = np.where(mask, clean + sigma * rng.standard_normal(shape), 0.0)
    return volume, mask, sigma


# ----------------------------------------------------------------------------- wavelet
@pytest.mark.parametrize("sigma", [0.02, 0.1])
def test_wavelet_mad_recovers_gaussian_noise_level(sigma):
    rng = np.random.default_rng(0)
    image = _disc() * 0.8 + 0.1 + sigma * rng.standard_normal((128, 128))
    assert estimate_sigma(image, "wavelet") == pytest.approx(sigma, rel=0.05)


def test_wavelet_mad_on_volume_pools_slices():
    rng = np.random.default_rng(1)
    volume = np.stack([_disc(64, 20)] * 6) + 0.05 * rng.standard_normal((6, 64, 64))
    assert estimate_sigma(volume) == pytest.approx(0.05, rel=0.05)


def test_wavelet_on_complex_image_gives_the_per_component_sigma():
    rng = np.random.default_rng(2)
    sigma = 0.03
    clean = np.stack([_disc()] * 4) * np.exp(1j * np.linspace(0, 2, 128))
    noisy = clean + sigma * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))
    assert estimate_sigma_wavelet(noisy) == pytest.approx(sigma, rel=0.05)
    # the magnitude of the same image would read low in the air; the complex pooling does not
    assert estimate_sigma_wavelet(np.abs(noisy)) < 0.9 * sigma


def test_wavelet_ignores_background_masked_to_zero(smooth_masked):
    volume, mask, sigma = smooth_masked
    assert mask.mean() < 0.45  # most 2x2 blocks are exactly 0 ...
    assert _old_wavelet(volume) == 0.0  # ... which made the old estimator return 0
    assert estimate_sigma_wavelet(volume) == pytest.approx(sigma, rel=0.05)
    # a non-zero constant mask (e.g. -1 or the minimum of a shifted volume) too
    assert estimate_sigma_wavelet(np.where(mask, volume, -1.0)) == pytest.approx(sigma, rel=0.05)


def test_wavelet_on_masked_uint8_volume(smooth_masked):
    volume, mask, sigma = smooth_masked
    scale = 4.0 / sigma  # noise of 4 grey levels
    quantised = np.clip(np.round(volume * scale), 0, 255).astype(np.uint8)
    assert _old_wavelet(quantised) == 0.0
    estimate = estimate_sigma_wavelet(quantised)
    # quantisation adds its own noise of 1/sqrt(12) grey level: sqrt(16 + 1/12) = 4.01
    assert estimate > 0
    assert estimate == pytest.approx(4.0, rel=0.10)
    assert estimate == pytest.approx(4.0, rel=0.05)


@pytest.mark.parametrize("sigma", [3.5, 4.0])
def test_wavelet_median_is_interpolated_on_quantised_data(sigma):
    """|HH| of integer data lies on a 0.5 lattice: the plain median is 5.5% high (3.5) or 7.6% low (4)."""
    image = np.round(100 + sigma * np.random.default_rng(3).standard_normal((8, 128, 128))).astype(np.int16)
    truth = np.sqrt(sigma**2 + 1 / 12)  # quantisation noise included
    assert abs(_old_wavelet(image) / truth - 1) > 0.05
    assert estimate_sigma_wavelet(image) == pytest.approx(truth, rel=0.03)


def test_wavelet_thin_images_use_pairs():
    rng = np.random.default_rng(4)
    row = 0.5 + 0.1 * rng.standard_normal((1, 40000))
    assert estimate_sigma_wavelet(row) == pytest.approx(0.1, rel=0.05)
    assert estimate_sigma_wavelet(row.T) == pytest.approx(0.1, rel=0.05)


# ----------------------------------------------------------------------------- magnitude estimators
@pytest.mark.parametrize("n_coils", [1, 4, 8, 16])
@pytest.mark.parametrize("sigma", [0.02, 0.06])
def test_magnitude_estimators_on_head_with_air(head, n_coils, sigma):
    noisy = _magnitude(head, sigma, n_coils, np.random.default_rng(10 * n_coils))
    background = estimate_sigma(noisy, "background", n_coils=n_coils)
    foreground = estimate_sigma(noisy, "foreground", n_coils=n_coils)
    assert background == pytest.approx(sigma, rel=0.05)
    assert foreground == pytest.approx(sigma, rel=0.05)
    if n_coils == 1:
        assert estimate_sigma_rayleigh(noisy) == background
        assert estimate_sigma(noisy, "rayleigh") == background


def test_background_refinement_drops_dark_tissue_next_to_bright_tissue(head):
    """SNR 10, one coil: the skull (A = 1 sigma) passes the cut-off and biases the plain fixed point."""
    sigma = 0.08
    noisy = _magnitude(head, sigma, 1, np.random.default_rng(12))
    assert estimate_sigma_background(noisy, neighbourhood=1) > 1.025 * sigma
    assert estimate_sigma_background(noisy) == pytest.approx(sigma, rel=0.01)


@pytest.mark.parametrize("n_coils", [1, 4, 16])
def test_background_on_pure_chi_noise(n_coils):
    rng = np.random.default_rng(n_coils)
    noise = _magnitude(np.zeros((128, 128)), 2.5, n_coils, rng)
    assert estimate_sigma_background(noise, n_coils) == pytest.approx(2.5, rel=0.03)
    # a wrong coil count is far off (or finds no background): the estimator really models chi(2N)
    for wrong in {1, 4, 16} - {n_coils}:
        try:
            assert abs(estimate_sigma_background(noise, wrong) / 2.5 - 1) > 0.3
        except ValueError as error:
            assert "too few background pixels" in str(error)


def test_background_ignores_zeros_and_a_constant_mask(head):
    noisy = _magnitude(head, 0.04, 1, np.random.default_rng(7))
    reference = estimate_sigma_background(noisy)
    zeros = noisy.copy()
    zeros[:, :, :20] = 0.0  # zero filling
    assert estimate_sigma_background(zeros) == pytest.approx(0.04, rel=0.05)
    plateau = noisy.copy()
    plateau[:, :, :20] = 1e-6  # masked to a small constant at the minimum (10% of the pixels)
    assert plateau.min() == 1e-6
    assert estimate_sigma_background(plateau) == pytest.approx(reference, rel=0.03)
    # the same constant on fewer than 5% of the pixels is data, and drags the estimate down
    few = noisy.copy()
    few[:, :, :4] = 1e-6
    assert estimate_sigma_background(few) < 0.98 * estimate_sigma_background(np.where(few == 1e-6, 0.0, few))


@pytest.mark.parametrize("n_coils", [1, 4, 16])
def test_foreground_on_masked_head_without_air(head, n_coils):
    sigma = 0.04
    mask = _ellipse_mask(head.shape, 60, 45)  # inside the skull: no air left
    noisy = np.where(mask, _magnitude(head, sigma, n_coils, np.random.default_rng(n_coils)), 0.0)
    assert estimate_sigma_foreground(noisy, n_coils) == pytest.approx(sigma, rel=0.05)
    assert choose_noise_estimator(noisy, "ncchi", n_coils=n_coils) == "foreground"
    # without air the background estimator measures dark tissue: why the choice matters
    assert estimate_sigma_background(noisy, n_coils) > 1.3 * sigma
    # quantised to uint8 with sigma of 4 grey levels
    quantised = np.clip(np.round(noisy * (4.0 / sigma)), 0, 255).astype(np.uint8)
    estimate = estimate_sigma_foreground(quantised, n_coils)
    assert estimate > 0
    assert estimate == pytest.approx(4.0, rel=0.05)


def test_foreground_corrects_the_non_gaussian_noise_of_many_coils():
    """At A = 6 sigma a 16-coil magnitude has noise std 0.87 sigma; the estimate must not be 13% low."""
    rng = np.random.default_rng(8)
    noisy = _magnitude(np.full((8, 96, 96), 6.0), 1.0, 16, rng)
    assert np.std(noisy) < 0.9
    assert estimate_sigma_foreground(noisy, 16) == pytest.approx(1.0, rel=0.05)


# ----------------------------------------------------------------------------- choosing
@pytest.mark.parametrize("n_coils", [1, 4, 8, 16])
@pytest.mark.parametrize("sigma", [0.02, 0.06])
def test_choose_background_with_air_and_foreground_without(head, n_coils, sigma):
    noisy = _magnitude(head, sigma, n_coils, np.random.default_rng(n_coils))
    model = "rician" if n_coils == 1 else "ncchi"
    assert choose_noise_estimator(noisy, model, n_coils=n_coils) == "background"
    interior = noisy[:, 36:156, 60:132]  # cropped inside the head
    assert choose_noise_estimator(interior, model, n_coils=n_coils) == "foreground"
    assert choose_noise_estimator(noisy, "gaussian") == "wavelet"


@pytest.mark.parametrize("n_coils", [1, 8, 16])
def test_choose_at_low_snr(head, n_coils):
    """SNR 7: dark tissue passes for air in a crop without air (about 10-20% for 8-16 coils), and
    there the background estimate is 17-80% high; the consistency check keeps the foreground."""
    sigma = 0.12
    noisy = _magnitude(head, sigma, n_coils, np.random.default_rng(9))
    interior = noisy[:, 36:156, 60:132]
    assert choose_noise_estimator(interior, "ncchi", n_coils=n_coils) == "foreground"
    if n_coils > 1:
        assert estimate_sigma_background(interior, n_coils) > 1.12 * sigma
    narrow = noisy[:, :, 30:162]  # some air left and right of the head
    assert choose_noise_estimator(narrow, "ncchi", n_coils=n_coils) == "background"


@pytest.mark.parametrize("n_coils", [1, 4])
def test_choose_background_at_snr_4(head, n_coils):
    """Brightest tissue about 4.5 sigma: the foreground estimate rests on few blocks and can read
    20% low; with air the choice stays with the background estimator, which stays accurate."""
    sigma = 0.2
    noisy = _magnitude(head, sigma, n_coils, np.random.default_rng(13))
    assert choose_noise_estimator(noisy, "ncchi", n_coils=n_coils) == "background"
    assert estimate_sigma_background(noisy, n_coils) == pytest.approx(sigma, rel=0.05)


@pytest.mark.parametrize("n_coils", [1, 8])
def test_choose_background_when_mostly_air_and_the_foreground_reads_low(head, n_coils, monkeypatch):
    """A small object in much air (a slice at the top of a head): its foreground estimate can read
    10-12% low (one MNI152 slice at 8 coils: 0.888 sigma, against 1.001 from the air). With half
    the image air, the background estimate is kept up to 1.2 times the foreground one; with little
    air (a crop at low SNR, 10-20% of dark tissue passing for air) the bound stays 1.1."""
    from c2s_denoise.physics.noise import auto

    sigma = 0.06
    noisy = _magnitude(head[:1], sigma, n_coils, np.random.default_rng(3))
    assert _air_fraction(noisy, sigma, n_coils) > 0.4
    monkeypatch.setattr(auto, "_foreground", lambda image, n: (0.88 * sigma, 0.5))
    assert choose_noise_estimator(noisy, "ncchi", n_coils=n_coils) == "background"
    monkeypatch.setattr(auto, "_foreground", lambda image, n: (0.80 * sigma, 0.5))
    assert choose_noise_estimator(noisy, "ncchi", n_coils=n_coils) == "foreground"  # beyond 1.2: not air


def test_air_fraction_tracks_the_air(head):
    noisy = _magnitude(head, 0.02, 4, np.random.default_rng(9))
    for width in (192, 150, 96):  # crops from the whole slice to inside the head
        start = (192 - width) // 2
        crop = noisy[:, :, start : start + width]
        truth = float(np.mean(head[:, :, start : start + width] == 0))
        assert _air_fraction(crop, 0.02, 4) == pytest.approx(truth, abs=0.03)
    assert _air_fraction(noisy[:, 36:156, 60:132], 0.02, 4) < 0.01


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("method", NOISE_ESTIMATORS)
@pytest.mark.parametrize(
    "image, message",
    [
        (np.ones((0, 4)), "empty"),
        (np.zeros((32, 32)), "pass sigma"),
        (np.full((32, 32), 7.0), "pass sigma"),
        (np.full((3, 1, 1), 7.0), "pass sigma"),
    ],
)
def test_estimators_reject_empty_zero_and_constant_input(method, image, message):
    with pytest.raises(ValueError, match=message):
        estimate_sigma(image, method)


@pytest.mark.parametrize("model", ["rician", "ncchi"])
def test_choose_rejects_empty_zero_and_constant_input(model):
    for image in (np.ones((0, 4)), np.zeros((32, 32)), np.full((32, 32), 7.0)):
        with pytest.raises(ValueError):
            choose_noise_estimator(image, model)


def test_estimators_reject_bad_input():
    with pytest.raises(ValueError, match="unknown noise estimator"):
        estimate_sigma(np.ones((4, 4)), "median")
    with pytest.raises(ValueError, match="empty"):
        estimate_sigma(np.ones((0, 4)))
    with pytest.raises(ValueError, match="no"):
        estimate_sigma(np.zeros((8, 8)), "rayleigh")
    with pytest.raises(ValueError, match="unknown noise model"):
        choose_noise_estimator(np.ones((8, 8)), "poisson")
    with pytest.raises(ValueError, match="single-coil"):
        estimate_sigma(np.ones((8, 8)), "rayleigh", n_coils=4)
    with pytest.raises(ValueError, match="n_coils"):
        estimate_sigma_background(np.ones((8, 8)), 0)
    with pytest.raises(ValueError, match="too few bright"):
        estimate_sigma_foreground(np.random.default_rng(0).random((8, 8)))


def test_estimators_do_not_modify_their_input(head):
    noisy = _magnitude(head, 0.04, 4, np.random.default_rng(11)).astype(np.float32)
    copy = noisy.copy()
    for method in NOISE_ESTIMATORS:
        estimate_sigma(noisy, method, n_coils=1 if method in ("wavelet", "rayleigh") else 4)
    choose_noise_estimator(noisy, "ncchi", n_coils=4)
    np.testing.assert_array_equal(noisy, copy)


def test_resolve_noise_model_auto_rule_and_complex_refusal():
    """One rule for "auto", shared by the estimator and estimate-noise: signed or complex data is Gaussian."""
    from c2s_denoise.physics.noise import resolve_noise_model

    magnitude = np.abs(np.random.default_rng(0).normal(size=(8, 8)))
    assert resolve_noise_model([magnitude]) == "rician"
    assert resolve_noise_model([magnitude], n_coils=8) == "ncchi"
    assert resolve_noise_model([magnitude, magnitude - 0.5]) == "gaussian"
    assert resolve_noise_model([magnitude + 0j]) == "gaussian"
    assert resolve_noise_model([magnitude], "gaussian") == "gaussian"
    with pytest.raises(ValueError, match="complex images is Gaussian"):
        resolve_noise_model([magnitude + 1j], "rician")
