"""Inference: one forward pass at the data noise level, batched, optional self-ensemble."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor, nn

__all__ = ["denoise_images"]


def _dihedral(x: Tensor, k: int) -> Tensor:
    """Apply the ``k``-th of the 8 flips/90-degree rotations (k = 0..7)."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _inverse_dihedral(x: Tensor, k: int) -> Tensor:
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    if k >= 4:
        x = x.flip(-1)
    return x


@torch.inference_mode()
def denoise_images(
    network: nn.Module,
    images: list[Tensor],
    noise_levels: Tensor,
    *,
    device: torch.device,
    batch_size: int = 8,
    self_ensemble: bool = False,
) -> list[Tensor]:
    """Return ``h(y, sigma_data)`` for each image: no added noise, no sampling chain.

    Parameters
    ----------
    network : nn.Module
        Called as ``network(x, sigma)``.
    images : list of Tensor, each (C, H, W)
        Normalised noisy images (any sizes; equal sizes are batched together).
    noise_levels : Tensor, shape (n_images,)
        ``sigma_data`` of each image in normalised units.
    device : torch.device
    batch_size : int, default=8
        Images per forward pass.
    self_ensemble : bool, default=False
        Average the outputs over the 8 flips/rotations (8x the cost).

    Returns
    -------
    list of Tensor, each (out_channels, H, W), on the CPU.
    """
    network = network.to(device=device, memory_format=torch.channels_last).eval()
    by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        by_shape[tuple(image.shape)].append(index)
    outputs: list[Tensor | None] = [None] * len(images)
    transforms = range(8) if self_ensemble else range(1)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = torch.stack([images[i] for i in chunk]).to(device)
            sigma = noise_levels[chunk].to(device=device, dtype=batch.dtype)
            total = None
            for k in transforms:
                result = _inverse_dihedral(network(_dihedral(batch, k), sigma), k)
                total = result if total is None else total + result
            total = (total / len(transforms)).cpu()
            for position, index in enumerate(chunk):
                outputs[index] = total[position]
    return outputs  # type: ignore[return-value]
