"""Inference: one forward pass at the data noise level, batched, optional self-ensemble.

Images ``(C, H, W)`` go through a 2-D network in batches of equal shapes on an accelerator, one at a
time on the CPU (:data:`BATCH_ON_CPU`); volumes ``(C, D, H, W)`` through a 3-D network one at a
time, in overlapping slabs along the slice axis when large.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor, nn

__all__ = ["denoise_images"]

#: Voxels per slab of a volume at inference (about 0.3 GB per feature map of 16 channels).
MAX_SLAB_VOXELS = 2**22
#: Slices of context on each side of a slab, discarded after the pass.
SLAB_MARGIN = 8
#: Images per forward pass on the CPU, whatever ``batch_size`` says: one, so that an image's result does not
#: depend on the images denoised with it. Batched CPU convolutions and matrix products sum in an order that
#: depends on the batch size (float32 results then differ by about 1e-7, and scikit-learn's
#: check_methods_subset_invariance fails). It costs nothing at MRI sizes: ``transform`` of 256 x 256 slices
#: (width 16, two CPU cores) took 55-59 ms a slice batched by 8 and 34 ms one at a time (self-ensemble: 372
#: against 218 ms); tiny 64 x 64 slices 2-3 against 4 ms.
BATCH_ON_CPU = 1


def _dihedral(x: Tensor, k: int) -> Tensor:
    """Apply the ``k``-th of the 8 flips/90-degree rotations (k = 0..7) in the plane; volumes also flip in z for odd k.

    In-plane rotations and flips, and flips along the slice axis, are valid for any voxel size;
    the slice axis is never exchanged with an in-plane one.
    """
    if x.dim() == 5 and k % 2:
        x = x.flip(-3)
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _inverse_dihedral(x: Tensor, k: int) -> Tensor:
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    if k >= 4:
        x = x.flip(-1)
    if x.dim() == 5 and k % 2:
        x = x.flip(-3)
    return x


def _ensemble(network: nn.Module, batch: Tensor, sigma: Tensor, n_transforms: int) -> Tensor:
    """Average of the network's outputs over the first ``n_transforms`` flips/rotations."""
    total = None
    for k in range(n_transforms):
        result = _inverse_dihedral(network(_dihedral(batch, k), sigma), k)
        total = result if total is None else total + result
    return total / n_transforms


def _denoise_volume(network: nn.Module, volume: Tensor, sigma: Tensor, n_transforms: int) -> Tensor:
    """Denoise one volume ``(1, C, D, H, W)`` in slabs along the slice axis with ``SLAB_MARGIN`` slices of overlap."""
    depth = volume.shape[2]
    slab = max(1, MAX_SLAB_VOXELS // max(1, volume[0, 0, 0].numel()) - 2 * SLAB_MARGIN)
    if slab >= depth:
        return _ensemble(network, volume, sigma, n_transforms)
    parts = []
    for start in range(0, depth, slab):
        stop = min(depth, start + slab)
        low, high = max(0, start - SLAB_MARGIN), min(depth, stop + SLAB_MARGIN)
        low = max(0, min(low, high - getattr(network, "min_depth", 1)))
        result = _ensemble(network, volume[:, :, low:high], sigma, n_transforms)
        parts.append(result[:, :, start - low : stop - low])
    return torch.cat(parts, dim=2)


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
    """Return ``h(y, sigma_data)`` for each image or volume: no added noise, no sampling chain.

    Parameters
    ----------
    network : nn.Module
        Called as ``network(x, sigma)``.
    images : list of Tensor, each (C, H, W), or (C, D, H, W) for a 3-D network
        Normalised noisy images (any sizes; equal sizes are batched together) or volumes (one
        at a time, in slabs of about ``MAX_SLAB_VOXELS`` voxels along the slice axis).
    noise_levels : Tensor, shape (n_images,)
        ``sigma_data`` of each image in normalised units.
    device : torch.device
    batch_size : int, default=8
        Images per forward pass on an accelerator; on the CPU one (:data:`BATCH_ON_CPU`), so that
        each image's result is the same whichever images are denoised with it.
    self_ensemble : bool, default=False
        Average the outputs over the 8 in-plane flips/rotations (volumes: with a flip along the
        slice axis on every other one), 8x the cost.

    Returns
    -------
    list of Tensor, each (out_channels, H, W) or (out_channels, D, H, W), on the CPU.
    """
    memory_format = getattr(network, "memory_format", torch.channels_last)
    network = network.to(device=device, memory_format=memory_format).eval()
    n_transforms = 8 if self_ensemble else 1
    outputs: list[Tensor | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        if image.dim() == 4:
            sigma = noise_levels[index : index + 1].to(device=device, dtype=image.dtype)
            outputs[index] = _denoise_volume(network, image[None].to(device), sigma, n_transforms)[0].cpu()
        else:
            by_shape[tuple(image.shape)].append(index)
    step = BATCH_ON_CPU if torch.device(device).type == "cpu" else batch_size
    for indices in by_shape.values():
        for start in range(0, len(indices), step):
            chunk = indices[start : start + step]
            batch = torch.stack([images[i] for i in chunk]).to(device)
            sigma = noise_levels[chunk].to(device=device, dtype=batch.dtype)
            total = _ensemble(network, batch, sigma, n_transforms).cpu()
            for position, index in enumerate(chunk):
                outputs[index] = total[position]
    return outputs  # type: ignore[return-value]
