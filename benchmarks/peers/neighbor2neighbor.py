"""Neighbor2Neighbor: a network trained to map one random neighbour sub-image to another.

Huang et al., "Neighbor2Neighbor: Self-Supervised Denoising from Single Noisy Images", CVPR
2021. In every ``2 x 2`` cell a random pair of *adjacent* pixels (one of the 8 ordered
horizontal/vertical pairs) defines the sub-images ``g1(y)``, ``g2(y)`` of half size; loss
``||f(g1(y)) - g2(y)||^2 + gamma ||f(g1(y)) - g2(y) - (g1(f(y)) - g2(f(y)))||^2`` with ``f(y)``
under ``no_grad``; ``gamma = 2`` reached by a linear ramp over training, as in the authors'
code. Inference: ``f(y)``. A step costs more than the others' (a no-grad pass on the full
patch, then training on half-size sub-images).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .base import Network, PeerLoss, mse

__all__ = ["Neighbor2NeighborLoss", "neighbor_pair_indices", "neighbor_subsample"]

# Cell positions are numbered 2 * row + column in each 2x2 cell; the 8 ordered pairs of
# horizontally or vertically adjacent positions.
_ADJACENT_PAIRS = torch.tensor([[0, 1], [0, 2], [1, 0], [1, 3], [2, 0], [2, 3], [3, 1], [3, 2]])


def neighbor_pair_indices(shape: tuple[int, int, int], generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random neighbour sub-sampler of Neighbor2Neighbor: the pair of positions in each cell.

    Parameters
    ----------
    shape : tuple of int
        ``(B, H // 2, W // 2)``, the number of ``2 x 2`` cells of each image.
    generator : torch.Generator

    Returns
    -------
    first, second : Tensor, shape (B, H // 2, W // 2), int64
        Positions ``2 * row + column`` in {0, 1, 2, 3} of ``g1`` and ``g2`` in each cell, always
        two different, horizontally or vertically adjacent pixels.
    """
    choice = torch.randint(0, len(_ADJACENT_PAIRS), shape, generator=generator)
    pairs = _ADJACENT_PAIRS[choice]
    return pairs[..., 0], pairs[..., 1]


def neighbor_subsample(x: Tensor, index: Tensor) -> Tensor:
    """Pick one pixel per ``2 x 2`` cell: the sub-image ``g(x)`` of half size.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
        An odd last row/column is dropped.
    index : Tensor, shape (B, H // 2, W // 2)
        Position ``2 * row + column`` of the chosen pixel in each cell (shared by the channels).

    Returns
    -------
    Tensor, shape (B, C, H // 2, W // 2)
    """
    batch, channels, height, width = x.shape
    rows, cols = height // 2, width // 2
    cells = x[..., : 2 * rows, : 2 * cols].reshape(batch, channels, rows, 2, cols, 2)
    cells = cells.permute(0, 1, 2, 4, 3, 5).reshape(batch, channels, rows, cols, 4)
    index = index.to(x.device)[:, None, :, :, None].expand(batch, channels, rows, cols, 1)
    return cells.gather(-1, index).squeeze(-1)


class Neighbor2NeighborLoss(PeerLoss):
    """Neighbor2Neighbor (Huang et al., CVPR 2021).

    Parameters
    ----------
    gamma : float, default=2.0
        Weight of the regulariser ``||f(g1(y)) - g2(y) - (g1(f(y)) - g2(f(y)))||^2``.
    ramp : bool, default=True
        Grow the weight linearly, ``gamma * progress``, as the authors' code does (their
        ``increase_ratio = 2``); False uses ``gamma`` from the first step.
    """

    name: ClassVar[str] = "neighbor2neighbor"
    #: At C2S's 5e-3 an 8000-step fit collapses for good near step 1650 (issue 20, the same dead
    #: SiLU head as Noise2Void's, see benchmarks/results/peer_collapse.md); 2.5e-3 trains without it.
    learning_rate: ClassVar[float | None] = 2.5e-3

    def __init__(self, gamma: float = 2.0, ramp: bool = True) -> None:
        self.gamma = float(gamma)
        self.ramp = bool(ramp)

    @property
    def stationary(self) -> bool:
        """The ramped regulariser makes the loss grow on purpose: no divergence guard."""
        return not self.ramp

    def __call__(
        self, network: Network, patches: Tensor, sigma_data: Tensor, generator: torch.Generator, progress: float
    ) -> Tensor:
        """Reconstruction plus (ramped) regularisation loss on the two sub-images."""
        batch, _, height, width = patches.shape
        if height < 2 or width < 2:
            raise ValueError("Neighbor2Neighbor needs patches of at least 2 x 2 pixels")
        first, second = neighbor_pair_indices((batch, height // 2, width // 2), generator)
        with torch.no_grad():
            full = network(patches, sigma_data)
            expected_difference = neighbor_subsample(full, first) - neighbor_subsample(full, second)
        output = network(neighbor_subsample(patches, first), sigma_data)
        target = neighbor_subsample(patches, second)[:, : output.shape[1]]
        reconstruction = mse(output, target)
        regulariser = mse(output - target, expected_difference)
        weight = self.gamma * (progress if self.ramp else 1.0)
        return reconstruction + weight * regulariser
