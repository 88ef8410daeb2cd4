"""The generalized denoising score matching (GDSM) loss of Corruption2Self.

Notation follows ``docs/method.md`` (sections 2 and 5). A noisy image ``y`` with noise level
``sigma_data`` is corrupted further, ``x_t = y + tau * z``, so that its total noise level is
``sigma_t = sqrt(sigma_data**2 + tau**2)``. For a target level ``sigma_target`` in
``[0, sigma_data]`` the network output ``h`` is combined with ``x_t`` as

    lambda_out * h + lambda_skip * x_t  ~  y

with ``D = tau**2 + sigma_data**2 - sigma_target**2``, ``lambda_out = tau**2 / D`` and
``lambda_skip = (sigma_data**2 - sigma_target**2) / D``. The least-squares minimiser is
``h*(x_t) = E[x_target | x_t]``, where ``x_target`` is the clean image plus noise of level
``sigma_target`` (``sigma_target = 0`` gives the MMSE denoiser).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["gdsm_coefficients", "GDSMLoss"]


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
    denominator = tau2 + skip_numerator
    return tau2 / denominator, skip_numerator / denominator


class GDSMLoss(nn.Module):
    """GDSM loss ``E w(sigma_t) ||lambda_out h + lambda_skip x_t - y||^2``.

    Parameters
    ----------
    alpha : float, default=0.0
        Exponent of the weight ``w = (sigma_t**2) ** alpha``; ``0`` is unweighted.
    normalize_output_weight : bool, default=False
        If True, divide each sample's loss by ``lambda_out**2``; this is the same as regressing
        ``h`` on ``(y - lambda_skip x_t) / lambda_out`` and avoids the vanishing gradient at
        small ``tau``. Any positive weighting keeps the same minimiser.

    Notes
    -----
    The per-pixel squared error is averaged over pixels (and channels) of each sample, weighted
    per sample, then averaged over the batch.
    """

    def __init__(self, alpha: float = 0.0, normalize_output_weight: bool = False) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.normalize_output_weight = bool(normalize_output_weight)

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
            Observed noisy image (the regression target).
        tau, sigma_data, sigma_target : Tensor, shape (B,)
            Per-sample added noise, data noise and target noise levels.

        Returns
        -------
        Tensor
            Scalar loss.
        """
        lambda_out, lambda_skip = gdsm_coefficients(tau, sigma_data, sigma_target)
        shape = (-1,) + (1,) * (output.ndim - 1)
        prediction = lambda_out.view(shape) * output + lambda_skip.view(shape) * x_t
        per_sample = (prediction - y).square().flatten(1).mean(dim=1)
        weight = torch.ones_like(per_sample)
        if self.alpha != 0.0:
            sigma_t2 = sigma_data * sigma_data + tau * tau
            weight = weight * sigma_t2.pow(self.alpha)
        if self.normalize_output_weight:
            weight = weight / lambda_out.square()
        return (weight * per_sample).mean()
