"""C2SDenoiser: quality against clean references, layouts, reproducibility, persistence, errors."""

import warnings

import joblib
import numpy as np
import pytest
import torch
from conftest import psnr
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import c2s_denoise
from c2s_denoise import C2SDenoiser, InvalidParameterError, psnr_scorer

FAST = dict(width=16, depth=3, max_iter=300, batch_size=8, patch_size=32, device="cpu")
TINY = dict(width=4, depth=2, max_iter=4, batch_size=2, patch_size=8, device="cpu")


@pytest.fixture(scope="module")
def fitted(noisy_dataset):
    return C2SDenoiser(sigma=noisy_dataset["sigma"], random_state=0, **FAST).fit(noisy_dataset["train_noisy"])


def test_denoises_held_out_images_against_clean_references(fitted, noisy_dataset):
    """Trained on noisy images only; PSNR against the clean held-out images must rise clearly."""
    denoised = fitted.transform(noisy_dataset["test_noisy"])
    noisy_psnr = psnr(noisy_dataset["test_clean"], noisy_dataset["test_noisy"])
    denoised_psnr = psnr(noisy_dataset["test_clean"], denoised)
    assert denoised_psnr > noisy_psnr + 3.0, (noisy_psnr, denoised_psnr)
    # not the identity: the output moved far from the noisy input
    assert np.std(denoised - noisy_dataset["test_noisy"]) > 0.05
    assert fitted.n_iter_ == FAST["max_iter"] and len(fitted.loss_curve_) == FAST["max_iter"]
    np.testing.assert_allclose(fitted.sigma_, 0.1)


def test_psnr_scorer_is_psnr_and_self_supervised_score_tracks_it(fitted, noisy_dataset):
    X, clean = noisy_dataset["test_noisy"], noisy_dataset["test_clean"]
    denoised = fitted.transform(X)
    expected = np.mean(
        [10 * np.log10((c.max() - c.min()) ** 2 / np.mean((c - d) ** 2)) for c, d in zip(clean, denoised)]
    )
    assert psnr_scorer(fitted, X, clean) == pytest.approx(expected, abs=1e-6)
    # a fitted Pipeline ending in the denoiser: the steps before it transform X first
    pipeline = Pipeline([("scale", FunctionTransformer(lambda x: x, validate=False).fit(X)), ("c2s", fitted)])
    assert psnr_scorer(pipeline, X, clean) == pytest.approx(expected, abs=1e-6)
    # score(X, y) ignores a label vector; clean references still give their PSNR, deprecated
    assert fitted.score(X, np.arange(len(X))) == fitted.score(X)
    with pytest.warns(FutureWarning, match="psnr_scorer"):
        assert fitted.score(X, clean) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(TypeError, match="C2SDenoiser"):
        psnr_scorer(FunctionTransformer().fit(X[0]), X, clean)
    # self-supervised score: SURE + sigma^2 estimates the MSE against an independent noisy repeat,
    # MSE(f, x) + sigma^2, with the 99.5th percentile of |noisy| as the peak
    peaks = np.array([np.percentile(np.abs(x), 99.5) for x in X])
    sigma = noisy_dataset["sigma"]
    truth = np.mean(
        [10 * np.log10(p**2 / (np.mean((c - d) ** 2) + sigma**2)) for p, c, d in zip(peaks, clean, denoised)]
    )
    assert fitted.score(X) == pytest.approx(truth, abs=0.3)
    # the identity map scores exactly 2 sigma^2: the fitted model must do clearly better
    identity = np.mean(10 * np.log10(peaks**2 / (2 * sigma**2)))
    assert fitted.score(X) > identity + 1.5


def test_self_supervised_score_survives_an_overestimated_sigma(fitted, noisy_dataset):
    """With sigma 10% too high, plain SURE goes negative for a good denoiser; the score must not."""
    X, clean = noisy_dataset["test_noisy"], noisy_dataset["test_clean"]
    biased = fitted.set_params(sigma=0.11)
    try:
        score = biased.score(X)
    finally:
        fitted.set_params(sigma=noisy_dataset["sigma"])
    true_with_repeat = np.mean(
        [
            10 * np.log10(np.percentile(np.abs(x), 99.5) ** 2 / (np.mean((c - d) ** 2) + 0.1**2))
            for x, c, d in zip(X, clean, fitted.transform(X))
        ]
    )
    assert np.isfinite(score) and abs(score - true_with_repeat) < 1.5


def test_same_random_state_gives_identical_weights(noisy_dataset):
    X = noisy_dataset["train_noisy"][:4, :32, :32]
    a = C2SDenoiser(random_state=7, **TINY).fit(X)
    b = C2SDenoiser(random_state=7, **TINY).fit(X)
    c = C2SDenoiser(random_state=8, **TINY).fit(X)
    for (name, pa), pb in zip(a.network_.state_dict().items(), b.network_.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.network_.parameters(), c.network_.parameters()))


def test_layouts_round_trip_shape_and_dtype(noisy_dataset):
    stack = noisy_dataset["train_noisy"][:3, :33, :31].astype(np.float32)
    model = C2SDenoiser(random_state=0, **TINY).fit(stack)
    out = model.transform(stack)
    assert out.shape == stack.shape and out.dtype == np.float32
    volumes = np.stack([stack, stack])  # (2, 3, 33, 31): volumes, slice by slice
    assert model.transform(volumes).shape == volumes.shape
    mixed = [stack[0].astype(np.float64), stack[:2, :20, :17], np.random.default_rng(0).random((2, 3))]
    outputs = model.transform(mixed)
    assert [o.shape for o in outputs] == [m.shape for m in mixed]
    assert outputs[0].dtype == np.float64 and outputs[1].dtype == np.float32
    assert model.transform((stack * 100).astype(np.int16)).dtype == np.float64
    # a list of differently sized volumes is a valid training set
    C2SDenoiser(random_state=0, **TINY).fit(mixed[:2])


def test_odd_sized_mri_slice(noisy_dataset):
    image = np.random.default_rng(0).random((1, 181, 217))
    model = C2SDenoiser(random_state=0, **TINY).fit(image)
    assert model.transform(image).shape == (1, 181, 217)


def test_rows_with_image_shape(noisy_dataset):
    images = noisy_dataset["train_noisy"][:4, :16, :16]
    rows = images.reshape(4, 256)
    model = C2SDenoiser(image_shape=(16, 16), random_state=0, **TINY).fit(rows)
    np.testing.assert_allclose(model.transform(rows), model.transform(images).reshape(4, 256), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="image_shape"):
        C2SDenoiser(image_shape=(10, 10), **TINY).fit(rows)


def test_outputs_are_in_input_units_and_input_is_untouched(noisy_dataset):
    X = noisy_dataset["train_noisy"][:4, :32, :32]
    model = C2SDenoiser(random_state=0, **TINY).fit(X)
    before = X.copy()
    scaled = model.transform(X * 1000.0)
    np.testing.assert_allclose(scaled, model.transform(X) * 1000.0, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(X, before)


def test_joblib_round_trip_gives_identical_output(tmp_path, fitted, noisy_dataset):
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    X = noisy_dataset["test_noisy"][:2]
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    state = fitted.__getstate__()
    assert "networks_" not in state and list(state["_networks_state"]) == [None]  # one shape: one entry, no contrast
    assert all(isinstance(v, torch.Tensor) for v in state["_networks_state"][None]["weights"].values())
    assert state["_torch_version"] == torch.__version__
    assert hasattr(fitted, "network_")  # pickling does not strip the live estimator


def test_loading_a_model_from_another_version_warns(fitted):
    state = fitted.__getstate__()
    state["_c2s_version"] = "0.0.0-old"
    state["_torch_version"] = "1.0.0"
    restored = C2SDenoiser.__new__(C2SDenoiser)
    with pytest.warns(UserWarning) as record:
        restored.__setstate__(state)
    messages = " ".join(str(w.message) for w in record)
    assert "0.0.0-old" in messages and "torch 1.0.0" in messages


def test_interrupted_fit_keeps_weights(interrupt_training_at_step_3, noisy_dataset):
    X = noisy_dataset["train_noisy"][:4, :32, :32]
    with pytest.warns(UserWarning, match="interrupted after 2 of 50"):
        model = C2SDenoiser(random_state=0, **{**TINY, "max_iter": 50}).fit(X)
    assert model.n_iter_ == 2 and model.interrupted_
    assert model.transform(X).shape == X.shape


@pytest.mark.parametrize(
    "X, message",
    [
        (np.full((2, 8, 8), np.nan), "NaN"),
        (np.full((2, 8, 8), np.inf), "infinity"),
        (np.ones((2, 64)) + 1j, "Complex data not supported"),  # complex rows; complex images are accepted
        (np.full((2, 8, 8), np.nan + 1j), "NaN"),
        ([np.ones((8, 8)), np.ones((8, 8)) + 1j], "mixes complex and real"),
        (np.ones(8), "Expected 2D array"),
        (np.ones((1, 1, 2, 8, 8)), "5 dimension"),
        (np.ones((0, 8, 8)), "0 sample"),
        (np.ones((2, 0, 8)), "zero-size"),
        ([], "empty"),
        ([np.ones((8, 8)), np.full((4, 4), np.nan)], "X\\[1\\] contains NaN"),
        ([np.ones((8, 8)), np.ones((2, 2, 4, 4))], "X\\[1\\] must be an image"),
    ],
)
def test_bad_input_raises_a_clear_error(X, message):
    with pytest.raises(ValueError, match=message):
        C2SDenoiser(**TINY).fit(X)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(sigma=-0.1), "sigma"),
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=np.inf), "sigma"),
        (dict(sigma=np.nan), "sigma"),
        (dict(contrasts=("T1",), sigma={"T1": np.inf}), "sigma\\['T1'\\]"),
        (dict(contrasts=("T1",), sigma={"T1": -1.0}), "sigma\\['T1'\\]"),
        (dict(contrasts=("T1",), sigma={"T1": "guess"}), "sigma\\['T1'\\]"),
        (dict(max_iter=0), "max_iter"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=2.0), "learning_rate"),
        (dict(learning_rate=np.inf), "learning_rate"),
        (dict(tau_max=101.0), "tau_max"),
        (dict(tau_max=np.inf), "tau_max"),
        (dict(ema_decay=1.0), "ema_decay"),
        (dict(air_weight=0.0), "air_weight"),
        (dict(loss_alpha=np.nan), "loss_alpha"),
        (dict(sigma="guess"), "sigma"),
        (dict(refinement=1.0), "refinement"),
        (dict(refinement=-0.1), "refinement"),
        (dict(noise_schedule="cosine"), "noise_schedule"),
        (dict(tau_max=0), "tau_max"),
        (dict(contrasts=("T1", "T2")), "contrasts"),
        (dict(device="tpu-9000"), "device"),
    ],
)
def test_bad_parameters_raise(params, message):
    with pytest.raises(ValueError, match=message):
        C2SDenoiser(**{**TINY, **params}).fit(np.random.default_rng(0).random((2, 1, 8, 8)))


@pytest.mark.parametrize(
    "params",
    [
        dict(max_iter=1),
        dict(learning_rate=1.0),
        dict(tau_max=100.0),
        dict(contrasts=("T1",), sigma={"T1": 0.1}),
        dict(contrasts=("T1",), sigma={"T1": "wavelet"}),
    ],
)
def test_parameters_at_their_bounds_are_accepted(params):
    C2SDenoiser(**{**TINY, **params})._validate_params()


def test_out_of_range_parameters_raise_invalid_parameter_error_naming_them():
    for name, value in [("max_iter", 0), ("sigma", np.inf), ("learning_rate", 10.0), ("tau_max", 1e3)]:
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
            C2SDenoiser(**{**TINY, name: value}).fit(np.ones((2, 8, 8)))


def test_transform_rejects_rows_of_another_width(noisy_dataset):
    model = C2SDenoiser(random_state=0, **TINY).fit(np.random.default_rng(0).random((4, 30)))
    with pytest.raises(ValueError, match="features"):
        model.transform(np.ones((2, 31)))


def test_refinement_keeps_a_fraction_of_the_noisy_texture(noisy_dataset):
    """rho > 0 targets E[x_tg|y] = rho^2 y + (1 - rho^2) E[x|y]: the output stays closer to y.

    The exact coefficients are pinned by the Gaussian closed-form test in test_gdsm.py; a short
    CPU fit reaches the direction of the effect (measured ratio ~0.75-0.8 at rho = 0.7, theory 0.51),
    which is what this end-to-end check asserts.
    """
    X = noisy_dataset["train_noisy"]
    plain = C2SDenoiser(sigma=0.1, random_state=0, **{**FAST, "max_iter": 200}).fit(X)
    refined = C2SDenoiser(sigma=0.1, refinement=0.7, random_state=0, **{**FAST, "max_iter": 200}).fit(X)
    distance_plain = np.std(plain.transform(X) - X)
    distance_refined = np.std(refined.transform(X) - X)
    assert distance_refined < 0.9 * distance_plain


def test_clone_pipeline_and_grid_search_without_clean_data(noisy_dataset):
    X = noisy_dataset["train_noisy"][:8, :32, :32]
    base = C2SDenoiser(sigma=0.1, random_state=0, **{**FAST, "max_iter": 1})
    assert clone(base).get_params() == base.get_params()
    pipeline = Pipeline([("identity", FunctionTransformer()), ("c2s", base)])
    assert pipeline.fit(X).transform(X).shape == X.shape
    search = GridSearchCV(base, {"max_iter": [1, 120]}, cv=2)
    search.fit(X)
    assert search.best_params_ == {"max_iter": 120}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_grid_search_with_clean_references_uses_psnr_scorer(noisy_dataset):
    X, clean = noisy_dataset["test_noisy"][:, :32, :32], noisy_dataset["test_clean"][:, :32, :32]
    base = C2SDenoiser(sigma=0.1, random_state=0, **{**FAST, "max_iter": 1})
    search = GridSearchCV(base, {"max_iter": [1, 120]}, cv=2, scoring=c2s_denoise.psnr_scorer).fit(X, clean)
    assert search.best_params_ == {"max_iter": 120}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_a_loss_non_finite_from_the_first_step_raises_a_clear_error(monkeypatch, noisy_dataset):
    import c2s_denoise.engine.gdsm as gdsm

    original = gdsm.GDSMLoss.forward
    monkeypatch.setattr(
        gdsm.GDSMLoss, "forward", lambda self, *args, **kwargs: original(self, *args, **kwargs) * np.nan
    )
    X = noisy_dataset["train_noisy"][:4, :32, :32]
    with pytest.raises(FloatingPointError, match=r"non-finite \(nan\) at step 1 of 50.*learning_rate.*sigma"):
        C2SDenoiser(random_state=0, **{**TINY, "max_iter": 50}).fit(X)


def test_verbose_fit_shows_progress_on_stderr(capsys, noisy_dataset):
    C2SDenoiser(random_state=0, verbose=1, **TINY).fit(noisy_dataset["train_noisy"][:2, :16, :16])
    captured = capsys.readouterr()
    assert "C2S fit" in captured.err and "loss" in captured.err
    assert captured.out == ""


def test_no_warnings_in_a_plain_fit(noisy_dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C2SDenoiser(random_state=0, **TINY).fit(noisy_dataset["train_noisy"][:2, :16, :16])


def test_noise_level_that_cannot_be_estimated_is_a_clear_warning_never_a_silent_zero():
    """A constant image has no noise to measure: sigma="auto" warns, naming the item, instead of returning 0 silently."""
    X = [np.random.default_rng(0).normal(0.5, 0.1, (16, 16)), np.ones((16, 16))]
    with pytest.warns(UserWarning, match="item 1: cannot estimate the noise level.*constant"):
        model = C2SDenoiser(noise_model="gaussian", **TINY).fit(X)
    assert list(model.sigma_methods_) == ["wavelet", "failed"]
    assert model.sigma_[0] == pytest.approx(0.1, rel=0.2)


def test_denoise_returns_the_transform_and_the_noise_level_used_per_item(noisy_dataset):
    X = noisy_dataset["train_noisy"][:3, :32, :32].copy()
    X[1] *= 2.0  # twice the noise level in item 1
    model = C2SDenoiser(random_state=0, noise_model="gaussian", **TINY).fit(X)
    denoised, levels = model.denoise(X)
    np.testing.assert_array_equal(denoised, model.transform(X))
    assert levels.shape == (3,)
    assert levels[1] == pytest.approx(2 * levels[0], rel=0.3)
    assert levels[0] == pytest.approx(model.noise_level(X[0]))
    fixed = model.set_params(sigma=0.07).denoise(X)[1]
    np.testing.assert_allclose(fixed, 0.07)


def test_models_saved_before_noise_models_load_and_stay_gaussian(noisy_dataset):
    """A pickle from before noise_model/n_coils existed loads, keeps its Gaussian behaviour and transforms."""
    import pickle

    X = noisy_dataset["train_noisy"][:2, :32, :32]
    model = C2SDenoiser(random_state=0, noise_model="gaussian", **TINY).fit(X)
    expected = model.transform(X)
    state = model.__getstate__()
    for key in ("noise_model", "n_coils", "noise_model_", "complex_input_", "sigma_methods_"):
        state.pop(key)
    old = C2SDenoiser.__new__(C2SDenoiser)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.noise_model == "gaussian" and old.noise_model_ == "gaussian" and not old.complex_input_
    np.testing.assert_allclose(old.transform(X), expected)


def test_one_fitted_shape_and_pickles_of_the_older_single_network_layout(noisy_dataset):
    """Every model keeps its networks in ``networks_`` (one entry, key None, without contrasts); a pickle
    written when single-contrast models held ``network_`` and lacked n_coils_/context_slices_ loads bitwise."""
    import pickle

    X = noisy_dataset["train_noisy"][:2, :32, :32]
    model = C2SDenoiser(random_state=0, noise_model="gaussian", context_slices=0, **TINY).fit(X)
    assert list(model.networks_) == [None] and model.network_ is model.networks_[None]
    assert model.contrasts_ is None and model.target_contrasts_ is None
    expected = model.transform(X)
    state = model.__getstate__()
    state["_network_state"] = state.pop("_networks_state")[None]
    for key in ("n_coils_", "context_slices_", "contrasts_", "target_contrasts_", "spatial_dims", "patch_depth"):
        state.pop(key)
    state["n_coils"] = 1  # before n_coils_ existed, n_coils was a number
    old = C2SDenoiser.__new__(C2SDenoiser)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert list(old.networks_) == [None] and old.n_coils_ == 1.0 and old.context_slices_ == 0
    assert old.spatial_dims == 2 and old.patch_depth == 16
    np.testing.assert_array_equal(old.transform(X), expected)


def test_network_attribute_of_a_model_with_several_networks_points_to_networks():
    X = np.random.default_rng(0).normal(0.5, 0.1, size=(2, 2, 32, 32))
    model = C2SDenoiser(contrasts=("T1", "T2"), sigma=0.1, context_slices=0, random_state=0, **TINY).fit(X)
    assert list(model.networks_) == ["T1", "T2"] and model.contrasts_ == ("T1", "T2")
    with pytest.raises(AttributeError, match="use networks_"):
        model.network_  # noqa: B018


def test_max_time_stops_the_fit_within_the_budget(noisy_dataset):
    X = noisy_dataset["train_noisy"][:2, :32, :32]
    model = C2SDenoiser(random_state=0, noise_model="gaussian", **{**TINY, "max_iter": 10**7}, max_time=0.5).fit(X)
    assert 1 < model.n_iter_ < 10**7 and model.fit_time_ < 5.0
    assert model.transform(X).shape == X.shape
    for bad in (0, -1.0, float("inf") * 0):
        with pytest.raises((InvalidParameterError, ValueError)):
            C2SDenoiser(max_time=bad).fit(X)


def test_inverse_variance_loss_weighting_trains_a_denoiser(noisy_dataset):
    """loss_weighting picks the GDSM loss's per-sample weight (raw loss over lambda_out); quality vs clean."""
    params = dict(sigma=noisy_dataset["sigma"], width=8, depth=2, max_iter=150, patch_size=32, device="cpu")
    weighted = C2SDenoiser(loss_weighting="inverse_variance", random_state=0, **params).fit(
        noisy_dataset["train_noisy"]
    )
    raw = C2SDenoiser(loss_weighting="raw", random_state=0, **params).fit(noisy_dataset["train_noisy"])
    # the same draws, a loss divided by lambda_out <= 1: every step's loss is larger
    assert all(w > r for w, r in zip(weighted.loss_curve_[:5], raw.loss_curve_[:5]))
    denoised = weighted.transform(noisy_dataset["test_noisy"])
    gain = psnr(noisy_dataset["test_clean"], denoised) - psnr(noisy_dataset["test_clean"], noisy_dataset["test_noisy"])
    assert gain > 3.0, gain
    with pytest.raises(InvalidParameterError, match="loss_weighting"):
        C2SDenoiser(loss_weighting="uniform", **TINY).fit(noisy_dataset["train_noisy"][:2])
