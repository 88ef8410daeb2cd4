"""Training precision: float32 or bfloat16 mixed precision, chosen per device; the fused optimiser."""

import numpy as np
import pytest
import torch
from conftest import psnr, training_config

import c2s_denoise.engine.precision as precision
from c2s_denoise import C2SDenoiser
from c2s_denoise.engine import (
    GDSMLoss,
    NoiseConditionedUNet,
    NoiseSchedule,
    native_bfloat16,
    resolve_training_dtype,
    train_gdsm,
)
from c2s_denoise.engine.trainer import make_optimizer

CPU = torch.device("cpu")


def test_resolve_training_dtype(monkeypatch):
    assert resolve_training_dtype("float32", CPU) == torch.float32
    assert resolve_training_dtype("bfloat16", CPU) == torch.bfloat16
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: True)
    assert resolve_training_dtype("auto", CPU) == torch.bfloat16
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: False)
    assert resolve_training_dtype("auto", CPU) == torch.float32
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_training_dtype("float16", CPU)
    with pytest.raises(ValueError, match="needs a CPU or CUDA device"):
        resolve_training_dtype("bfloat16", torch.device("mps"))


def test_native_bfloat16_reads_the_cpu_features(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not native_bfloat16(CPU)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert native_bfloat16(CPU)
    assert not native_bfloat16(torch.device("mps"))


def _convolution_dtypes(compute_dtype):
    """Dtypes of the convolution outputs seen in training, and the trained weights' dtypes."""
    seen = set()
    network = NoiseConditionedUNet(width=4, depth=2)
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, i, o: seen.add(o.dtype) if m.training else None)
    generator = torch.Generator().manual_seed(0)
    result = train_gdsm(
        network,
        [torch.rand(1, 24, 24, generator=generator) for _ in range(2)],
        torch.full((2,), 0.1),
        config=training_config(max_iter=3, batch_size=2, patch_size=16, compute_dtype=compute_dtype),
        schedule=NoiseSchedule(),
        loss_fn=GDSMLoss(),
        generator=generator,
        device=CPU,
    )
    return seen, {p.dtype for p in network.parameters()} | {p.dtype for p in result.network.parameters()}


def test_bfloat16_runs_the_convolutions_in_bfloat16_and_keeps_float32_weights():
    seen, weights = _convolution_dtypes(torch.bfloat16)
    assert seen == {torch.bfloat16} and weights == {torch.float32}
    seen, weights = _convolution_dtypes(torch.float32)
    assert seen == {torch.float32} and weights == {torch.float32}


def test_the_optimiser_is_fused_on_the_cpu():
    network = NoiseConditionedUNet(width=4, depth=2)
    optimizer = make_optimizer(network, training_config(learning_rate=1e-3), CPU)
    assert optimizer.defaults["fused"] is True
    assert optimizer.defaults["lr"] == 1e-3
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(network.parameters()))


@pytest.mark.parametrize("setting", ["float32", "bfloat16"])
def test_both_precisions_denoise_reproducibly(noisy_dataset, setting):
    """Quality against the clean references in either precision; the same seed gives the same model."""
    params = dict(
        sigma=noisy_dataset["sigma"], width=8, depth=2, max_iter=150, patch_size=32, precision=setting, device="cpu"
    )
    first = C2SDenoiser(random_state=0, **params).fit(noisy_dataset["train_noisy"])
    second = C2SDenoiser(random_state=0, **params).fit(noisy_dataset["train_noisy"])
    assert first.training_dtype_ == setting
    assert first.loss_curve_ == second.loss_curve_
    denoised = first.transform(noisy_dataset["test_noisy"])
    np.testing.assert_array_equal(denoised, second.transform(noisy_dataset["test_noisy"]))
    gain = psnr(noisy_dataset["test_clean"], denoised) - psnr(noisy_dataset["test_clean"], noisy_dataset["test_noisy"])
    assert gain > 3.0, gain


def test_auto_precision_follows_the_device(monkeypatch, noisy_dataset):
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: False)
    model = C2SDenoiser(sigma=0.1, width=4, depth=2, max_iter=2, batch_size=2, patch_size=8, device="cpu")
    assert model.fit(noisy_dataset["train_noisy"][:2]).training_dtype_ == "float32"
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: True)
    assert model.fit(noisy_dataset["train_noisy"][:2]).training_dtype_ == "bfloat16"
