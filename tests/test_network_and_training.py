"""U-Net shapes, EMA warm-up, learning-rate schedule, determinism, interruption, inference."""

import pytest
import torch
from conftest import training_config

from c2s_denoise.engine import (
    ExponentialMovingAverage,
    GDSMLoss,
    NoiseConditionedUNet,
    NoiseSchedule,
    PatchSampler,
    denoise_images,
    multiply_adds_per_pixel,
    resolve_device,
    train_gdsm,
    warmup_cosine,
)


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (5, 3), (181, 217)])
@pytest.mark.parametrize("attention", [False, True])
def test_unet_takes_any_size(size, attention):
    network = NoiseConditionedUNet(width=8, depth=3, attention=attention)
    x = torch.randn(2, 1, *size)
    out = network(x, torch.tensor([0.1, 0.2]))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_unet_output_depends_on_noise_level_only_when_conditioned():
    torch.manual_seed(0)
    conditioned = NoiseConditionedUNet(width=8, depth=2)
    for module in conditioned.modules():  # FiLM layers start at zero: give them weights
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.5)
    x = torch.randn(1, 1, 16, 16)
    a, b = conditioned._backbone(x, torch.tensor([0.05])), conditioned._backbone(x, torch.tensor([0.3]))
    assert not torch.allclose(a, b)
    plain = NoiseConditionedUNet(width=8, depth=2, noise_conditioning=False)
    torch.testing.assert_close(plain._backbone(x, torch.tensor([0.05])), plain._backbone(x, torch.tensor([0.3])))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_reduced_precision_modulation_is_the_float32_scale_and_shift(spatial_dims):
    """The bfloat16 path of the FiLM modulation (shift materialised, for speed) computes
    ``h * (1 + scale) + shift`` and its gradients as the float32 ``addcmul`` does, in ``h``'s layout."""
    from c2s_denoise.engine.unet import _modulate

    generator = torch.Generator().manual_seed(0)
    layout = torch.channels_last if spatial_dims == 2 else torch.channels_last_3d
    h = torch.randn(3, 8, *(6,) * spatial_dims, generator=generator).to(memory_format=layout)
    film = torch.randn(3, 16, generator=generator)
    upstream = torch.randn(h.shape, generator=generator)
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        h_d = h.detach().to(dtype).requires_grad_()
        film_d = film.detach().to(dtype).requires_grad_()
        out = _modulate(h_d, film_d)
        out.backward(upstream.to(dtype))
        assert out.dtype == dtype and out.is_contiguous(memory_format=layout)
        results[dtype] = [t.float() for t in (out, h_d.grad, film_d.grad)]
    expected = h * (1 + film[:, :8].view(3, 8, *(1,) * spatial_dims)) + film[:, 8:].view(3, 8, *(1,) * spatial_dims)
    torch.testing.assert_close(results[torch.float32][0], expected)
    for exact, reduced in zip(results[torch.float32], results[torch.bfloat16]):
        torch.testing.assert_close(reduced, exact, rtol=0.02, atol=0.05 * exact.abs().max().item())


def test_multiply_adds_grow_with_width_squared():
    small = multiply_adds_per_pixel(NoiseConditionedUNet(width=16))
    large = multiply_adds_per_pixel(NoiseConditionedUNet(width=32))
    assert 3.5 < large / small < 4.1


def test_ema_warmup_then_fixed_decay():
    network = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(network.weight)
    ema = ExponentialMovingAverage(network, decay=0.999)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    with torch.no_grad():
        network.weight.fill_(1.0)
    ema.update(network)
    assert ema.network.weight.item() == pytest.approx(0.9)  # moved 90% of the way at the first step
    ema.n_updates = 100_000
    assert ema.current_decay() == 0.999
    with pytest.raises(ValueError):
        ExponentialMovingAverage(network, decay=1.0)


def test_warmup_cosine_schedule():
    values = [warmup_cosine(step, 100, 0.1, 0.02) for step in range(100)]
    assert values[0] == pytest.approx(0.1)
    assert values[9] == pytest.approx(1.0)
    assert max(values) == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.02, abs=1e-3)
    assert all(a >= b for a, b in zip(values[9:], values[10:]))


def test_patch_sampler_respects_small_images_and_weights_by_area():
    images = [torch.zeros(1, 4, 40), torch.ones(1, 30, 30)]
    sampler = PatchSampler(images, torch.tensor([0.1, 0.2]), patch_size=16)
    patches, levels = sampler.sample(2000, torch.Generator().manual_seed(0))
    assert patches.shape == (2000, 1, 4, 16)
    from_second = (levels == 0.2).float().mean().item()
    assert from_second == pytest.approx(900 / (900 + 160), abs=0.03)
    assert torch.all(patches.flatten(1).std(dim=1) == 0)  # each patch comes from one image


def test_patch_sampler_draws_air_patches_with_probability_air_weight():
    # left half: background noise (RMS 0.1 = sigma); right half: signal 1.0 plus noise
    generator = torch.Generator().manual_seed(0)
    image = 0.1 * torch.randn(1, 32, 64, generator=generator)
    image[:, :, 32:] += 1.0
    levels, air = torch.tensor([0.1]), torch.tensor([0.1])
    for weight in (1.0, 0.25):
        sampler = PatchSampler([image], levels, patch_size=8, augment=False, air_rms=air, air_weight=weight)
        patches, _ = sampler.sample(4000, torch.Generator().manual_seed(1))
        air_share = (patches.flatten(1).mean(dim=1) < 0.06).float().mean().item()
        # 25 of 57 positions are pure air; kept with probability `weight`
        expected = 25 * weight / (25 * weight + 32)
        assert air_share == pytest.approx(expected, abs=0.03)
    # without the noise's RMS nothing counts as air, whatever the weight
    plain = PatchSampler([image], levels, patch_size=8, augment=False, air_weight=0.25).sample(
        4000, torch.Generator().manual_seed(1)
    )[0]
    assert (plain.flatten(1).mean(dim=1) < 0.06).float().mean().item() == pytest.approx(25 / 57, abs=0.03)
    with pytest.raises(ValueError, match="air_weight"):
        PatchSampler([image], levels, patch_size=8, air_rms=air, air_weight=0.0)


def _tiny_run(seed, callback=None, max_iter=5):
    generator = torch.Generator().manual_seed(seed)
    images = [torch.rand(1, 24, 24, generator=generator) for _ in range(4)]
    torch.manual_seed(seed)
    network = NoiseConditionedUNet(width=4, depth=2)
    return train_gdsm(
        network,
        images,
        torch.full((4,), 0.1),
        config=training_config(max_iter=max_iter, batch_size=2, patch_size=16),
        schedule=NoiseSchedule("added", 3.0),
        loss_fn=GDSMLoss(),
        generator=generator,
        device=torch.device("cpu"),
        callback=callback,
    )


def test_training_is_deterministic_for_a_seed():
    a, b, c = _tiny_run(0), _tiny_run(0), _tiny_run(1)
    for (name, pa), pb in zip(a.network.state_dict().items(), b.network.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert a.loss_curve == b.loss_curve
    assert a.loss_curve != c.loss_curve


def test_interrupted_training_keeps_the_averaged_weights():
    def interrupt(step, loss):
        if step == 2:
            raise KeyboardInterrupt

    result = _tiny_run(0, callback=interrupt, max_iter=50)
    assert result.interrupted
    assert result.n_iter == 3
    assert not result.network.training


def test_self_ensemble_is_exact_for_an_equivariant_map():
    class Identity(torch.nn.Module):
        def forward(self, x, sigma):
            return x * 2.0

    images = [torch.rand(1, 5, 7), torch.rand(1, 5, 7), torch.rand(1, 3, 3)]
    outputs = denoise_images(
        Identity(), images, torch.full((3,), 0.1), device=torch.device("cpu"), batch_size=2, self_ensemble=True
    )
    for image, output in zip(images, outputs):
        torch.testing.assert_close(output, image * 2.0)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu-9000")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_time_budget_stops_training_and_lays_the_schedule_over_the_budget():
    """max_time stops at whichever of steps and seconds comes first; the loss sees the budget used."""
    from c2s_denoise.engine.trainer import train_network, warmup_cosine_fraction

    assert warmup_cosine_fraction(0.0, 0.1, 0.02) == 0.0
    assert warmup_cosine_fraction(0.05, 0.1, 0.02) == pytest.approx(0.5)
    assert warmup_cosine_fraction(0.1, 0.1, 0.02) == pytest.approx(1.0)
    assert warmup_cosine_fraction(1.0, 0.1, 0.02) == pytest.approx(0.02)
    decay = [warmup_cosine_fraction(f / 100, 0.1, 0.02) for f in range(10, 101)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))

    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 24, 24, generator=generator) for _ in range(2)]
    seen = []

    def loss_step(network, patches, sigma_data, generator, progress):
        seen.append(progress)
        return (network(patches, sigma_data) - patches).square().mean()

    result = train_network(
        NoiseConditionedUNet(width=4, depth=2),
        images,
        torch.full((2,), 0.1),
        loss_step=loss_step,
        config=training_config(max_iter=10**7, max_time=0.5, batch_size=2, patch_size=16),
        generator=generator,
        device=torch.device("cpu"),
    )
    assert 1 < result.n_iter < 10**7 and 0.5 <= result.seconds < 5.0
    # the budget used grows with time (the last step starts before the budget ends, however slow the machine)
    assert all(a <= b for a, b in zip(seen, seen[1:])) and 0.0 < seen[0] < 0.2 and seen[-1] > 0.5
