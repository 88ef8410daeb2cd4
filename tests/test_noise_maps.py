"""``sigma`` as a noise map (docs/method.md section 11): the heteroscedastic GDSM step, flattening, bad maps."""

import warnings

import h5py
import numpy as np
import pytest
import torch
from conftest import make_phantoms

from c2s_denoise import C2SDenoiser
from c2s_denoise.engine import GDSMLoss, GDSMStep, NoiseSchedule
from c2s_denoise.estimator._noise_maps import NoiseMaps, noise_maps
from c2s_denoise.metrics import psnr
from c2s_denoise.physics.magnitude import ncchi_mean, ncchi_second_moment


def _two_level_map(shape: tuple[int, int], low: float, high: float) -> np.ndarray:
    """A map of level ``low`` on the left half and ``high`` on the right half."""
    noise_map = np.full(shape, low)
    noise_map[:, shape[1] // 2 :] = high
    return noise_map


def _flattened(noise_map: np.ndarray, n: int) -> NoiseMaps:
    """The :class:`NoiseMaps` of ``n`` items of one 2-D ``noise_map``, as the estimator builds it."""
    items = [np.zeros((1, 1, *noise_map.shape)) for _ in range(n)]
    return noise_maps([noise_map] * n, items, image_shape=None, noise_model="gaussian", n_coils=1.0)


@pytest.mark.parametrize("rho", [0.0, 0.4])
def test_flattened_gdsm_minimiser_is_the_heteroscedastic_closed_form(rho):
    """x ~ N(0, s^2) per pixel, noise sigma(r) of two levels; the scalar GDSM step on the flattened image with a
    linear h' per pixel, restored as h = m h'(x_t / m), has the minimiser of the heteroscedastic step:
    a(r) = (s^2 + rho^2 sigma(r)^2) / (s^2 + sigma(r)^2 (1 + tau^2))."""
    s, tau_max, n = 0.5, 0.8, 4000
    noise_map = _two_level_map((8, 16), 0.1, 0.4)
    maps = _flattened(noise_map, n)
    rng = np.random.default_rng(0)
    x = s * rng.standard_normal((n, 1, 1, 8, 16))
    y = x + noise_map * rng.standard_normal(x.shape)
    patches = torch.from_numpy(np.stack(maps.flatten(list(y)))[:, :, 0])  # (n, 1, 8, 16): items y / m
    level = float(maps.levels[0])
    a = torch.zeros(8, 16, dtype=torch.float64, requires_grad=True)
    step = GDSMStep(NoiseSchedule("fixed", tau_max=tau_max), GDSMLoss(), refinement=rho)
    loss = step(
        lambda x_t, sigma_t: a * x_t,
        patches,
        torch.full((n,), level, dtype=torch.float64),
        torch.Generator().manual_seed(1),
        1.0,
    )
    (gradient,) = torch.autograd.grad(loss, a, create_graph=True)
    (curvature,) = torch.autograd.grad(gradient.sum(), a)  # the loss is quadratic and separable in a(r)
    a_star = (-gradient / curvature).detach().numpy()  # h(x_t) = m a'(r) x_t / m = a'(r) x_t
    for sigma, columns in ((0.1, slice(0, 8)), (0.4, slice(8, 16))):
        expected = (s**2 + rho**2 * sigma**2) / (s**2 + sigma**2 * (1 + tau_max**2))
        assert a_star[:, columns].mean() == pytest.approx(expected, rel=0.02)
    assert maps.levels[0] == pytest.approx(0.25)  # the median of the map


def test_flattened_corruption_has_the_local_level():
    """The scalar corruption tau sigma_ref z of the flattened image is tau sigma(r) z in the input's units."""
    noise_map = _two_level_map((64, 64), 0.05, 0.2)
    maps = _flattened(noise_map, 200)
    tau = 0.7
    z = np.random.default_rng(2).standard_normal((200, 1, 1, 64, 64))
    added = np.stack(maps.restore([tau * maps.levels[0] * item for item in z]))
    spread = added.std(axis=0)[0, 0]
    assert spread[:, :32].mean() == pytest.approx(tau * 0.05, rel=0.02)
    assert spread[:, 32:].mean() == pytest.approx(tau * 0.2, rel=0.02)


def test_flattened_magnitude_noise_is_noncentral_chi_of_the_reference_level():
    """|A + sigma(r) n| / m(r) is Rician of the reference level and amplitude A / m(r), at both levels."""
    noise_map = _two_level_map((100, 100), 0.05, 0.15)
    maps = _flattened(noise_map, 1)
    amplitude, rng = 0.2, np.random.default_rng(3)
    magnitude = np.abs(amplitude + noise_map * (rng.standard_normal((100, 100)) + 1j * rng.standard_normal((100, 100))))
    flat = maps.flatten([magnitude[None, None]])[0][0, 0]
    level = maps.levels[0]
    for columns, m in ((slice(0, 50), 0.05 / level), (slice(50, 100), 0.15 / level)):
        values = flat[:, columns]
        assert values.mean() == pytest.approx(ncchi_mean(amplitude / m, level, 1), rel=0.02)
        assert (values**2).mean() == pytest.approx(ncchi_second_moment(amplitude / m, level, 1), rel=0.03)


@pytest.mark.parametrize("positive", [False, True])
def test_a_constant_map_is_bitwise_the_scalar_level(positive):
    """A constant map flattens nothing: the same weights and outputs as the scalar level (Gaussian, and magnitude
    noise with the coils fitted to the air)."""
    clean = make_phantoms(3, 32, seed=4)
    rng = np.random.default_rng(4)
    noisy = clean + 0.05 * rng.standard_normal(clean.shape)
    if positive:
        noisy = np.abs(clean + 0.05 * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape)))
    settings = dict(max_iter=6, batch_size=2, patch_size=16, random_state=0)
    scalar = C2SDenoiser(sigma=0.05, **settings).fit(noisy)
    mapped = C2SDenoiser(sigma=np.full(noisy.shape, 0.05), **settings).fit(noisy)
    for name, weights in scalar.network_.state_dict().items():
        assert torch.equal(weights, mapped.network_.state_dict()[name]), name
    assert np.array_equal(scalar.transform(noisy), mapped.transform(noisy))
    assert np.array_equal(scalar.sigma_, mapped.sigma_)
    assert list(mapped.sigma_methods_) == ["map"] * 3


def test_a_true_map_beats_one_level_on_noise_that_varies():
    """Noise rising tenfold from left to right: the true map clearly beats one estimated level against the clean
    images, and new images take their maps through set_params before transform."""
    clean = make_phantoms(10, 64, seed=1)
    noise_map = 0.04 * np.exp(np.linspace(np.log(0.3), np.log(3.0), 64))[None, None, :] * np.ones_like(clean)
    noisy = clean + noise_map * np.random.default_rng(0).standard_normal(clean.shape)
    settings = dict(max_iter=200, random_state=0, self_ensemble=False)
    with pytest.warns(UserWarning, match=r"noise level varies across item \d+: its local noise map spans a factor"):
        one_level = C2SDenoiser(**settings).fit(noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a map given: nothing to warn about
        mapped = C2SDenoiser(sigma=noise_map, **settings).fit(noisy)

    def quality(denoised):
        return np.mean([psnr(out, ref, range_=1.0) for out, ref in zip(denoised, clean)])

    assert quality(mapped.transform(noisy)) > quality(one_level.transform(noisy)) + 2.0
    assert quality(mapped.transform(noisy)) > quality(noisy) + 5.0
    mapped.set_params(sigma=[noise_map[0], noise_map[1]])
    pair = mapped.transform([noisy[0], noisy[1]])
    assert np.allclose(pair[1], mapped.set_params(sigma=noise_map).transform(noisy)[1])


@pytest.mark.parametrize("noise_model", ["gaussian", "rician"])
def test_one_noise_level_everywhere_gives_no_varying_noise_warning(noise_model):
    """White noise of one level (Gaussian or Rician): the local map spans about 1.1, below the warning's 1.25."""
    from c2s_denoise.estimator._noise_levels import MAX_NOISE_MAP_SPREAD
    from c2s_denoise.physics.noise import estimate_noise_map

    clean = make_phantoms(8, 96, seed=2)
    rng = np.random.default_rng(3)
    if noise_model == "gaussian":
        noisy = clean + 0.05 * rng.standard_normal(clean.shape)
    else:
        noisy = np.hypot(clean + 0.05 * rng.standard_normal(clean.shape), 0.05 * rng.standard_normal(clean.shape))
    spread = np.divide(*np.percentile(estimate_noise_map(noisy, noise_model=noise_model), [90, 10]))
    assert spread < MAX_NOISE_MAP_SPREAD
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        C2SDenoiser(max_iter=1, noise_model=noise_model, n_coils=1, random_state=0).fit(noisy)
    assert not [w for w in caught if "noise level varies" in str(w.message)]


def test_bad_maps_raise_one_clear_error(tmp_path):
    """Wrong shape, wrong count, negative, non-finite, complex maps; maps with contrasts or lazily read volumes."""
    images = np.random.default_rng(5).random((2, 24, 24))
    good = np.full(images.shape, 0.1)
    cases = [
        (good[:, :, :20], r"sigma\[0\] has shape \(24, 20\), but its image has shape \(24, 24\)"),
        ([good[0]], r"1 noise map\(s\) but X has 2 item\(s\)"),
        (-good, r"sigma\[0\] has 576 value\(s\) <= 0"),
        (np.where(np.eye(24, dtype=bool), np.nan, good), r"sigma has 48 non-finite value\(s\)"),
        (good + 0j, r"sigma is complex"),
        ([0.1, 0.1], r"sigma is a list, so it must hold one noise map per item"),
    ]
    for sigma, message in cases:
        with pytest.raises(ValueError, match=message):
            C2SDenoiser(sigma=sigma, max_iter=2).fit(images)
    with pytest.raises(ValueError, match="takes one contrast"):
        C2SDenoiser(sigma="local", contrasts=("T1", "T2"), max_iter=2).fit({"T1": images, "T2": images})
    with h5py.File(tmp_path / "images.h5", "w") as file:
        file["x"] = images
    with h5py.File(tmp_path / "images.h5", "r") as file, pytest.raises(ValueError, match="needs the images in memory"):
        C2SDenoiser(sigma="local", max_iter=2).fit([file["x"]])
    fitted = C2SDenoiser(sigma=good, max_iter=2).fit(images)
    with pytest.raises(ValueError, match=r"2 noise map\(s\) but X has 1 item\(s\)"):
        fitted.transform(images[:1])


def test_a_model_file_keeps_no_noise_maps(tmp_path):
    """Maps belong to the images: the model file stores sigma='auto' in their place, with a warning, and the
    loaded model denoises with maps given again exactly as the fitted one."""
    images = make_phantoms(2, 32, seed=6)
    noise_map = np.full(images.shape, 0.05)
    noise_map[:, :, 16:] = 0.1
    noisy = images + noise_map * np.random.default_rng(6).standard_normal(images.shape)
    model = C2SDenoiser(sigma=noise_map, max_iter=3, random_state=0).fit(noisy)
    with pytest.warns(UserWarning, match="the model file keeps sigma='auto'"):
        model.save(tmp_path / "model.c2s")
    loaded = C2SDenoiser.load(tmp_path / "model.c2s")
    assert loaded.sigma == "auto"
    assert np.array_equal(loaded.set_params(sigma=noise_map).transform(noisy), model.transform(noisy))
