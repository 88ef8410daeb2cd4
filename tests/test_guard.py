"""Divergence guard: a training run that blows up is rolled back to its last healthy state."""

import math

import pytest
import torch
from conftest import training_config
from torch import nn

from c2s_denoise.engine import GDSMLoss, GDSMStep, NoiseConditionedUNet, NoiseSchedule, train_network
from c2s_denoise.engine import guard as guard_module
from c2s_denoise.engine.guard import FROZEN_STEPS, DivergenceGuard


class Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


def test_guard_snapshots_healthy_windows_and_restores_on_a_spike():
    module = Holder()
    guard = DivergenceGuard(window=10, start=5)
    for step in range(30):  # nothing before step 5; then windows 5-14 and 15-24 end healthy (loss 1.0)
        module.w.data.fill_(step)
        assert not guard.check(step, 1.0, {"m": module})
    module.w.data.fill_(1000.0)
    assert guard.check(30, 50.0, {"m": module})  # one step at 50x the best window mean
    assert module.w.item() == 24.0  # the state at the end of the last complete healthy window
    assert guard.rollbacks == 1 and guard.lr_scale == 0.5


def test_guard_catches_a_slow_rise_to_a_dead_network_but_not_noise():
    module = Holder()
    guard = DivergenceGuard(window=10, start=0)
    losses = [1.0, 1.1, 0.95, 1.05] * 10  # noisy but healthy
    for step, loss in enumerate(losses):
        assert not guard.check(step, loss, {"m": module})
    module.w.data.fill_(7.0)
    rolled = [guard.check(len(losses) + i, 1.9, {"m": module}) for i in range(10)]  # a dead network: 1.9x
    assert rolled[-1] and not any(rolled[:-1])
    assert module.w.item() == 0.0


def _images():
    g = torch.Generator().manual_seed(0)
    base = torch.rand((6, 1, 24, 24), generator=g)
    return [image + 0.1 * torch.randn(image.shape, generator=g) for image in base], torch.full((6,), 0.1)


def test_a_non_finite_loss_is_rolled_back_once_a_healthy_state_exists():
    module = Holder()
    guard = DivergenceGuard(window=10, start=5)
    assert not guard.check(0, float("nan"), {"m": module})  # warm-up: nothing to go back to (the trainer raises)
    for step in range(1, 15):  # window 5-14 ends healthy
        module.w.data.fill_(step)
        assert not guard.check(step, 1.0, {"m": module})
    module.w.data.fill_(float("nan"))
    assert guard.check(15, float("inf"), {"m": module})
    assert module.w.item() == 14.0 and guard.rollbacks == 1


def test_a_gradient_spike_in_the_first_window_after_the_warm_up_is_rolled_back():
    """A dead head starts with a gradient a thousand times its usual size, right after the warm-up, before any window
    has a loss to compare with (benchmarks/results/peer_collapse.md): the state at the end of the warm-up returns."""
    module = Holder()
    guard = DivergenceGuard(window=50, start=10)
    for step in range(10):
        assert not guard.check(step, 1.0, {"m": module}, gradient_norm=0.01)
    for step in range(10, 20):  # norms up to 10x the warm-up's mean pass
        module.w.data.fill_(step)
        assert not guard.check(step, 1.0, {"m": module}, gradient_norm=0.01 if step % 2 else 0.1)
    module.w.data.fill_(-1.0)
    assert guard.check(20, 1.2, {"m": module}, gradient_norm=5.0)  # 500x the warm-up's mean norm
    assert module.w.item() == 10.0 and guard.rollbacks == 1 and guard.lr_scale == 0.5


def test_the_gradient_reference_follows_the_last_healthy_window():
    """After a healthy window its mean norm is the reference: a spike 100x above it is caught even when it is not
    100x above the (larger) warm-up norms."""
    module = Holder()
    guard = DivergenceGuard(window=10, start=5)
    for step in range(5):
        guard.check(step, 1.0, {"m": module}, gradient_norm=1.0)
    for step in range(5, 25):
        module.w.data.fill_(step)
        assert not guard.check(step, 1.0, {"m": module}, gradient_norm=0.001)
    assert guard.check(25, 1.0, {"m": module}, gradient_norm=0.5)  # 500x the window's 0.001, half the warm-up's
    assert module.w.item() == 24.0


def _train(sabotage_at=None, nan_at=None, spike_at=None, kill_at=None):
    torch.manual_seed(0)
    network = NoiseConditionedUNet(width=4, depth=2)
    gdsm = GDSMStep(NoiseSchedule("added", 1.5), GDSMLoss())

    def loss_step(net, patches, sigma, generator, progress):
        if sabotage_at is not None and round(progress * 300) == sabotage_at:
            with torch.no_grad():  # a blow-up: every weight multiplied by 50
                for parameter in net.parameters():
                    parameter.mul_(50.0)
        if kill_at is not None and round(progress * 300) == kill_at:
            with torch.no_grad():  # a dead head: every input of its SiLU at -1e9, no gradient below it
                net.decoder[0].conv2.bias.fill_(-1e9)
        loss = gdsm(net, patches, sigma, generator, progress)
        if spike_at is not None and round(progress * 300) == spike_at:
            loss = loss * 1e5  # a gradient 1e5 times its size (clipped, but Adam's step still jumps)
        return loss * float("nan") if nan_at is not None and round(progress * 300) == nan_at else loss

    return _run(network, loss_step, max_iter=300)


def _run(network, loss_step, max_iter):
    images, levels = _images()
    config = training_config(max_iter=max_iter, batch_size=4, patch_size=16)
    return train_network(
        network,
        images,
        levels,
        loss_step=loss_step,
        config=config,
        generator=torch.Generator().manual_seed(1),
        device=torch.device("cpu"),
    )


def test_a_blown_up_run_is_rolled_back_and_a_healthy_one_untouched():
    healthy = _train()
    assert healthy.rollbacks == 0
    sabotaged = _train(sabotage_at=200)
    assert sabotaged.rollbacks >= 1
    assert max(sabotaged.loss_curve[195:205]) > 100 * max(healthy.loss_curve[195:205])  # it did blow up
    # after the rollback the run ends near the healthy run's loss, with finite weights
    tail_healthy = sum(healthy.loss_curve[-50:]) / 50
    tail_sabotaged = sum(sabotaged.loss_curve[-50:]) / 50
    assert tail_sabotaged < 1.5 * tail_healthy, (tail_healthy, tail_sabotaged)
    assert all(torch.isfinite(p).all() for p in sabotaged.network.parameters())


def test_a_gradient_spike_right_after_the_warm_up_is_rolled_back_by_the_trainer():
    """Step 30 lies in the first window after the 15-step warm-up (steps 15-64), which has no loss reference."""
    result = _train(spike_at=30)
    assert result.rollbacks == 1 and result.n_iter == 300
    assert _train().rollbacks == 0


def test_a_frozen_kernel_is_seen_and_never_snapshotted():
    conv = nn.Conv2d(1, 1, 3)
    guard = DivergenceGuard(window=10, start=0, network=conv)
    conv.weight.grad = torch.ones_like(conv.weight)
    for step in range(10):  # a healthy window: snapshotted
        assert not guard.check(step, 1.0, {"m": conv}, gradient_norm=1.0)
    conv.weight.grad.zero_()
    with torch.no_grad():
        conv.weight.fill_(7.0)
    rolled = [guard.check(10 + i, 1.0, {"m": conv}, gradient_norm=1.0) for i in range(FROZEN_STEPS)]
    assert rolled[-1] and not any(rolled[:-1])  # the loss never moved: only the kernel's gradient tells
    assert not (conv.weight == 7.0).any() and guard.rollbacks == 1
    guard = DivergenceGuard(window=5, start=0, network=conv)
    for step in range(5):  # a window with a frozen step is not kept as a state to return to
        with torch.no_grad():
            conv.weight.fill_(step)
        conv.weight.grad = torch.zeros_like(conv.weight) if step == 2 else torch.ones_like(conv.weight)
        guard.check(step, 1.0, {"m": conv}, gradient_norm=1.0)
    assert (guard._snapshot["m"]["weight"] == 0.0).all()  # the state of step 0 (the start), not of step 4
    conv.weight.grad = None  # no gradient at all (a skipped step) is not a frozen one
    assert not guard._frozen()


def test_a_dead_head_is_rolled_back_by_the_trainer(monkeypatch):
    """A dead network's loss stays within the loss tolerance; the frozen first kernel gives it away."""
    healthy = _train()
    killed = _train(kill_at=200)
    assert killed.rollbacks >= 1
    assert killed.network.decoder[0].conv2.bias.abs().max() < 1e3  # the weights before the kill
    assert sum(killed.loss_curve[-50:]) < 1.2 * sum(healthy.loss_curve[-50:])
    monkeypatch.setattr(guard_module, "FROZEN_STEPS", 10**9)  # without the frozen rule it stays dead
    unwatched = _train(kill_at=200)
    assert unwatched.rollbacks == 0 and unwatched.network.decoder[0].conv2.bias.max() < -1e5


def test_a_nan_loss_after_the_warm_up_is_rolled_back_by_the_trainer():
    result = _train(nan_at=200)
    assert result.rollbacks == 1 and result.n_iter == 300
    assert all(torch.isfinite(p).all() for p in result.network.parameters())


def _train_with_nan_gradients(nan_gradient_steps, max_iter=8):
    """A short run whose loss stays finite but whose gradient is NaN at the given steps (0-based)."""
    torch.manual_seed(0)
    network = NoiseConditionedUNet(width=4, depth=2)
    gdsm = GDSMStep(NoiseSchedule("added", 1.5), GDSMLoss())
    calls = [0]

    def loss_step(net, patches, sigma, generator, progress):
        loss = gdsm(net, patches, sigma, generator, progress)
        step, calls[0] = calls[0], calls[0] + 1
        if step in nan_gradient_steps:  # sqrt(w - w) is 0, its gradient inf * 0 = NaN
            weight = next(net.parameters())
            loss = loss + torch.sqrt(weight - weight).sum()
        return loss

    return _run(network, loss_step, max_iter)


def test_a_step_with_a_nan_gradient_and_a_finite_loss_is_skipped():
    """Even at the last step, where no later loss would show the guard the NaN weights."""
    result = _train_with_nan_gradients({3, 7})
    assert result.skipped_steps == 2 and result.n_iter == 8 and result.rollbacks == 0
    assert all(math.isfinite(value) for value in result.loss_curve)
    assert all(torch.isfinite(p).all() for p in result.network.parameters())
    clean = _train_with_nan_gradients(set())
    assert clean.skipped_steps == 0
    assert any(not torch.equal(a, b) for a, b in zip(result.network.parameters(), clean.network.parameters()))


def test_a_gradient_that_stays_non_finite_stops_training_with_a_clear_error():
    from c2s_denoise.engine.trainer import MAX_SKIPPED_IN_A_ROW

    steps = MAX_SKIPPED_IN_A_ROW + 5
    with pytest.raises(FloatingPointError, match=r"gradient was non-finite.*in a row.*precision='float32'"):
        _train_with_nan_gradients(set(range(steps)), max_iter=steps)


def test_thin_levels_of_a_3d_network_run_in_float32_under_bfloat16_autocast():
    """bfloat16 3-D convolutions over 1-2 slices can return NaN gradients (oneDNN): those levels use float32."""
    from c2s_denoise.engine.unet import THIN_SLICES

    network = NoiseConditionedUNet(width=4, depth=3, spatial_dims=3)
    seen = []

    def record(module, inputs, output):
        seen.append((inputs[0].shape[2], output.shape[2], output.dtype))

    for module in network.modules():
        if isinstance(module, (torch.nn.Conv3d, torch.nn.ConvTranspose3d)):
            module.register_forward_hook(record)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        network(torch.randn(2, 1, 8, 16, 16), torch.full((2,), 0.1))
    thin = [dtype for d_in, d_out, dtype in seen if min(d_in, d_out) <= THIN_SLICES]
    thick = [dtype for d_in, d_out, dtype in seen if min(d_in, d_out) > THIN_SLICES]
    assert thin and thick  # levels of 8, 4 and 2 slices
    assert all(dtype == torch.float32 for dtype in thin)
    assert all(dtype == torch.bfloat16 for dtype in thick)
