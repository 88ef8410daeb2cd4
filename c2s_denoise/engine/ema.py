"""Exponential moving average (EMA) of network weights with a warm-up."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["ExponentialMovingAverage"]


class ExponentialMovingAverage:
    """Keep an EMA copy of a network's parameters and buffers.

    The decay used at update ``n`` (counting from 0) is ``min(decay, (1 + n) / (10 + n))``: a plain
    0.999 EMA is still mostly the random initial weights after a thousand steps, which ruins short
    CPU runs; the warm-up makes the average track the recent weights early on and settle to
    ``decay`` later.

    Parameters
    ----------
    network : nn.Module
        The network being trained; a frozen deep copy is averaged.
    decay : float, default=0.999
        Final decay, in [0, 1).
    """

    def __init__(self, network: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.n_updates = 0
        self.network = copy.deepcopy(network).eval()
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)

    def current_decay(self) -> float:
        """Decay applied by the next update."""
        return min(self.decay, (1.0 + self.n_updates) / (10.0 + self.n_updates))

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        """Blend the current weights of ``network`` into the average."""
        decay = self.current_decay()
        for averaged, current in zip(self.network.parameters(), network.parameters()):
            averaged.lerp_(current.detach(), 1.0 - decay)
        for averaged, current in zip(self.network.buffers(), network.buffers()):
            averaged.copy_(current)
        self.n_updates += 1
