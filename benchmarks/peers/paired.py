"""Paired peers: R2R and Noisier2Noise, which regress a noisier copy of a patch on another.

``R2RLoss``
    Pang et al., "Recorrupted-to-Recorrupted: Unsupervised Deep Learning for Image
    Denoising", CVPR 2021. With ``z ~ N(0, I)``:
    ``y_hat = y + alpha sigma z`` and ``y_bar = y - sigma z / alpha``; the noises of ``y_hat``
    and ``y_bar`` are uncorrelated, hence (Gaussian) independent, so
    ``E[y_bar | y_hat] = E[x | y_hat]``; loss ``||f(y_hat) - y_bar||^2``, ``alpha = 0.5``.
    Inference averages ``f(y + alpha sigma z_k)`` over ``n_samples`` draws as in the paper, or
    ``n_samples = 0`` evaluates ``f(y)``.
``Noisier2NoiseLoss``
    Moran et al., "Noisier2Noise: Learning to Denoise from Unpaired Noisy Data", CVPR 2020.
    ``z = y + alpha sigma n``; the network learns ``f(z) ~ E[y | z]``; since
    ``E[y | z] = (alpha^2 E[x | z] + z) / (1 + alpha^2)``, the estimate is
    ``x_hat = ((1 + alpha^2) f(z) - z) / alpha^2`` (``2 f(z) - z`` for ``alpha = 1``),
    averaged over ``n_samples`` draws of ``z``. This is the GDSM special case of ``docs/method.md``
    section 2, target level ``sigma_tg = 0`` with one fixed added level ``tau = alpha sigma``:
    there ``lambda_out = alpha^2 / (1 + alpha^2)``, ``lambda_skip = 1 / (1 + alpha^2)``, and the
    GDSM prediction ``lambda_out h + lambda_skip z`` *is* ``f(z)`` when ``h = x_hat``, so both
    losses coincide (pinned by ``tests/test_peers.py``).

Both need the right data noise level ``sigma``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .base import Network, PairedLoss, mean_of_draws, per_sample, randn_like

__all__ = ["Noisier2NoiseLoss", "R2RLoss"]


def _checked(alpha: float, n_samples: int, min_samples: int) -> tuple[float, int]:
    """``(alpha, n_samples)`` as float and int, after checking ``alpha > 0`` and ``n_samples >= min_samples``."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    if n_samples < min_samples:
        raise ValueError(f"n_samples must be >= {min_samples}, got {n_samples}")
    return float(alpha), int(n_samples)


class R2RLoss(PairedLoss):
    """Recorrupted-to-Recorrupted (Pang et al., CVPR 2021) for Gaussian noise of known level.

    Parameters
    ----------
    alpha : float, default=0.5
        Recorruption strength: ``y_hat = y + alpha sigma z``, ``y_bar = y - sigma z / alpha``.
    n_samples : int, default=8
        Inference: mean of ``f(y + alpha sigma z_k)`` over this many draws (the paper's averaged
        estimator); 0 evaluates ``f(y)`` once (the input then has less noise than in training).
    """

    name: ClassVar[str] = "r2r"

    def __init__(self, alpha: float = 0.5, n_samples: int = 8) -> None:
        self.alpha, self.n_samples = _checked(alpha, n_samples, min_samples=0)

    def pair(self, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return the recorrupted input and target ``(y_hat, y_bar)`` of a batch.

        Parameters
        ----------
        noisy : Tensor, shape (B, C, H, W)
        sigma : Tensor, shape (B,)
        generator : torch.Generator

        Returns
        -------
        y_hat, y_bar : Tensor, shape (B, C, H, W)
            ``y + alpha sigma z`` and ``y - sigma z / alpha`` with the same ``z ~ N(0, I)``.
        """
        z = randn_like(noisy, generator) * per_sample(sigma, noisy)
        return noisy + self.alpha * z, noisy - z / self.alpha

    def estimate(self, network: Network, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
        """Mean of ``f(y + alpha sigma z_k)`` over ``n_samples`` draws, or ``f(y)``."""
        if self.n_samples == 0:
            return network(noisy, sigma)
        scale = self.alpha * per_sample(sigma, noisy)
        return mean_of_draws(self.n_samples, lambda: network(noisy + scale * randn_like(noisy, generator), sigma))


class Noisier2NoiseLoss(PairedLoss):
    """Noisier2Noise (Moran et al., CVPR 2020): learn ``E[y | y + alpha sigma n]``.

    Parameters
    ----------
    alpha : float, default=1.0
        Added noise ``alpha sigma`` relative to the data noise.
    n_samples : int, default=8
        Inference: mean of ``((1 + alpha^2) f(z_k) - z_k) / alpha^2`` over this many draws of
        ``z_k = y + alpha sigma n_k`` (each term is the paper's estimate; averaging only lowers
        its variance).

    Notes
    -----
    Equals GDSM (``docs/method.md`` section 2) with ``sigma_tg = 0`` and a fixed ``tau = alpha sigma``
    (``NoiseSchedule("fixed", tau_max=alpha)``): the GDSM prediction
    ``lambda_out h + lambda_skip z`` equals ``f(z)`` for ``h = ((1 + alpha^2) f - z) / alpha^2``.
    """

    name: ClassVar[str] = "noisier2noise"

    def __init__(self, alpha: float = 1.0, n_samples: int = 8) -> None:
        self.alpha, self.n_samples = _checked(alpha, n_samples, min_samples=1)

    def pair(self, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return ``(z, target) = (y + alpha sigma n, y)``."""
        z = noisy + self.alpha * per_sample(sigma, noisy) * randn_like(noisy, generator)
        return z, noisy

    def combine(self, output: Tensor, z: Tensor) -> Tensor:
        """Clean estimate ``((1 + alpha^2) f(z) - z) / alpha^2`` from ``f(z) ~ E[y | z]``."""
        a2 = self.alpha**2
        return ((1.0 + a2) * output - z[:, : output.shape[1]]) / a2

    def estimate(self, network: Network, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
        """Mean over ``n_samples`` draws of ``z`` of :meth:`combine`."""

        def draw() -> Tensor:
            z, _ = self.pair(noisy, sigma, generator)
            return self.combine(network(z, sigma), z)

        return mean_of_draws(self.n_samples, draw)
