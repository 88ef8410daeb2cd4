"""The estimator's magnitude path: the variance-stabilised network domain, its inverse, and older models."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from c2s_denoise import C2SDenoiser
from c2s_denoise.estimator._magnitude_path import air_factor, from_network, to_network
from c2s_denoise.estimator.model_file import save_model_file
from c2s_denoise.physics.magnitude import unbias_magnitude
from c2s_denoise.physics.phantom import brain_phantom
from c2s_denoise.physics.simulate import magnitude_noise
from c2s_denoise.physics.variance_stabilisation import floor_error, stabilise, stabilised_mean, unstabilise

SIGMA = 0.06
TINY = dict(max_iter=8, width=8, patch_size=24, batch_size=4, random_state=0, context_slices=0)


@pytest.fixture(scope="module")
def rician_slices() -> tuple[np.ndarray, np.ndarray]:
    """Clean phantom slices (air exactly 0) and their one-coil magnitude (Rician) images."""
    clean = np.stack([brain_phantom((64, 64), seed=seed) for seed in range(4)])
    return clean, magnitude_noise(clean, SIGMA, n_coils=1, seed=1)


def test_to_and_from_the_network_domain():
    rng = np.random.default_rng(0)
    items = [np.abs(rng.normal(size=(2, 3, 8, 8))) for _ in range(2)]
    sigmas = np.array([[0.5, 1.0], [0.25, 2.0]])
    assert to_network(items, sigmas, "gaussian", 1, "vst") is items  # Gaussian noise passes through
    assert to_network(items, sigmas, "rician", 1, "mean") is items  # the first-moment path trains on M
    stabilised = to_network(items, sigmas, "ncchi", 4, "vst")
    for item, sigma, out in zip(items, sigmas, stabilised):
        for c in range(2):
            np.testing.assert_array_equal(out[c], stabilise(item[c], sigma[c], 4))
    # "rician" is one coil whatever n_coils says
    np.testing.assert_array_equal(to_network(items, sigmas, "rician", 8, "vst")[0][0], stabilise(items[0][0], 0.5, 1))
    values = np.linspace(-1.0, 6.0, 50)
    np.testing.assert_array_equal(from_network(values, 1.0, "gaussian", 1, "vst"), values)
    np.testing.assert_array_equal(from_network(values, 1.0, "ncchi", 4, "mean"), unbias_magnitude(values, 1.0, 4))
    np.testing.assert_array_equal(from_network(values, 1.0, "ncchi", 4, "vst"), unstabilise(values, 1.0, 4))
    assert air_factor("gaussian", 4, "vst") == 1.0
    assert air_factor("ncchi", 4, "mean") == pytest.approx(np.sqrt(8))
    assert air_factor("rician", 4, "vst") == pytest.approx(np.hypot(float(stabilised_mean(0.0, 1.0, 1)), 1.0))


def test_stabilised_fit_flattens_the_air_against_clean_references(rician_slices):
    """A short fit on Rician phantoms: the air (true signal 0) comes out near 0 and flat, the image is closer
    to the clean one than the noisy input, and the stabilised path beats the first-moment one over the image."""
    clean, noisy = rician_slices
    air = clean == 0
    params = dict(max_iter=300, width=8, patch_size=32, batch_size=8, random_state=0, context_slices=0)
    outputs = {}
    for correction in ("vst", "mean"):
        model = C2SDenoiser(sigma=SIGMA, magnitude_correction=correction, **params).fit(noisy)
        assert model.noise_model_ == "rician" and model.magnitude_correction_ == correction
        outputs[correction] = model.transform(noisy)
    vst = outputs["vst"]
    assert vst[air].mean() < 0.15 * noisy[air].mean()
    assert vst[air].std() < 0.5 * noisy[air].std()
    assert np.percentile(vst[air], 99) < noisy[air].mean()  # no speckle
    mse = {name: np.mean((out - clean) ** 2) for name, out in outputs.items()}
    assert mse["vst"] < 0.3 * np.mean((noisy - clean) ** 2)
    assert mse["vst"] < mse["mean"]


def test_the_output_floor_is_shrunk_in_air_and_not_over_dark_tissue():
    """``from_network`` measures the output's own error and shrinks the floor where the neighbourhood is air."""
    rng = np.random.default_rng(1)
    amplitude = np.zeros((3, 48, 48))
    amplitude[:, 24:] = 2.0 * SIGMA  # dark tissue (2 sigma) below the air
    denoised = SIGMA * (stabilised_mean(amplitude / SIGMA, 1.0, 4) + 0.1 * rng.standard_normal(amplitude.shape))
    out = from_network(denoised, SIGMA, "ncchi", 4, "vst", floor_shrinkage=1.5)
    exact = unstabilise(denoised, SIGMA, 4)
    everywhere = unstabilise(denoised, SIGMA, 4, floor_shrinkage=1.5 * floor_error(denoised) / SIGMA)
    np.testing.assert_allclose(out[:, 28:], exact[:, 28:])  # dark tissue: the exact, unbiased inverse
    np.testing.assert_allclose(out[:, :20], everywhere[:, :20])  # air: the whole shrinkage
    assert np.mean(out[:, :20] > 0) < 0.5 * np.mean(exact[:, :20] > 0)


def test_floor_shrinkage_acts_at_transform_and_zero_is_the_exact_inverse(rician_slices, monkeypatch):
    _, noisy = rician_slices
    model = C2SDenoiser(sigma=SIGMA, **TINY).fit(noisy)
    shrunk = model.transform(noisy)
    exact = model.set_params(floor_shrinkage=0.0).transform(noisy)
    assert np.all(shrunk <= exact + 1e-12)  # the soft threshold only lowers the A**2 estimate
    assert np.count_nonzero(shrunk == 0) > np.count_nonzero(exact == 0)
    captured = []
    original = unstabilise

    def spy(values, sigma, n_coils=1, *, floor_shrinkage=0.0):
        captured.append(floor_shrinkage)
        return original(values, sigma, n_coils, floor_shrinkage=floor_shrinkage)

    monkeypatch.setattr("c2s_denoise.physics.variance_stabilisation.unstabilise", spy)
    model.transform(noisy)
    assert captured == [0.0] * len(noisy)


def test_models_saved_before_the_stabilised_path_keep_the_first_moment_inversion(rician_slices, tmp_path):
    _, noisy = rician_slices
    model = C2SDenoiser(sigma=SIGMA, magnitude_correction="mean", **TINY).fit(noisy)
    expected = model.transform(noisy)
    state = model.__getstate__()
    for key in ("magnitude_correction", "floor_shrinkage", "magnitude_correction_"):
        state.pop(key)
    old = C2SDenoiser.__new__(C2SDenoiser)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.magnitude_correction == old.magnitude_correction_ == "mean"
    np.testing.assert_array_equal(old.transform(noisy), expected)
    # a model file without the fitted attribute: the same
    path = save_model_file(model, tmp_path / "old.c2s")
    loaded = C2SDenoiser.load(path)
    assert loaded.magnitude_correction_ == "mean"
    np.testing.assert_array_equal(loaded.transform(noisy), expected)


def test_model_file_keeps_the_stabilised_path(rician_slices, tmp_path):
    _, noisy = rician_slices
    model = C2SDenoiser(sigma=SIGMA, **TINY).fit(noisy)
    loaded = C2SDenoiser.load(save_model_file(model, tmp_path / "vst.c2s"))
    assert loaded.magnitude_correction_ == "vst" and loaded.floor_shrinkage == model.floor_shrinkage
    np.testing.assert_array_equal(loaded.transform(noisy), model.transform(noisy))


def test_warm_start_keeps_the_fitted_magnitude_correction(rician_slices):
    _, noisy = rician_slices
    model = C2SDenoiser(sigma=SIGMA, warm_start=True, **TINY).fit(noisy)
    weights = [w.clone() for w in model.network_.state_dict().values()]
    with pytest.raises(ValueError, match="magnitude_correction='vst'"):
        model.set_params(magnitude_correction="mean").fit(noisy)
    assert all(torch.equal(a, b) for a, b in zip(weights, model.network_.state_dict().values()))


@pytest.mark.parametrize("n_coils", [1, 4, 8, 16])
def test_coil_number_and_sigma_fitted_together_to_the_air(n_coils):
    from c2s_denoise.physics.noise import estimate_coils_and_sigma

    head = np.stack([brain_phantom((96, 96), seed=seed) for seed in range(4)])
    noisy = magnitude_noise(head, 0.05, n_coils=n_coils, seed=n_coils)
    estimated_coils, sigma = estimate_coils_and_sigma(noisy)
    assert estimated_coils == pytest.approx(n_coils, rel=0.1)
    assert sigma == pytest.approx(0.05, rel=0.03)


@pytest.mark.parametrize("crop", [10, 20])
def test_coil_fit_finds_the_air_when_dark_tissue_competes(crop):
    """Heads cropped to 28% / 7% air, 8 coils, sigma 0.1: alternating from one coil settles on dark tissue
    (1.5 to 2.3 coils, about 4 times the level); the fit from several starts keeps the darkest air."""
    from c2s_denoise.physics.noise import estimate_coils_and_sigma

    head = np.stack([brain_phantom((128, 128), seed=seed) for seed in range(4)])[:, crop:-crop, crop:-crop]
    noisy = magnitude_noise(head, 0.1, n_coils=8, seed=8)
    estimated_coils, sigma = estimate_coils_and_sigma(noisy)
    assert estimated_coils == pytest.approx(8, rel=0.05)
    assert sigma == pytest.approx(0.1, rel=0.03)
    from_one_coil, level = estimate_coils_and_sigma(noisy, starts=(1.0,))
    assert from_one_coil < 3 and level > 3 * 0.1  # why several starts


def test_n_coils_auto_in_the_estimator_and_without_air(rician_slices):
    clean, _ = rician_slices
    noisy = magnitude_noise(clean, SIGMA, n_coils=4, seed=2)
    model = C2SDenoiser(n_coils="auto", **TINY).fit(noisy)
    assert model.n_coils_ == pytest.approx(4, rel=0.15) and model.noise_model_ == "ncchi"
    assert model.sigma_ == pytest.approx(SIGMA, rel=0.05)
    assert model.noise_level(noisy[0]) == pytest.approx(SIGMA, rel=0.05)
    assert C2SDenoiser(n_coils="auto").noise_level(noisy) == pytest.approx(SIGMA, rel=0.05)  # unfitted
    # bright tissue filling the field of view: no air to fit, one coil assumed with a warning
    tissue = magnitude_noise(np.full((2, 48, 48), 0.6), SIGMA, n_coils=4, seed=3)
    with pytest.warns(UserWarning, match="too little signal-free air"):
        no_air = C2SDenoiser(n_coils="auto", **TINY).fit(tissue)
    assert no_air.n_coils_ == 1.0 and no_air.noise_model_ == "rician"
    # Gaussian data: nothing to fit, no warning
    signed = np.random.default_rng(0).normal(size=(2, 32, 32))
    assert C2SDenoiser(n_coils="auto", **TINY).fit(signed).noise_model_ == "gaussian"


def test_cli_fit_with_n_coils_auto_saves_the_fitted_number(rician_slices, tmp_path):
    from typer.testing import CliRunner

    from c2s_denoise.cli.commands import app

    clean, _ = rician_slices
    np.save(tmp_path / "scan.npy", magnitude_noise(clean, SIGMA, n_coils=8, seed=4))
    words = ["fit", str(tmp_path / "scan.npy"), "-o", str(tmp_path / "m.c2s"), "--n-coils", "auto", "--max-iter", "4"]
    result = CliRunner().invoke(app, [*words, "--width", "8", "--patch-size", "24", "--seed", "0"])
    assert result.exit_code == 0, result.output
    model = C2SDenoiser.load(tmp_path / "m.c2s")
    assert model.n_coils == "auto" and model.n_coils_ == pytest.approx(8, rel=0.15)
    assert model.noise_model_ == "ncchi" and model.magnitude_correction_ == "vst"


def test_spatially_correlated_noise_is_said_and_white_noise_is_not():
    """Interpolated or filtered magnitude images: neighbouring air pixels correlate, and C2S says so."""
    import warnings

    from scipy.ndimage import gaussian_filter

    from c2s_denoise.physics.noise import air_correlation

    head = np.stack([brain_phantom((96, 96), seed=seed) for seed in range(4)])
    rng = np.random.default_rng(5)
    noise = rng.standard_normal((2, *head.shape))
    white = np.hypot(head + SIGMA * noise[0], SIGMA * noise[1])
    smooth = gaussian_filter(noise, (0, 0, 0.8, 0.8))
    smooth /= smooth.std()
    correlated = np.hypot(head + SIGMA * smooth[0], SIGMA * smooth[1])
    assert abs(air_correlation(white, 1, SIGMA)) < 0.03
    assert air_correlation(correlated, 1, SIGMA) > 0.3
    # a level that drifts from slice to slice (0.6 to 1.1 sigma, as on dipy's aniso_vox) is not correlation
    drift = np.linspace(0.6, 1.1, len(head))[:, None, None]
    drifting = np.hypot(head + SIGMA * drift * noise[0], SIGMA * drift * noise[1])
    assert abs(air_correlation(drifting, 1, SIGMA)) < 0.03
    air = (head == 0)[:, 1:]
    pooled = np.corrcoef(drifting[:, 1:][air], drifting[:, :-1][air])[0, 1]
    assert pooled > 0.05  # what a correlation coefficient of the pooled pairs reads
    params = dict(sigma=SIGMA, n_coils=1, **{**TINY, "max_iter": 1})
    with pytest.warns(UserWarning, match="spatially correlated"):
        C2SDenoiser(**params).fit(correlated)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C2SDenoiser(**params).fit(white)
