"""Volumetric (3-D) networks in the estimator: which network a fit builds, the volumes it needs, their tensors.

With ``spatial_dims=3`` each item ``(n_contrasts, D, H, W)`` is one network input
``(n_channels, D, H, W)`` (docs/method.md section 6, "Volumes") instead of ``D`` slice inputs. The channel
plan is the 2-D one without neighbouring slices: the network sees them through its 3-D
convolutions.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["check_volumes", "min_volume_depth", "resolve_spatial_dims", "slices_to_volumes", "volumes_to_slices"]


def min_volume_depth(depth: int) -> int:
    """Fewest slices a volume needs for a 3-D U-Net of ``depth`` levels: one voxel at its lowest resolution."""
    return 2 ** (depth - 1)


def resolve_spatial_dims(spatial_dims: int | str, items: list[np.ndarray], context_slices: int | str) -> int:
    """The network's dimensions for a fit: ``spatial_dims``, or for ``"auto"`` 3 when every item is a volume.

    Parameters
    ----------
    spatial_dims : {2, 3, "auto"}
    items : list of ndarray, each (n_contrasts, D, H, W)
    context_slices : int or "auto"
        Neighbouring slices as channels belong to the 2-D network (a number > 0 makes ``"auto"``
        give 2; ``context_slices="auto"`` yields to a 3-D network).

    Raises
    ------
    ValueError
        For ``spatial_dims=3`` with ``context_slices > 0``.
    """
    if spatial_dims == "auto":
        return 3 if context_slices in (0, "auto") and all(item.shape[1] > 1 for item in items) else 2
    if spatial_dims == 3 and context_slices not in (0, "auto"):
        raise ValueError(
            f"context_slices={context_slices} is for the slice-by-slice network (spatial_dims=2); a 3-D network "
            "(spatial_dims=3) sees the neighbouring slices through its convolutions: use context_slices=0"
        )
    return int(spatial_dims)


def check_volumes(items: list[np.ndarray], depth: int) -> None:
    """Raise for the first item that a 3-D network of ``depth`` levels cannot denoise, naming it.

    Parameters
    ----------
    items : list of ndarray, each (n_contrasts, D, H, W)
    depth : int
        Levels of the U-Net; volumes need at least ``2 ** (depth - 1)`` slices.
    """
    needed = min_volume_depth(depth)
    for index, item in enumerate(items):
        slices = item.shape[1]
        if slices == 1:
            raise ValueError(
                f"item {index} is a 2-D image (one slice of shape {item.shape[2:]}) but the model is 3-D "
                f"(spatial_dims=3): it denoises volumes (D, H, W) of at least {needed} slices; pass volumes "
                "(a 4-D array or a list of (D, H, W) arrays), or use spatial_dims=2 for images"
            )
        if slices < needed:
            raise ValueError(
                f"item {index} has {slices} slices, thinner than the 3-D network's field of view along z: a U-Net "
                f"of depth={depth} needs volumes of at least {needed} slices; use spatial_dims=2 for "
                "thin volumes, or a smaller depth"
            )


def slices_to_volumes(inputs: list[torch.Tensor], levels: torch.Tensor, depths: list[int]):
    """Per-slice inputs ``(C, H, W)`` and levels grouped into volumes ``(C, D, H, W)``, one level each.

    ``depths`` gives the slices of each volume, in order; the slices of a volume share one level.
    """
    volumes, volume_levels, position = [], [], 0
    for depth in depths:
        volumes.append(torch.stack(inputs[position : position + depth], dim=1))
        volume_levels.append(levels[position])
        position += depth
    return volumes, torch.stack(volume_levels)


def volumes_to_slices(outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Denoised volumes ``(C, D, H, W)`` as the list of their slices ``(C, H, W)``, in order."""
    return [piece for volume in outputs for piece in volume.unbind(1)]
