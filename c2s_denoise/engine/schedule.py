"""Sampling of the added noise level ``tau`` for GDSM training (docs/method.md section 3).

Three schedules:

``"added"`` (reparameterised, the paper's default)
    ``tau ~ U(0, tau_max * sigma_data]``: sample the *added* noise.
``"total"`` (unreparameterised, for the ablation)
    ``sigma_t ~ U(sigma_data, sigma_T]`` with ``sigma_T**2 = sigma_data**2 + (tau_max sigma_data)**2``
    and ``tau = sqrt(sigma_t**2 - sigma_data**2)``.
``"fixed"``
    ``tau = tau_max * sigma_data`` for every sample; with ``tau_max = 1`` and target level 0 this
    is Noisier2Noise.

``tau_max`` is expressed as a multiple of each sample's ``sigma_data`` so that it does not
depend on the image's intensity units.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["NOISE_SCHEDULES", "NoiseSchedule"]

NOISE_SCHEDULES = ("added", "total", "fixed")

# Smallest tau as a fraction of sigma_data: tau = 0 makes lambda_out = 0 (an empty sample).
_MIN_TAU_RATIO = 1e-3


class NoiseSchedule:
    """Draw the added noise level ``tau`` for each training sample.

    Parameters
    ----------
    kind : {"added", "total", "fixed"}
        Sampling scheme, see the module docstring.
    tau_max : float
        Largest added noise as a multiple of ``sigma_data`` (the fixed value for ``"fixed"``).
    """

    def __init__(self, kind: str = "added", tau_max: float = 1.5) -> None:
        if kind not in NOISE_SCHEDULES:
            raise ValueError(f"noise_schedule must be one of {NOISE_SCHEDULES}, got {kind!r}")
        if not tau_max > 0:
            raise ValueError(f"tau_max must be > 0, got {tau_max!r}")
        self.kind = kind
        self.tau_max = float(tau_max)

    def sample_tau(self, sigma_data: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Return ``tau`` with the shape of ``sigma_data`` (one level per sample)."""
        tau_top = self.tau_max * sigma_data
        if self.kind == "fixed":
            return tau_top.clone()
        u = torch.rand(sigma_data.shape, generator=generator, dtype=sigma_data.dtype, device="cpu")
        u = u.to(sigma_data.device).clamp_min(_MIN_TAU_RATIO / self.tau_max)
        if self.kind == "added":
            return u * tau_top
        sigma_top = torch.sqrt(sigma_data.square() + tau_top.square())
        sigma_t = sigma_data + u * (sigma_top - sigma_data)
        return torch.sqrt((sigma_t.square() - sigma_data.square()).clamp_min(0)).clamp_min(_MIN_TAU_RATIO * sigma_data)
