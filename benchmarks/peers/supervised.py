"""Supervised Noise2Clean: the upper bound of the benchmark, ``||f(y) - x||^2`` on (noisy, clean) pairs."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .base import Network, PeerLoss, mse

__all__ = ["Noise2CleanLoss"]


class Noise2CleanLoss(PeerLoss):
    """Supervised Noise2Clean upper bound: ``||f(y) - x||^2`` on (noisy, clean) pairs."""

    name: ClassVar[str] = "noise2clean"
    needs_clean: ClassVar[bool] = True

    def __call__(
        self, network: Network, patches: Tensor, sigma_data: Tensor, generator: torch.Generator, progress: float
    ) -> Tensor:
        """Mean squared error of ``f(y)`` against the clean patches.

        ``patches`` holds the noisy channels followed by as many clean ones, as
        :func:`~peers.training.train_peer` samples them (noisy and clean cut and flipped alike).
        """
        channels = patches.shape[1]
        if channels % 2:
            raise ValueError(f"Noise2Clean needs the noisy and the clean patches as channels, got {channels} channels")
        noisy, clean = patches[:, : channels // 2], patches[:, channels // 2 :]
        output = network(noisy, sigma_data)
        return mse(output, clean[:, : output.shape[1]])
