"""Pins the GDSM loss and noise schedule of docs/method.md sections 2, 3 and 9."""

import math

import pytest
import torch
from conftest import training_config
from torch import nn

from c2s_denoise.engine import GDSMLoss, NoiseSchedule, corrupt, gdsm_coefficients, train_gdsm


def _t(value: float) -> torch.Tensor:
    return torch.tensor([value], dtype=torch.float64)


@pytest.mark.parametrize("tau, sigma_data, sigma_target", [(0.01, 0.1, 0.0), (0.3, 0.1, 0.05), (1.0, 0.5, 0.49)])
def test_coefficients_sum_to_one_and_match_definition(tau, sigma_data, sigma_target):
    lambda_out, lambda_skip = gdsm_coefficients(_t(tau), _t(sigma_data), _t(sigma_target))
    denominator = tau**2 + sigma_data**2 - sigma_target**2
    assert lambda_out.item() == pytest.approx(tau**2 / denominator, rel=1e-12)
    assert lambda_skip.item() == pytest.approx((sigma_data**2 - sigma_target**2) / denominator, rel=1e-12)
    assert (lambda_out + lambda_skip).item() == pytest.approx(1.0, abs=1e-12)


def test_special_case_ambient_dsm_target_zero():
    lambda_out, lambda_skip = gdsm_coefficients(_t(0.2), _t(0.1), _t(0.0))
    assert lambda_out.item() == pytest.approx(0.04 / 0.05)
    assert lambda_skip.item() == pytest.approx(0.01 / 0.05)


def test_special_case_target_equals_data_level_is_ordinary_dsm():
    lambda_out, lambda_skip = gdsm_coefficients(_t(0.37), _t(0.1), _t(0.1))
    assert lambda_out.item() == 1.0
    assert lambda_skip.item() == 0.0


def test_special_case_noisier2noise_fixed_tau_equal_to_sigma():
    sigma_data = torch.tensor([0.05, 0.1, 0.2], dtype=torch.float64)
    tau = NoiseSchedule("fixed", tau_max=1.0).sample_tau(sigma_data)
    assert torch.equal(tau, sigma_data)
    lambda_out, lambda_skip = gdsm_coefficients(tau, sigma_data, torch.zeros_like(sigma_data))
    # lambda_out h + lambda_skip x_t = E[y|x_t]  =>  h = 2 E[y|x_t] - x_t
    torch.testing.assert_close(lambda_out, torch.full_like(tau, 0.5))
    torch.testing.assert_close(lambda_skip, torch.full_like(tau, 0.5))


def test_corruption_has_total_noise_level_sigma_t():
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(64, 1, 32, 32, generator=generator, dtype=torch.float64)
    sigma_data, tau = 0.1, 0.3
    y = clean + sigma_data * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    x_t = corrupt(y, torch.full((64,), tau, dtype=torch.float64), generator)
    assert (x_t - clean).std().item() == pytest.approx(math.sqrt(sigma_data**2 + tau**2), rel=0.01)
    assert (x_t - y).mean().abs().item() < 0.01


def test_added_schedule_is_uniform_on_zero_to_tau_max_sigma():
    generator = torch.Generator().manual_seed(1)
    sigma_data = torch.full((200_000,), 0.1, dtype=torch.float64)
    tau = NoiseSchedule("added", tau_max=4.0).sample_tau(sigma_data, generator)
    assert tau.min().item() > 0 and tau.max().item() <= 0.4
    assert tau.mean().item() == pytest.approx(0.2, rel=0.01)
    assert tau.var().item() == pytest.approx(0.4**2 / 12, rel=0.02)


def test_total_schedule_is_uniform_in_total_level():
    generator = torch.Generator().manual_seed(2)
    sigma_data = torch.full((200_000,), 0.1, dtype=torch.float64)
    tau = NoiseSchedule("total", tau_max=4.0).sample_tau(sigma_data, generator)
    sigma_t = torch.sqrt(sigma_data**2 + tau**2)
    sigma_top = math.sqrt(0.1**2 + 0.4**2)
    assert sigma_t.min().item() >= 0.1 and sigma_t.max().item() <= sigma_top + 1e-12
    assert sigma_t.mean().item() == pytest.approx((0.1 + sigma_top) / 2, rel=0.01)


def test_schedule_rejects_bad_parameters():
    with pytest.raises(ValueError, match="noise_schedule"):
        NoiseSchedule("cosine", 3.0)
    with pytest.raises(ValueError, match="tau_max"):
        NoiseSchedule("added", 0.0)


def _gaussian_problem(s, sigma_data, tau, n=400_000, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = s * torch.randn(n, 1, 1, 1, generator=generator, dtype=torch.float64)
    y = x + sigma_data * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    x_t = corrupt(y, torch.full((n,), tau, dtype=torch.float64), generator)
    return y, x_t


@pytest.mark.parametrize(
    "sigma_data, sigma_target, tau",
    [(0.1, 0.0, 0.1), (0.1, 0.0, 0.4), (0.2, 0.1, 0.3), (0.3, 0.15, 0.05), (0.1, 0.1, 0.2)],
)
@pytest.mark.parametrize("lambda_out_power", [0.0, 1.0, 2.0])
def test_gdsm_minimiser_matches_gaussian_closed_form(sigma_data, sigma_target, tau, lambda_out_power):
    """x ~ N(0, s^2), linear h = a x_t: the minimiser is a = (s^2 + sigma_tg^2) / (s^2 + sigma_t^2)."""
    s = 0.5
    y, x_t = _gaussian_problem(s, sigma_data, tau)
    n = y.shape[0]
    loss_fn = GDSMLoss(lambda_out_power=lambda_out_power)
    levels = [torch.full((n,), v, dtype=torch.float64) for v in (tau, sigma_data, sigma_target)]
    a = torch.zeros((), dtype=torch.float64, requires_grad=True)
    loss = loss_fn(a * x_t, x_t, y, *levels)
    (gradient,) = torch.autograd.grad(loss, a, create_graph=True)
    (curvature,) = torch.autograd.grad(gradient, a)
    a_star = (-gradient / curvature).item()  # exact: the loss is quadratic in a
    expected = (s**2 + sigma_target**2) / (s**2 + sigma_data**2 + tau**2)
    assert a_star == pytest.approx(expected, rel=0.01)


class _LinearDenoiser(nn.Module):
    """h(x_t, sigma_t) = a * x_t, the model class of the closed-form check."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.a * x


def test_trained_linear_model_reproduces_noisier2noise_closed_form():
    """Training loop + schedule + loss together: Noisier2Noise on a Gaussian prior."""
    s, sigma_data = 0.5, 0.2
    generator = torch.Generator().manual_seed(3)
    images = [
        s * torch.randn(1, 32, 32, generator=generator) + sigma_data * torch.randn(1, 32, 32, generator=generator)
        for _ in range(64)
    ]
    network = _LinearDenoiser()
    config = training_config(
        max_iter=400, batch_size=32, patch_size=32, learning_rate=0.05, ema_decay=0.9, augment=False
    )
    result = train_gdsm(
        network,
        images,
        torch.full((64,), sigma_data),
        config=config,
        schedule=NoiseSchedule("fixed", tau_max=1.0),
        loss_fn=GDSMLoss(),
        generator=generator,
        device=torch.device("cpu"),
    )
    expected = s**2 / (s**2 + 2 * sigma_data**2)
    assert result.network.a.item() == pytest.approx(expected, rel=0.03)
    assert result.n_iter == 400 and len(result.loss_curve) == 400


def test_loss_weighting_alpha_and_output_normalisation():
    generator = torch.Generator().manual_seed(4)
    output, x_t, y = (torch.randn(3, 1, 4, 4, generator=generator, dtype=torch.float64) for _ in range(3))
    tau = torch.tensor([0.1, 0.2, 0.5], dtype=torch.float64)
    sigma_data = torch.tensor([0.1, 0.1, 0.2], dtype=torch.float64)
    sigma_target = torch.zeros(3, dtype=torch.float64)
    lambda_out, lambda_skip = gdsm_coefficients(tau, sigma_data, sigma_target)
    residual = lambda_out.view(-1, 1, 1, 1) * output + lambda_skip.view(-1, 1, 1, 1) * x_t - y
    per_sample = residual.square().mean(dim=(1, 2, 3))
    weight = (sigma_data**2 + tau**2) ** 1.5
    assert GDSMLoss(alpha=1.5)(output, x_t, y, tau, sigma_data, sigma_target).item() == pytest.approx(
        (weight * per_sample).mean().item()
    )
    regression_target = (y - lambda_skip.view(-1, 1, 1, 1) * x_t) / lambda_out.view(-1, 1, 1, 1)
    regression = (output - regression_target).square().mean(dim=(1, 2, 3))
    assert GDSMLoss(lambda_out_power=2)(output, x_t, y, tau, sigma_data, sigma_target).item() == pytest.approx(
        regression.mean().item()
    )
    # inverse-variance weighting: the raw loss over lambda_out, i.e. lambda_out times the regression error
    assert GDSMLoss(lambda_out_power=1)(output, x_t, y, tau, sigma_data, sigma_target).item() == pytest.approx(
        (lambda_out * regression).mean().item()
    )


@pytest.mark.parametrize("sigma_target", [0.0, 0.05])
def test_inverse_variance_weighting_gives_every_tau_the_same_bridge_noise(sigma_target):
    """With the oracle output h = x_target, the loss left is the bridge noise of y: lambda_out * s^2
    per sample in the raw loss, s^2 = sigma_data^2 - sigma_target^2 for every tau once divided by lambda_out."""
    generator = torch.Generator().manual_seed(5)
    sigma_data, n = 0.1, 4096
    s2 = sigma_data**2 - sigma_target**2
    for tau in (0.01, 0.1, 0.3):
        x_target = 0.5 * torch.randn(n, 1, 8, 8, generator=generator, dtype=torch.float64)
        x_target = x_target + sigma_target * torch.randn(x_target.shape, generator=generator, dtype=torch.float64)
        y = x_target + s2**0.5 * torch.randn(x_target.shape, generator=generator, dtype=torch.float64)
        x_t = corrupt(y, torch.full((n,), tau, dtype=torch.float64), generator)
        levels = [torch.full((n,), v, dtype=torch.float64) for v in (tau, sigma_data, sigma_target)]
        lambda_out = gdsm_coefficients(*levels)[0][0].item()
        raw = GDSMLoss()(x_target, x_t, y, *levels).item()
        weighted = GDSMLoss(lambda_out_power=1)(x_target, x_t, y, *levels).item()
        assert raw == pytest.approx(lambda_out * s2, rel=0.02)
        assert weighted == pytest.approx(s2, rel=0.02)


def test_gdsm_module_examples_run():
    """The worked example in the docstring of c2s_denoise.engine.gdsm (the GDSM step in one module)."""
    import doctest

    import c2s_denoise.engine.gdsm as gdsm_module

    result = doctest.testmod(gdsm_module, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0
