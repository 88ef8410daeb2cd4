"""One GDSM training step of Corruption2Self, equation by equation (docs/method.md sections 2-3).

For each training sample, a noisy image ``y`` of noise level ``sigma_data`` (section 2), the
equations and the names that compute them::

    tau ~ schedule(sigma_data), tau > 0                 NoiseSchedule.sample_tau (section 3)
    x_t = y + tau * z,  z ~ N(0, I)                     corrupt
    sigma_t = sqrt(sigma_data**2 + tau**2)              total_noise_level
    sigma_target = rho * sigma_data                     GDSMStep (refinement = rho)
    D = tau**2 + sigma_data**2 - sigma_target**2        gdsm_coefficients
    lambda_out = tau**2 / D                             gdsm_coefficients
    lambda_skip = (sigma_data**2 - sigma_target**2) / D gdsm_coefficients
    loss = mean_B w(sigma_t) mean_pixels                GDSMLoss
           (lambda_out h(x_t, sigma_t) + lambda_skip x_t - y)**2,  w = (sigma_t**2)**alpha

The least-squares minimiser is ``h*(x_t) = E[x_target | x_t]``, where ``x_target`` is the clean
image plus noise of level ``sigma_target`` (``sigma_target = 0`` gives the MMSE denoiser).
:class:`GDSMStep` is the whole step, a :data:`~c2s_denoise.engine.trainer.StepLoss` for
:func:`~c2s_denoise.engine.trainer.train_network`; :func:`train_gdsm` trains with it.

Examples
--------
>>> import torch
>>> tau, sigma_data, sigma_target = torch.tensor([0.2]), torch.tensor([0.1]), torch.tensor([0.0])
>>> lambda_out, lambda_skip = gdsm_coefficients(tau, sigma_data, sigma_target)
>>> round(lambda_out.item(), 6), round(lambda_skip.item(), 6)
(0.8, 0.2)
>>> round(total_noise_level(sigma_data, tau).item(), 6)
0.223607
>>> step = GDSMStep(NoiseSchedule("fixed", tau_max=1.0), GDSMLoss())
>>> identity = lambda x_t, sigma_t: x_t  # h(x_t, sigma_t) = x_t leaves lambda_out * tau * z
>>> loss = step(identity, torch.zeros(2, 1, 8, 8), torch.full((2,), 0.1), torch.Generator().manual_seed(0), 1.0)
>>> loss.shape, bool(loss > 0)
(torch.Size([]), True)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .schedule import NoiseSchedule
from .trainer import TrainingConfig, TrainingResult, train_network

__all__ = ["LOSS_WEIGHTINGS", "GDSMLoss", "GDSMStep", "corrupt", "gdsm_coefficients", "total_noise_level", "train_gdsm"]


#: The estimator's ``loss_weighting`` names and the ``GDSMLoss(lambda_out_power=...)`` each means.
LOSS_WEIGHTINGS = {"raw": 0.0, "inverse_variance": 1.0}


def _per_sample(values: Tensor, ndim: int) -> Tensor:
    """Per-sample values of shape (B,) viewed to broadcast over an image batch of ``ndim`` dims."""
    return values.view((-1,) + (1,) * (ndim - 1))


def corrupt(y: Tensor, tau: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Return ``x_t = y + tau * z`` with ``z ~ N(0, I)``, ``tau`` given per sample (shape (B,)).

    ``z`` is drawn on the CPU from ``generator`` (reproducible on any device).
    """
    z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device="cpu").to(y.device)
    return y + _per_sample(tau, y.ndim) * z


def total_noise_variance(sigma_data: Tensor, tau: Tensor) -> Tensor:
    """``sigma_t**2 = sigma_data**2 + tau**2``: the noise variance of ``x_t``."""
    return sigma_data * sigma_data + tau * tau


def total_noise_level(sigma_data: Tensor, tau: Tensor) -> Tensor:
    """``sigma_t = sqrt(sigma_data**2 + tau**2)``: the noise level the network is conditioned on."""
    return torch.sqrt(total_noise_variance(sigma_data, tau))


def gdsm_coefficients(tau: Tensor, sigma_data: Tensor, sigma_target: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(lambda_out, lambda_skip)`` of the GDSM combination.

    Parameters
    ----------
    tau : Tensor
        Standard deviation of the added noise, ``> 0``.
    sigma_data : Tensor
        Noise level of the observed data.
    sigma_target : Tensor
        Target noise level, ``0 <= sigma_target <= sigma_data``.

    Returns
    -------
    lambda_out, lambda_skip : Tensor
        Broadcast coefficients; ``lambda_out + lambda_skip == 1``.
    """
    tau2 = tau * tau
    skip_numerator = sigma_data * sigma_data - sigma_target * sigma_target
    denominator = tau2 + skip_numerator  # D
    return tau2 / denominator, skip_numerator / denominator


class GDSMLoss(nn.Module):
    """GDSM loss ``E w ||lambda_out h + lambda_skip x_t - y||^2`` with a per-sample weight ``w``.

    ``w = (sigma_t**2) ** alpha / lambda_out ** lambda_out_power``. Every positive weighting keeps
    the minimiser ``E[x_target | x_t]``; it only decides which noise levels the finite network
    and the finite number of steps favour.

    Parameters
    ----------
    alpha : float, default=0.0
        Exponent of ``(sigma_t**2) ** alpha``; ``0`` is unweighted.
    lambda_out_power : float, default=0.0
        Divide each sample's loss by ``lambda_out ** lambda_out_power``:

        - ``0``: the raw loss, whose weight on the denoiser's error ``h - h*`` is ``lambda_out**2``,
          which vanishes as ``tau -> 0`` (where inference happens);
        - ``1``: inverse-variance weighting. Given ``x_target`` and ``x_t``, ``y`` lies on a
          Gaussian bridge with variance ``lambda_out * s**2`` (``s**2 = sigma_data**2 -
          sigma_target**2``): the regression target of ``h`` implied by the loss,
          ``(y - lambda_skip x_t) / lambda_out``, carries noise of variance ``s**2 / lambda_out``.
          Dividing the raw loss by ``lambda_out`` weights the denoiser's error by ``lambda_out``,
          the inverse of that variance, and the bridge noise then adds ``s**2`` to every
          sample's loss whatever ``tau`` (docs/method.md section 2);
        - ``2``: regress ``h`` directly on that target (equal weight on the denoiser's error at
          every ``tau``, whose target noise then grows without bound as ``tau -> 0``).

    Notes
    -----
    The per-pixel squared error is averaged over pixels (and channels) of each sample, weighted
    per sample, then averaged over the batch.
    """

    def __init__(self, alpha: float = 0.0, lambda_out_power: float = 0.0) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.lambda_out_power = float(lambda_out_power)

    def forward(
        self,
        output: Tensor,
        x_t: Tensor,
        y: Tensor,
        tau: Tensor,
        sigma_data: Tensor,
        sigma_target: Tensor,
    ) -> Tensor:
        """Compute the loss.

        Parameters
        ----------
        output : Tensor, shape (B, C, H, W)
            Network output ``h_theta(x_t, sigma_t)``, an estimate of ``E[x_target | x_t]``.
        x_t : Tensor, shape (B, C, H, W)
            Further-corrupted input.
        y : Tensor, shape (B, C, H, W)
            Observed noisy image (what the combination regresses on).
        tau, sigma_data, sigma_target : Tensor, shape (B,)
            Per-sample added noise, data noise and target noise levels.

        Returns
        -------
        Tensor
            Scalar loss.
        """
        lambda_out, lambda_skip = gdsm_coefficients(tau, sigma_data, sigma_target)
        prediction = _per_sample(lambda_out, output.ndim) * output + _per_sample(lambda_skip, x_t.ndim) * x_t
        per_sample = (prediction - y).square().flatten(1).mean(dim=1)
        weight = torch.ones_like(per_sample)
        if self.alpha != 0.0:
            weight = weight * total_noise_variance(sigma_data, tau).pow(self.alpha)
        if self.lambda_out_power != 0.0:
            weight = weight / lambda_out.pow(self.lambda_out_power)
        return (weight * per_sample).mean()


class GDSMStep:
    """One GDSM training step's loss: draw ``tau``, corrupt, evaluate :class:`GDSMLoss`.

    A :data:`~c2s_denoise.engine.trainer.StepLoss`:
    ``step(network, patches, sigma_data, generator, progress) -> scalar loss``.

    Parameters
    ----------
    schedule : NoiseSchedule
        Sampler of the added noise ``tau``.
    loss_fn : GDSMLoss
    refinement : float, default=0.0
        ``rho = sigma_target / sigma_data``.
    n_denoised_channels : int, default=1
        The first ``n_denoised_channels`` channels of a batch are the denoised channels
        (corrupted, and what the loss regresses on); the remaining channels are conditioning
        inputs passed to the network unchanged (docs/method.md section 6: other contrasts,
        neighbouring slices).
    """

    def __init__(
        self, schedule: NoiseSchedule, loss_fn: GDSMLoss, refinement: float = 0.0, n_denoised_channels: int = 1
    ) -> None:
        self.schedule = schedule
        self.loss_fn = loss_fn
        self.refinement = float(refinement)
        self.n_denoised_channels = int(n_denoised_channels)

    def __call__(
        self,
        network: Callable[[Tensor, Tensor], Tensor],
        patches: Tensor,
        sigma_data: Tensor,
        generator: torch.Generator,
        progress: float,
    ) -> Tensor:
        """Scalar GDSM loss of one batch ``patches`` (B, C, h, w) with noise levels ``sigma_data`` (B,)."""
        n_denoised = self.n_denoised_channels
        y = patches[:, :n_denoised]
        tau = self.schedule.sample_tau(sigma_data, generator)
        x_t = corrupt(y, tau, generator)
        sigma_t = total_noise_level(sigma_data, tau)
        # conditioning channels (after the denoised ones) enter as they are: no corruption, no loss
        conditioning = patches[:, n_denoised:]
        inputs = torch.cat([x_t, conditioning], dim=1) if conditioning.shape[1] else x_t
        output = network(inputs, sigma_t)
        return self.loss_fn(output, x_t, y, tau, sigma_data, self.refinement * sigma_data)


def train_gdsm(
    network: nn.Module,
    images: list[Tensor],
    noise_levels: Tensor,
    *,
    config: TrainingConfig,
    schedule: NoiseSchedule,
    loss_fn: GDSMLoss,
    generator: torch.Generator,
    device: torch.device,
    verbose: int = 0,
    callback: Callable[[int, float], None] | None = None,
    air_rms: Tensor | None = None,
) -> TrainingResult:
    """Train ``network`` on noisy images only with the GDSM loss: :func:`train_network` with a :class:`GDSMStep`.

    ``network(x_t, sigma_t)`` must return an estimate of ``E[x_target | x_t]``; the target level
    is ``config.refinement * sigma_data``. The first ``network.out_channels`` image channels are
    denoised; any further channels are conditioning inputs (see :class:`GDSMStep`). See
    :func:`~c2s_denoise.engine.trainer.train_network` for the parameters.
    """
    n_denoised = getattr(network, "out_channels", 1)
    return train_network(
        network,
        images,
        noise_levels,
        loss_step=GDSMStep(schedule, loss_fn, config.refinement, n_denoised),
        config=config,
        generator=generator,
        device=device,
        verbose=verbose,
        callback=callback,
        air_rms=air_rms,
        signal_channels=n_denoised,
    )
