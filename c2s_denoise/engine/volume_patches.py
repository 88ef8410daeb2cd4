"""Random 3-D training patches of volumes, with the flips and in-plane rotations valid for any voxel grid."""

from __future__ import annotations

import torch
from torch import Tensor

from .patches import PatchSampler, patch_shape

__all__ = ["VolumePatchSampler"]


class VolumePatchSampler(PatchSampler):
    """Draw random ``(patch_depth, patch_size, patch_size)`` patches from volumes of possibly different sizes.

    Parameters
    ----------
    images : list of Tensor, each (C, D, H, W)
        Training volumes (already normalised).
    noise_levels : Tensor, shape (n_volumes,)
        Noise level ``sigma_data`` of each volume.
    patch_size : int
        In-plane side of the patches (limited by the smallest ``H`` and ``W``).
    patch_depth : int
        Slices per patch (limited by the smallest ``D``).
    augment : bool, default=True
        Random flips along each axis, and in-plane transposes for square patches. The slice axis
        is never exchanged with an in-plane axis: voxels may be anisotropic (thick slices).
    air_rms, air_weight, signal_channels
        As for :class:`~c2s_denoise.engine.patches.PatchSampler` (background-only patches are
        kept with probability ``air_weight``).

    Notes
    -----
    Volumes are drawn with probability proportional to their number of voxels, positions
    uniformly: with ``air_weight=1`` every voxel is equally likely to be seen.
    """

    def __init__(
        self,
        images: list[Tensor],
        noise_levels: Tensor,
        patch_size: int,
        patch_depth: int,
        augment: bool = True,
        air_rms: Tensor | None = None,
        air_weight: float = 1.0,
        signal_channels: int = 1,
    ) -> None:
        super().__init__(images, noise_levels, patch_size, augment, air_rms, air_weight, signal_channels)
        if any(image.dim() != 4 for image in images):
            raise ValueError("volume patches need volumes (C, D, H, W)")
        self.patch_depth = patch_shape([tuple(image.shape) for image in images], patch_size, patch_depth)[0]
        voxels = torch.tensor([float(image[0].numel()) for image in images], dtype=torch.float64)
        self.weights = voxels / voxels.sum()

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return ``(patches (B, C, d, h, w), sigma_data (B,))``."""
        patches, chosen = [], []
        pd, ph, pw = self.patch_depth, self.patch_height, self.patch_width
        while len(patches) < batch_size:
            wanted = batch_size - len(patches)
            indices = torch.multinomial(self.weights, wanted, replacement=True, generator=generator)
            draws = torch.rand((wanted, 8), generator=generator, dtype=torch.float64)
            for index, draw in zip(indices.tolist(), draws.tolist()):
                image = self.images[index]
                depth, height, width = image.shape[-3:]
                front = int(draw[0] * (depth - pd + 1))
                top = int(draw[1] * (height - ph + 1))
                left = int(draw[2] * (width - pw + 1))
                patch = image[:, front : front + pd, top : top + ph, left : left + pw]
                if draw[7] >= self.air_weight and self.is_air(patch, index):
                    continue
                if self.augment:
                    for axis, value in zip((-1, -2, -3), draw[3:6]):
                        if value < 0.5:
                            patch = patch.flip(axis)
                    if ph == pw and draw[6] < 0.5:
                        patch = patch.transpose(-1, -2)
                patches.append(patch)
                chosen.append(index)
        return torch.stack(patches), self.noise_levels[torch.tensor(chosen)]
