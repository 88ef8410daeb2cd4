"""Random training patches with flips and 90-degree rotations, drawn mostly where there is signal."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["PatchSampler", "patch_shape"]


def patch_shape(shapes: list[tuple[int, ...]], patch_size: int, patch_depth: int | None = None) -> tuple[int, ...]:
    """The training patch for images ``(C, H, W)`` (or volumes ``(C, D, H, W)`` with ``patch_depth``) of these shapes.

    Each side is the requested one or the smallest image's, whichever is less: ``(h, w)``, or
    ``(d, h, w)`` with ``patch_depth``.

    >>> patch_shape([(1, 256, 256), (1, 40, 300)], 48)
    (40, 48)
    """
    sides = [min(patch_size, min(int(shape[axis]) for shape in shapes)) for axis in (-2, -1)]
    if patch_depth is not None:
        sides.insert(0, min(patch_depth, min(int(shape[-3]) for shape in shapes)))
    return tuple(sides)


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
    air_rms : Tensor, shape (n_images,), optional
        Root-mean-square of the noise alone in each image (``sigma_data`` for Gaussian noise on
        each channel, ``sigma_data * sqrt(2 * n_coils)`` for magnitude images). With it, a patch
        whose first ``signal_channels`` channels have a root-mean-square below
        ``air_rms + sigma_data`` holds only air (background noise) and is kept with probability
        ``air_weight``; None treats every patch as signal.
    air_weight : float, default=1.0
        Probability of keeping a drawn air patch (1 samples uniformly over the field of view).
    signal_channels : int, default=1
        Leading channels that decide whether a patch is air (the denoised channels).

    Notes
    -----
    Images are drawn with probability proportional to their number of pixels, and positions
    uniformly, so with ``air_weight=1`` every pixel of the training set is equally likely to be
    seen whatever the image sizes. Down-weighting air spends the training steps where the
    denoiser has work to do (docs/method.md section 3); the loss and its minimiser at every pixel
    are unchanged, only how often each kind of patch is seen.
    """

    def __init__(
        self,
        images: list[Tensor],
        noise_levels: Tensor,
        patch_size: int,
        augment: bool = True,
        air_rms: Tensor | None = None,
        air_weight: float = 1.0,
        signal_channels: int = 1,
    ) -> None:
        if not images:
            raise ValueError("no training images")
        if not 0.0 < air_weight <= 1.0:
            raise ValueError(f"air_weight must be in (0, 1], got {air_weight}")
        self.images = images
        self.noise_levels = noise_levels
        self.patch_height, self.patch_width = patch_shape([tuple(image.shape) for image in images], patch_size)
        areas = torch.tensor([float(image.shape[-2] * image.shape[-1]) for image in images], dtype=torch.float64)
        self.weights = areas / areas.sum()
        self.augment = augment
        self.air_rms = None if air_rms is None or air_weight == 1.0 else air_rms
        self.air_weight = float(air_weight)
        self.signal_channels = int(signal_channels)

    def is_air(self, patch: Tensor, index: int) -> bool:
        """Whether ``patch`` (C, h, w) of image ``index`` holds background noise only."""
        if self.air_rms is None:
            return False
        rms = patch[: self.signal_channels].square().mean().sqrt()
        return bool(rms < self.air_rms[index] + self.noise_levels[index])

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return ``(patches (B, C, h, w), sigma_data (B,))``."""
        patches, chosen = [], []
        ph, pw = self.patch_height, self.patch_width
        while len(patches) < batch_size:
            wanted = batch_size - len(patches)
            indices = torch.multinomial(self.weights, wanted, replacement=True, generator=generator)
            draws = torch.rand((wanted, 6), generator=generator, dtype=torch.float64)
            for index, draw in zip(indices.tolist(), draws.tolist()):
                image = self.images[index]
                height, width = image.shape[-2:]
                top = int(draw[0] * (height - ph + 1))
                left = int(draw[1] * (width - pw + 1))
                patch = image[:, top : top + ph, left : left + pw]
                if draw[5] >= self.air_weight and self.is_air(patch, index):
                    continue
                if self.augment:
                    if draw[2] < 0.5:
                        patch = patch.flip(-1)
                    if draw[3] < 0.5:
                        patch = patch.flip(-2)
                    if ph == pw and draw[4] < 0.5:
                        patch = patch.transpose(-1, -2)
                patches.append(patch)
                chosen.append(index)
        return torch.stack(patches), self.noise_levels[torch.tensor(chosen)]
