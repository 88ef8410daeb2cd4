"""The shipped prior: a fit starts from it where the network fits, and it already denoises brain anatomy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from c2s_denoise import C2SDenoiser
from c2s_denoise.engine import NoiseConditionedUNet
from c2s_denoise.engine.prior import PRIOR_PATH, initialise_from_prior, load_prior, prior_fits
from c2s_denoise.metrics import psnr
from c2s_denoise.physics.phantom import brain_phantom


def test_the_shipped_prior_is_the_default_network() -> None:
    config, weights, corpus = load_prior()
    default = C2SDenoiser()
    network = NoiseConditionedUNet(width=default.width, depth=default.depth, attention=default.attention)
    assert prior_fits(network.config, config)
    assert set(weights) == set(network.state_dict())
    assert corpus["noise"] == "gaussian" and corpus["slices"] >= 20


@pytest.mark.parametrize(
    "config",
    [{"width": 8}, {"depth": 4}, {"in_channels": 3}, {"out_channels": 2, "in_channels": 2}, {"spatial_dims": 3}],
)
def test_networks_of_another_shape_keep_their_random_weights(config: dict) -> None:
    network = NoiseConditionedUNet(**config)
    before = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    assert not initialise_from_prior(network)
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, before[name])


def test_a_damaged_prior_file_is_refused(tmp_path: Path) -> None:
    damaged = tmp_path / "prior.safetensors"
    shutil.copyfile(PRIOR_PATH, damaged)
    data = bytearray(damaged.read_bytes())
    data[-100] ^= 0xFF  # a byte of the last tensor
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        load_prior(damaged)


def test_a_fit_from_the_prior_denoises_after_a_few_steps() -> None:
    """Five steps from the prior already remove most of the noise; from random weights they do not."""
    clean = brain_phantom((4, 96, 96), seed=3)
    noisy = clean + 0.08 * np.random.default_rng(0).standard_normal(clean.shape)
    scores = {}
    for init in ("prior", "random"):
        model = C2SDenoiser(init=init, max_iter=5, random_state=0, noise_model="gaussian").fit(noisy)
        assert model.init_ == init
        scores[init] = psnr(model.transform(noisy), clean, range_=1.0)
    noisy_psnr = psnr(noisy, clean, range_=1.0)
    assert scores["prior"] > noisy_psnr + 6.0
    assert scores["prior"] > scores["random"] + 3.0


def test_init_is_recorded_and_kept_by_warm_starts(tmp_path: Path) -> None:
    noisy = np.random.default_rng(1).normal(0.5, 0.1, size=(2, 32, 32))
    assert C2SDenoiser(width=8, max_iter=2, noise_model="gaussian").fit(noisy).init_ == "random"  # another shape
    model = C2SDenoiser(max_iter=2, random_state=0, noise_model="gaussian").fit(noisy)
    assert model.init_ == "prior"
    model.save(tmp_path / "m.c2s")
    loaded = C2SDenoiser.load(tmp_path / "m.c2s")
    assert loaded.init_ == "prior"
    assert loaded.set_params(warm_start=True, init="random").fit(noisy).init_ == "prior"


def test_auto_steps_grow_with_the_data_from_the_prior_only() -> None:
    """``max_iter="auto"``: about PRIOR_PASSES passes over the pixels from the prior (at least 500), 8000 from random weights."""
    import doctest

    import c2s_denoise.engine.patches as patches_module
    import c2s_denoise.engine.prior as prior_module

    for module in (prior_module, patches_module):  # the steps, and the patch they count in
        result = doctest.testmod(module, raise_on_error=False)
        assert result.attempted > 0 and result.failed == 0
    noisy = brain_phantom((4, 48, 48), seed=1) + 0.05 * np.random.default_rng(2).standard_normal((4, 48, 48))
    model = C2SDenoiser(random_state=0, batch_size=2, noise_model="gaussian").fit(noisy)  # 500 passes
    assert model.init_ == "prior" and model.n_iter_ == 500 * 4 // 2
    slices = [torch.zeros(1, 256, 256)] * 3
    assert C2SDenoiser()._steps(slices, adapting=True) == round(500 * 3 * 256 * 256 / (8 * 48 * 48))
    assert C2SDenoiser()._steps(slices * 10, adapting=True) == 8000
    assert C2SDenoiser()._steps(slices, adapting=False) == 8000
    assert C2SDenoiser(max_iter=7)._steps(slices, adapting=True) == 7


def test_auto_learning_rate_and_air_weight_follow_where_the_fit_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """From trained weights (prior, warm start) a gentler rate and uniform patches; explicit values win."""
    import c2s_denoise.estimator._fitting as fitting
    from c2s_denoise.engine.prior import FROM_RANDOM_WEIGHTS, FROM_TRAINED_WEIGHTS

    seen = []
    train = fitting.train_gdsm
    monkeypatch.setattr(fitting, "train_gdsm", lambda *a, **k: seen.append(k["config"]) or train(*a, **k))
    noisy = brain_phantom((2, 48, 48), seed=1) + 0.05 * np.random.default_rng(2).standard_normal((2, 48, 48))

    def settings(**params) -> tuple[float, float]:
        C2SDenoiser(max_iter=1, random_state=0, noise_model="gaussian", **params).fit(noisy)
        return seen[-1].learning_rate, seen[-1].air_weight

    assert FROM_TRAINED_WEIGHTS["learning_rate"] < FROM_RANDOM_WEIGHTS["learning_rate"]
    assert settings() == (FROM_TRAINED_WEIGHTS["learning_rate"], FROM_TRAINED_WEIGHTS["air_weight"])
    assert settings(init="random") == (FROM_RANDOM_WEIGHTS["learning_rate"], FROM_RANDOM_WEIGHTS["air_weight"])
    assert settings(width=8) == (FROM_RANDOM_WEIGHTS["learning_rate"], FROM_RANDOM_WEIGHTS["air_weight"])
    assert settings(learning_rate=2e-3, air_weight=0.5) == (2e-3, 0.5)
    model = C2SDenoiser(max_iter=1, random_state=0, noise_model="gaussian", init="random").fit(noisy)
    model.set_params(warm_start=True).fit(noisy)  # continues trained weights
    assert (seen[-1].learning_rate, seen[-1].air_weight) == tuple(FROM_TRAINED_WEIGHTS.values())
