"""Random training patches with flips and 90-degree rotations."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["PatchSampler"]


class PatchSampler:
    """Draw random patches from a list of images of possibly different sizes.

    Parameters
    ----------
    images : list of Tensor, each (C, H, W)
        Training images (already normalised).
    noise_levels : Tensor, shape (n_images,)
        Noise level ``sigma_data`` of each image.
    patch_size : int
        Side of the square patches; images smaller than that limit the patch to
        ``min(patch_size, smallest H)`` by ``min(patch_size, smallest W)``.
    augment : bool, default=True
        Random horizontal/vertical flips, and 90-degree rotations for square patches.

    Notes
    -----
    Images are drawn with probability proportional to their number of pixels, so every pixel of
    the training set is equally likely to be seen whatever the image sizes.
    """

    def __init__(self, images: list[Tensor], noise_levels: Tensor, patch_size: int, augment: bool = True) -> None:
        if not images:
            raise ValueError("no training images")
        self.images = images
        self.noise_levels = noise_levels
        self.patch_height = min(patch_size, min(int(image.shape[-2]) for image in images))
        self.patch_width = min(patch_size, min(int(image.shape[-1]) for image in images))
        areas = torch.tensor([float(image.shape[-2] * image.shape[-1]) for image in images], dtype=torch.float64)
        self.weights = areas / areas.sum()
        self.augment = augment

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return ``(patches (B, C, h, w), sigma_data (B,))``."""
        indices = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        draws = torch.rand((batch_size, 5), generator=generator, dtype=torch.float64)
        patches = []
        ph, pw = self.patch_height, self.patch_width
        for index, draw in zip(indices.tolist(), draws.tolist()):
            image = self.images[index]
            height, width = image.shape[-2:]
            top = int(draw[0] * (height - ph + 1))
            left = int(draw[1] * (width - pw + 1))
            patch = image[:, top : top + ph, left : left + pw]
            if self.augment:
                if draw[2] < 0.5:
                    patch = patch.flip(-1)
                if draw[3] < 0.5:
                    patch = patch.flip(-2)
                if ph == pw and draw[4] < 0.5:
                    patch = patch.transpose(-1, -2)
            patches.append(patch)
        return torch.stack(patches), self.noise_levels[indices]
