"""Blind-spot peers: Noise2Self and Noise2Void, which predict masked pixels from the others.

``Noise2SelfLoss``
    Batson & Royer, "Noise2Self: Blind Denoising by Self-Supervision", ICML 2019. Grid
    masking: one pixel per ``4 x 4`` cell, at the same position in every cell (a random one of
    the 16 partitions ``J`` per sample), replaced by the mean of its 8 neighbours (weights 1 on
    the edges, 1/2 on the corners); loss on the masked pixels only. Inference: the J-invariant
    reconstruction (16 masked passes), or ``f(y)``. The interpolating masker makes ``f(y)``
    unreliable (see :class:`BlindSpotLoss`), hence the J-invariant inference by default.
``Noise2VoidLoss``
    Krull, Buchholz & Jug, "Noise2Void - Learning Denoising from Single Noisy Images", CVPR
    2019. Stratified random masking: one pixel at a random position in each ``8 x 8`` cell
    (1.6% of the pixels; the n2v package's examples use 0.2% to 1.6% with batches of 128, ours
    is 8), each replaced by the value of a random *unmasked* pixel in its ``5 x 5``
    neighbourhood (not itself); loss on the masked pixels only.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Network, PeerLoss

__all__ = ["BlindSpotLoss", "Noise2SelfLoss", "Noise2VoidLoss", "blind_spot_mask"]


def blind_spot_mask(
    shape: tuple[int, int, int],
    spacing: int,
    *,
    shared_offset: bool,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> Tensor:
    """One masked pixel per ``spacing x spacing`` cell of each image.

    Parameters
    ----------
    shape : tuple of int
        ``(B, H, W)``.
    spacing : int
        Side of the cells; the masked fraction is ``1 / spacing**2`` (cells cut by the image
        border may lose their pixel).
    shared_offset : bool
        True: the same position in every cell of an image (a random one of the ``spacing**2``
        grid partitions of Noise2Self, drawn per image). False: an independent random position
        in each cell (the stratified sampling of Noise2Void).
    generator : torch.Generator
        CPU generator.
    device : torch.device or str, default="cpu"

    Returns
    -------
    Tensor, shape (B, 1, H, W), bool
    """
    batch, height, width = shape
    rows, cols = -(-height // spacing), -(-width // spacing)
    offset_shape = (batch, 2, 1, 1) if shared_offset else (batch, 2, rows, cols)
    offsets = torch.randint(0, spacing, offset_shape, generator=generator).expand(batch, 2, rows, cols)
    in_row = F.one_hot(offsets[:, 0], spacing).bool()  # (B, rows, cols, s)
    in_col = F.one_hot(offsets[:, 1], spacing).bool()
    cells = in_row[..., :, None] & in_col[..., None, :]  # (B, rows, cols, s, s)
    mask = cells.permute(0, 1, 3, 2, 4).reshape(batch, rows * spacing, cols * spacing)
    return mask[:, None, :height, :width].to(device)


_DONUT = torch.tensor([[0.5, 1.0, 0.5], [1.0, 0.0, 1.0], [0.5, 1.0, 0.5]])


class BlindSpotLoss(PeerLoss):
    """Blind-spot masking loss (Noise2Self / Noise2Void): predict masked pixels from the others.

    A mask selects one pixel per ``spacing x spacing`` cell (:func:`blind_spot_mask`); the
    masked pixels of the input are replaced using *unmasked* pixels only, so no masked pixel's
    own value (nor another masked pixel's) enters the network input; the squared error is
    averaged over the masked pixels only.

    Parameters
    ----------
    spacing : int, default=4
        One masked pixel per ``spacing x spacing`` cell.
    shared_offset : bool, default=True
        Same position in every cell (grid partition) or an independent one per cell.
    replacement : {"interpolate", "neighbour"}, default="interpolate"
        ``"interpolate"``: weighted mean of the unmasked pixels among the 8 neighbours (weights
        1 on the edges, 1/2 on the corners; Batson & Royer's "interpolate" masker).
        ``"neighbour"``: the value of one random unmasked pixel of the
        ``(2 radius + 1)``-square neighbourhood, the centre excluded (Noise2Void).
        A masked pixel without any unmasked neighbour (which needs a mask far denser than the
        defaults) is set to 0.
    radius : int, default=2
        Neighbourhood radius of the ``"neighbour"`` replacement.
    j_invariant_inference : bool, default=False
        Inference: False applies the network to the unmasked image, ``f(y)``. True (grid masks
        only) is Batson & Royer's J-invariant reconstruction (their ``Masker.infer_full_image``):
        for each of the ``spacing**2`` grid partitions, mask it as in training and keep the
        output at its pixels; ``spacing**2`` forward passes. With the interpolating masker the
        masked centre always equals the interpolation of its neighbours in training, so the
        network's response to the real centre value is never trained and ``f(y)`` can be
        worse than the input; the J-invariant reconstruction avoids that.
    """

    name: ClassVar[str] = "blind-spot"

    def __init__(
        self,
        spacing: int = 4,
        shared_offset: bool = True,
        replacement: str = "interpolate",
        radius: int = 2,
        j_invariant_inference: bool = False,
    ) -> None:
        if spacing < 2:
            raise ValueError(f"spacing must be >= 2, got {spacing}")
        if replacement not in ("interpolate", "neighbour"):
            raise ValueError(f"replacement must be 'interpolate' or 'neighbour', got {replacement!r}")
        if radius < 1:
            raise ValueError(f"radius must be >= 1, got {radius}")
        if j_invariant_inference and not shared_offset:
            raise ValueError("j_invariant_inference needs grid masks (shared_offset=True)")
        self.spacing = int(spacing)
        self.shared_offset = bool(shared_offset)
        self.replacement = replacement
        self.radius = int(radius)
        self.j_invariant_inference = bool(j_invariant_inference)

    def mask(self, noisy: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return ``(masked_input, mask)`` for a training batch.

        Parameters
        ----------
        noisy : Tensor, shape (B, C, H, W)
        generator : torch.Generator

        Returns
        -------
        masked_input : Tensor, shape (B, C, H, W)
            ``noisy`` with the masked pixels (all channels) replaced, see :meth:`replace`.
        mask : Tensor, shape (B, 1, H, W), bool
        """
        batch, _, height, width = noisy.shape
        mask = blind_spot_mask(
            (batch, height, width),
            self.spacing,
            shared_offset=self.shared_offset,
            generator=generator,
            device=noisy.device,
        )
        return self.replace(noisy, mask, generator), mask

    def replace(self, noisy: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
        """Replace the pixels of ``noisy`` where ``mask`` (B, 1, H, W) is True, from unmasked ones."""
        if self.replacement == "interpolate":
            replaced = self._interpolate(noisy, mask)
        else:
            replaced = self._neighbour(noisy, mask, generator)
        return torch.where(mask, replaced, noisy)

    def estimate(self, network: Network, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
        """``f(y)``, or the J-invariant reconstruction (see ``j_invariant_inference``)."""
        if not self.j_invariant_inference:
            return network(noisy, sigma)
        batch, _, height, width = noisy.shape
        result = None
        for row in range(self.spacing):
            for col in range(self.spacing):
                mask = torch.zeros((batch, 1, height, width), dtype=torch.bool, device=noisy.device)
                mask[..., row :: self.spacing, col :: self.spacing] = True
                output = network(self.replace(noisy, mask, generator), sigma)
                result = torch.where(mask, output, output.new_zeros(()) if result is None else result)
        return result

    @staticmethod
    def _interpolate(noisy: Tensor, mask: Tensor) -> Tensor:
        batch, channels, height, width = noisy.shape
        kernel = _DONUT.to(device=noisy.device, dtype=noisy.dtype)[None, None]
        valid = (~mask).to(noisy.dtype)
        total = F.conv2d((noisy * valid).reshape(batch * channels, 1, height, width), kernel, padding=1)
        weight = F.conv2d(valid, kernel, padding=1)
        total = total.reshape(batch, channels, height, width)
        return torch.where(weight > 0, total / weight.clamp_min(1e-12), torch.zeros_like(total))

    def _neighbour(self, noisy: Tensor, mask: Tensor, generator: torch.Generator) -> Tensor:
        height, width = noisy.shape[-2:]
        b, _, rows, cols = mask.nonzero(as_tuple=True)
        r = self.radius
        span = torch.arange(-r, r + 1, device=noisy.device)
        dy, dx = torch.meshgrid(span, span, indexing="ij")
        keep = (dy != 0) | (dx != 0)
        dy, dx = dy[keep], dx[keep]  # ((2r+1)^2 - 1,) offsets, centre excluded
        source_rows, source_cols = rows[:, None] + dy[None, :], cols[:, None] + dx[None, :]
        inside = (source_rows >= 0) & (source_rows < height) & (source_cols >= 0) & (source_cols < width)
        clamped_rows, clamped_cols = source_rows.clamp(0, height - 1), source_cols.clamp(0, width - 1)
        usable = inside & ~mask[b[:, None], 0, clamped_rows, clamped_cols]
        scores = torch.rand(usable.shape, generator=generator, dtype=noisy.dtype).to(noisy.device)
        pick = torch.where(usable, scores, torch.full_like(scores, -1.0)).argmax(dim=1)
        found = usable.gather(1, pick[:, None]).squeeze(1)
        pick_rows = clamped_rows.gather(1, pick[:, None]).squeeze(1)
        pick_cols = clamped_cols.gather(1, pick[:, None]).squeeze(1)
        values = noisy[b, :, pick_rows, pick_cols] * found[:, None].to(noisy.dtype)  # (M, C)
        replaced = noisy.clone()
        replaced[b, :, rows, cols] = values
        return replaced

    def __call__(
        self, network: Network, patches: Tensor, sigma_data: Tensor, generator: torch.Generator, progress: float
    ) -> Tensor:
        """Mean squared error at the masked pixels of ``f(masked_input)`` against the patches."""
        masked_input, mask = self.mask(patches, generator)
        output = network(masked_input, sigma_data)
        weight = mask.to(output.dtype)
        error = (output - patches[:, : output.shape[1]]).square() * weight
        return error.sum() / (weight.sum() * output.shape[1]).clamp_min(1.0)


class Noise2SelfLoss(BlindSpotLoss):
    """Noise2Self (Batson & Royer, ICML 2019): grid masking with interpolation, ``spacing=4``.

    Parameters
    ----------
    spacing : int, default=4
        Grid period: 1/16 of the pixels masked per step, as in the paper's masker.
    j_invariant_inference : bool, default=True
        J-invariant reconstruction at inference (16 forward passes), see :class:`BlindSpotLoss`.
    """

    name: ClassVar[str] = "noise2self"
    #: The network must not copy its input to its output: with the U-Net's skip path the masked
    #: pixel's replacement (the neighbours' mean) goes straight to the output and training
    #: stalls at the local mean (issue 13; see :class:`~peers.training.UNetWithoutSkip`).
    #: Noise2Void keeps the skip path: its replacement is one random neighbour, a poor
    #: estimate that the network learns to correct (measured: it trains as well with it).
    identity_skip: ClassVar[bool] = False

    def __init__(self, spacing: int = 4, j_invariant_inference: bool = True) -> None:
        super().__init__(
            spacing=spacing,
            shared_offset=True,
            replacement="interpolate",
            j_invariant_inference=j_invariant_inference,
        )


class Noise2VoidLoss(BlindSpotLoss):
    """Noise2Void (Krull, Buchholz & Jug, CVPR 2019): stratified masks, random-neighbour values.

    Parameters
    ----------
    spacing : int, default=8
        One masked pixel per ``8 x 8`` cell (1.6%; n2v's stratified sampling with
        ``box = sqrt(100 / perc_pix)``, i.e. ``perc_pix = 1.56``).
    radius : int, default=2
        The replacement comes from the ``5 x 5`` neighbourhood.
    """

    name: ClassVar[str] = "noise2void"
    #: At C2S's 5e-3 an 8000-step fit collapses for good a few hundred steps after the warm-up
    #: (issue 20, benchmarks/results/peer_collapse.md): a gradient spike drives the U-Net head's
    #: SiLU inputs to large negative values, no gradient passes any more and the output stays
    #: ``c_skip * y``. 2.5e-3 trains without it.
    learning_rate: ClassVar[float | None] = 2.5e-3

    def __init__(self, spacing: int = 8, radius: int = 2) -> None:
        super().__init__(spacing=spacing, shared_offset=False, replacement="neighbour", radius=radius)
