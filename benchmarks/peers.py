"""Self-supervised peer methods of the benchmark, trained like C2S on the same network and budget.

Each peer is a small *loss unit* (a :class:`PeerLoss`, an ``nn.Module`` without parameters) that
turns a batch of noisy training patches into a scalar loss, and knows how its trained network is
used at inference (:meth:`PeerLoss.estimate`). One shared loop, :func:`train_peer`, trains any
of them with exactly the recipe of :func:`c2s_denoise.engine.train_gdsm` (random patches with
flips/rotations from :class:`~c2s_denoise.engine.PatchSampler`, AdamW, linear warm-up then
cosine decay by :func:`~c2s_denoise.engine.warmup_cosine`, gradient clipping, EMA of the weights
by :class:`~c2s_denoise.engine.ExponentialMovingAverage` used for inference), and
:func:`denoise_peer` applies the EMA network through
:func:`~c2s_denoise.engine.denoise_images` (optionally with the 8-fold self-ensemble).

Peers
-----
``Noise2SelfLoss``
    Batson & Royer, "Noise2Self: Blind Denoising by Self-Supervision", ICML 2019. Grid
    masking: one pixel per ``4 x 4`` cell, at the same position in every cell (a random one of
    the 16 partitions ``J`` per sample), replaced by the mean of its 8 neighbours (weights 1 on
    the edges, 1/2 on the corners); loss on the masked pixels only. Inference: the J-invariant
    reconstruction (16 masked passes), or ``f(y)``.
``Noise2VoidLoss``
    Krull, Buchholz & Jug, "Noise2Void - Learning Denoising from Single Noisy Images", CVPR
    2019. Stratified random masking: one pixel at a random position in each ``8 x 8`` cell
    (1.6% of the pixels; the n2v package's examples use 0.2% to 1.6% with batches of 128, ours
    is 8), each replaced by the value of a random *unmasked* pixel in its ``5 x 5``
    neighbourhood (not itself); loss on the masked pixels only.
``R2RLoss``
    Pang et al., "Recorrupted-to-Recorrupted: Unsupervised Deep Learning for Image
    Denoising", CVPR 2021. With ``z ~ N(0, I)``:
    ``y_hat = y + alpha sigma z`` and ``y_bar = y - sigma z / alpha``; the noises of ``y_hat``
    and ``y_bar`` are uncorrelated, hence (Gaussian) independent, so
    ``E[y_bar | y_hat] = E[x | y_hat]``; loss ``||f(y_hat) - y_bar||^2``, ``alpha = 0.5``.
    Inference averages ``f(y + alpha sigma z_k)`` over ``n_samples`` draws as in the paper, or
    ``n_samples = 0`` evaluates ``f(y)``.
``Neighbor2NeighborLoss``
    Huang et al., "Neighbor2Neighbor: Self-Supervised Denoising from Single Noisy
    Images", CVPR 2021. In every ``2 x 2`` cell a random pair of *adjacent* pixels (one of the
    8 ordered horizontal/vertical pairs) defines the sub-images ``g1(y)``, ``g2(y)`` of half
    size; loss ``||f(g1(y)) - g2(y)||^2 + gamma ||f(g1(y)) - g2(y) - (g1(f(y)) - g2(f(y)))||^2``
    with ``f(y)`` under ``no_grad``; ``gamma = 2`` reached by a linear ramp over training, as in
    the authors' code. Inference: ``f(y)``.
``Noisier2NoiseLoss``
    Moran et al., "Noisier2Noise: Learning to Denoise from Unpaired Noisy Data", CVPR 2020.
    ``z = y + alpha sigma n``; the network learns ``f(z) ~ E[y | z]``; since
    ``E[y | z] = (alpha^2 E[x | z] + z) / (1 + alpha^2)``, the estimate is
    ``x_hat = ((1 + alpha^2) f(z) - z) / alpha^2`` (``2 f(z) - z`` for ``alpha = 1``),
    averaged over ``n_samples`` draws of ``z``. This is the GDSM special case of ``docs/method.md``
    section 2, target level ``sigma_tg = 0`` with one fixed added level ``tau = alpha sigma``:
    there ``lambda_out = alpha^2 / (1 + alpha^2)``, ``lambda_skip = 1 / (1 + alpha^2)``, and the
    GDSM prediction ``lambda_out h + lambda_skip z`` *is* ``f(z)`` when ``h = x_hat``, so both
    losses coincide (pinned by ``tests/test_peers.py``).
``Noise2CleanLoss``
    Supervised upper bound: ``||f(y) - x||^2`` on (noisy, clean) pairs; inference ``f(y)``.

Network
-------
All peers train :class:`c2s_denoise.engine.NoiseConditionedUNet` with
``noise_conditioning=False`` (see :func:`make_peer_network`), i.e. the C2S U-Net without the
noise-level embedding (the plain U-Net of the C2S paper's conditioning ablation): the peers
see one fixed noise level, so a plain U-Net is their standard network. The network is always called as
``network(x, sigma_data)``, with the data noise level of each image, in training and at
inference, whatever noise the peer's input carries: without conditioning ``sigma`` only sets the
network's EDM preconditioning constants (``c_in``, ``c_skip``, ``c_out``), so each peer is a
plain U-Net with a fixed input/output scaling and the same skip connection as C2S. Peers that
do not use the noise level in their loss (Noise2Self, Noise2Void, Neighbor2Neighbor,
Noise2Clean) only need a rough ``sigma``, e.g. an estimate; R2R and Noisier2Noise need it right.
Because of that skip connection (``c_skip`` is about 0.96 at ``sigma = 0.1``), Noise2Self's
interpolating masker makes ``f(y)`` unreliable (see :class:`BlindSpotLoss`), hence its
J-invariant inference by default.

Same budget means the same steps, batch and patch size; the cost of a step still differs
(Neighbor2Neighbor adds a no-grad pass on the full patch and trains on half-size sub-images),
and so does inference (R2R and Noisier2Noise average ``n_samples = 8`` passes, Noise2Self's
J-invariant reconstruction takes 16): time them.

All random draws (patches, masks, pairs, noise) come from one CPU ``torch.Generator`` seeded by
``seed``: a run is deterministic for a given seed and initial network on a given machine.
The peers are single-contrast (one input channel, as in their papers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from c2s_denoise.engine import (
    NoiseConditionedUNet,
    TrainingConfig,
    TrainingResult,
    denoise_images,
    resolve_device,
    train_network,
)

__all__ = [
    "PEERS",
    "BlindSpotLoss",
    "Neighbor2NeighborLoss",
    "Noise2CleanLoss",
    "Noise2SelfLoss",
    "Noise2VoidLoss",
    "Noisier2NoiseLoss",
    "PeerLoss",
    "R2RLoss",
    "blind_spot_mask",
    "denoise_peer",
    "make_peer",
    "make_peer_network",
    "neighbor_pair_indices",
    "neighbor_subsample",
    "train_peer",
]

Network = Callable[[Tensor, Tensor], Tensor]
ImageInput = np.ndarray | Sequence[np.ndarray] | Sequence[Tensor]


# ---------------------------------------------------------------------------------------- helpers
def _randn_like(x: Tensor, generator: torch.Generator) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn on the CPU from ``generator``."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)


def _per_sample(sigma: Tensor, x: Tensor) -> Tensor:
    """``sigma`` (B,) or scalar, shaped to broadcast against ``x`` (B, C, H, W)."""
    return sigma.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


def _mse(output: Tensor, target: Tensor) -> Tensor:
    return (output - target).square().mean()


# ---------------------------------------------------------------------------------------- base
class PeerLoss(nn.Module):
    """Base class of the peer loss units.

    A subclass implements :meth:`forward` (the training loss of a batch) and, when its inference
    is not simply ``f(y)``, :meth:`estimate`.
    """

    #: Short name used in tables.
    name: ClassVar[str] = "peer"
    #: True for losses that need the clean patches (supervised).
    needs_clean: ClassVar[bool] = False

    @property
    def stationary(self) -> bool:
        """Whether the loss's scale stays put during training, so that the trainer's divergence
        guard (a rise of the windowed mean loss) applies to it."""
        return True

    def forward(
        self,
        network: Network,
        noisy: Tensor,
        sigma: Tensor,
        *,
        generator: torch.Generator,
        clean: Tensor | None = None,
        progress: float = 1.0,
    ) -> Tensor:
        """Return the scalar training loss of a batch.

        Parameters
        ----------
        network : callable
            ``network(x, sigma)`` returning (B, C_out, H, W).
        noisy : Tensor, shape (B, C, H, W)
            Noisy training patches.
        sigma : Tensor, shape (B,)
            Data noise level of each patch (normalised units).
        generator : torch.Generator
            CPU generator for every random draw of the loss.
        clean : Tensor, shape (B, C_out, H, W), optional
            Clean patches (only for losses with ``needs_clean``).
        progress : float, default=1.0
            Fraction of training done, in (0, 1]; used by losses with a schedule.

        Returns
        -------
        Tensor
            Scalar loss.
        """
        raise NotImplementedError

    def estimate(self, network: Network, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
        """Denoised estimate of a batch at inference (default ``f(y)``).

        Parameters
        ----------
        network : callable
            The trained network, ``network(x, sigma)``.
        noisy : Tensor, shape (B, C, H, W)
        sigma : Tensor, shape (B,)
        generator : torch.Generator
            CPU generator for the inference-time noise of the stochastic estimators.

        Returns
        -------
        Tensor, shape (B, C_out, H, W)
        """
        return network(noisy, sigma)

    def extra_repr(self) -> str:
        public = {key: value for key, value in vars(self).items() if not key.startswith("_") and key != "training"}
        return ", ".join(f"{key}={value!r}" for key, value in public.items())


class _PairedLoss(PeerLoss):
    """``||f(input) - target||^2`` for an ``(input, target)`` pair drawn by :meth:`pair`."""

    def pair(self, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return the network input and the regression target of a batch."""
        raise NotImplementedError

    def forward(
        self,
        network: Network,
        noisy: Tensor,
        sigma: Tensor,
        *,
        generator: torch.Generator,
        clean: Tensor | None = None,
        progress: float = 1.0,
    ) -> Tensor:
        """Mean squared error of ``f(input)`` against ``target`` (see :meth:`pair`)."""
        network_input, target = self.pair(noisy, sigma, generator)
        output = network(network_input, sigma)
        return _mse(output, target[:, : output.shape[1]])


def _mean_of_draws(n: int, draw: Callable[[], Tensor]) -> Tensor:
    """Mean of ``n >= 1`` calls of ``draw()`` (stochastic inference averaged over draws)."""
    total = draw()
    for _ in range(n - 1):
        total = total + draw()
    return total / n


# ---------------------------------------------------------------------------------------- blind spot
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
        super().__init__()
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

    def forward(
        self,
        network: Network,
        noisy: Tensor,
        sigma: Tensor,
        *,
        generator: torch.Generator,
        clean: Tensor | None = None,
        progress: float = 1.0,
    ) -> Tensor:
        """Mean squared error at the masked pixels of ``f(masked_input)`` against ``noisy``."""
        masked_input, mask = self.mask(noisy, generator)
        output = network(masked_input, sigma)
        weight = mask.to(output.dtype)
        error = (output - noisy[:, : output.shape[1]]).square() * weight
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

    def __init__(self, spacing: int = 8, radius: int = 2) -> None:
        super().__init__(spacing=spacing, shared_offset=False, replacement="neighbour", radius=radius)


# ---------------------------------------------------------------------------------------- R2R
class R2RLoss(_PairedLoss):
    """Recorrupted-to-Recorrupted (Pang et al., CVPR 2021) for Gaussian noise of known level.

    Parameters
    ----------
    alpha : float, default=0.5
        Recorruption strength: ``y_hat = y + alpha sigma z``, ``y_bar = y - sigma z / alpha``.
    n_samples : int, default=8
        Inference: mean of ``f(y + alpha sigma z_k)`` over this many draws (the paper's averaged
        estimator); 0 evaluates ``f(y)`` once (the input then has less noise than in training).
    """

    name: ClassVar[str] = "r2r"

    def __init__(self, alpha: float = 0.5, n_samples: int = 8) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        if n_samples < 0:
            raise ValueError(f"n_samples must be >= 0, got {n_samples}")
        self.alpha = float(alpha)
        self.n_samples = int(n_samples)

    def pair(self, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return the recorrupted input and target ``(y_hat, y_bar)`` of a batch.

        Parameters
        ----------
        noisy : Tensor, shape (B, C, H, W)
        sigma : Tensor, shape (B,)
        generator : torch.Generator

        Returns
        -------
        y_hat, y_bar : Tensor, shape (B, C, H, W)
            ``y + alpha sigma z`` and ``y - sigma z / alpha`` with the same ``z ~ N(0, I)``.
        """
        z = _randn_like(noisy, generator) * _per_sample(sigma, noisy)
        return noisy + self.alpha * z, noisy - z / self.alpha

    def estimate(self, network: Network, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
        """Mean of ``f(y + alpha sigma z_k)`` over ``n_samples`` draws, or ``f(y)``."""
        if self.n_samples == 0:
            return network(noisy, sigma)
        scale = self.alpha * _per_sample(sigma, noisy)
        return _mean_of_draws(self.n_samples, lambda: network(noisy + scale * _randn_like(noisy, generator), sigma))


# ---------------------------------------------------------------------------------------- Nb2Nb
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

    def __init__(self, gamma: float = 2.0, ramp: bool = True) -> None:
        super().__init__()
        self.gamma = float(gamma)
        self.ramp = bool(ramp)

    @property
    def stationary(self) -> bool:
        """The ramped regulariser makes the loss grow on purpose: no divergence guard."""
        return not self.ramp

    def forward(
        self,
        network: Network,
        noisy: Tensor,
        sigma: Tensor,
        *,
        generator: torch.Generator,
        clean: Tensor | None = None,
        progress: float = 1.0,
    ) -> Tensor:
        """Reconstruction plus (ramped) regularisation loss on the two sub-images."""
        batch, _, height, width = noisy.shape
        if height < 2 or width < 2:
            raise ValueError("Neighbor2Neighbor needs patches of at least 2 x 2 pixels")
        first, second = neighbor_pair_indices((batch, height // 2, width // 2), generator)
        with torch.no_grad():
            full = network(noisy, sigma)
            expected_difference = neighbor_subsample(full, first) - neighbor_subsample(full, second)
        output = network(neighbor_subsample(noisy, first), sigma)
        target = neighbor_subsample(noisy, second)[:, : output.shape[1]]
        reconstruction = _mse(output, target)
        regulariser = _mse(output - target, expected_difference)
        weight = self.gamma * (progress if self.ramp else 1.0)
        return reconstruction + weight * regulariser


# ---------------------------------------------------------------------------------------- Noisier2Noise
class Noisier2NoiseLoss(_PairedLoss):
    """Noisier2Noise (Moran et al., CVPR 2020): learn ``E[y | y + alpha sigma n]``.

    Parameters
    ----------
    alpha : float, default=1.0
        Added noise ``alpha sigma`` relative to the data noise.
    n_samples : int, default=8
        Inference: mean of ``((1 + alpha^2) f(z_k) - z_k) / alpha^2`` over this many draws of
        ``z_k = y + alpha sigma n_k`` (each term is the paper's estimate; averaging only lowers
        its variance).

    Notes
    -----
    Equals GDSM (``docs/method.md`` section 2) with ``sigma_tg = 0`` and a fixed ``tau = alpha sigma``
    (``NoiseSchedule("fixed", tau_max=alpha)``): the GDSM prediction
    ``lambda_out h + lambda_skip z`` equals ``f(z)`` for ``h = ((1 + alpha^2) f - z) / alpha^2``.
    """

    name: ClassVar[str] = "noisier2noise"

    def __init__(self, alpha: float = 1.0, n_samples: int = 8) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        self.alpha = float(alpha)
        self.n_samples = int(n_samples)

    def pair(self, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return ``(z, target) = (y + alpha sigma n, y)``."""
        z = noisy + self.alpha * _per_sample(sigma, noisy) * _randn_like(noisy, generator)
        return z, noisy

    def combine(self, output: Tensor, z: Tensor) -> Tensor:
        """Clean estimate ``((1 + alpha^2) f(z) - z) / alpha^2`` from ``f(z) ~ E[y | z]``."""
        a2 = self.alpha**2
        return ((1.0 + a2) * output - z[:, : output.shape[1]]) / a2

    def estimate(self, network: Network, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
        """Mean over ``n_samples`` draws of ``z`` of :meth:`combine`."""

        def draw() -> Tensor:
            z, _ = self.pair(noisy, sigma, generator)
            return self.combine(network(z, sigma), z)

        return _mean_of_draws(self.n_samples, draw)


# ---------------------------------------------------------------------------------------- Noise2Clean
class Noise2CleanLoss(PeerLoss):
    """Supervised Noise2Clean upper bound: ``||f(y) - x||^2`` on (noisy, clean) pairs."""

    name: ClassVar[str] = "noise2clean"
    needs_clean: ClassVar[bool] = True

    def forward(
        self,
        network: Network,
        noisy: Tensor,
        sigma: Tensor,
        *,
        generator: torch.Generator,
        clean: Tensor | None = None,
        progress: float = 1.0,
    ) -> Tensor:
        """Mean squared error of ``f(y)`` against the clean patches."""
        if clean is None:
            raise ValueError("Noise2Clean needs the clean patches")
        output = network(noisy, sigma)
        return _mse(output, clean[:, : output.shape[1]])


#: Peer loss classes by name.
PEERS: dict[str, type[PeerLoss]] = {
    cls.name: cls
    for cls in (Noise2SelfLoss, Noise2VoidLoss, R2RLoss, Neighbor2NeighborLoss, Noisier2NoiseLoss, Noise2CleanLoss)
}


def make_peer(name: str, **kwargs: object) -> PeerLoss:
    """Instantiate a peer loss by its name in :data:`PEERS` (keyword arguments go to the class)."""
    try:
        return PEERS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown peer {name!r}; choose from {sorted(PEERS)}") from None


# ---------------------------------------------------------------------------------------- training
def make_peer_network(
    width: int = 16, depth: int = 3, attention: bool = False, *, in_channels: int = 1, seed: int = 0
) -> NoiseConditionedUNet:
    """The C2S U-Net without noise-level conditioning, initialised from ``seed``.

    Parameters
    ----------
    width, depth, attention : see :class:`c2s_denoise.engine.NoiseConditionedUNet`
        Use the C2S model's values for a like-for-like comparison (defaults: the estimator's).
    in_channels : int, default=1
    seed : int, default=0
        Seed of the weight initialisation (the global torch RNG is left untouched).

    Returns
    -------
    NoiseConditionedUNet
        With ``noise_conditioning=False`` and one output channel.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NoiseConditionedUNet(
            in_channels=in_channels,
            out_channels=1,
            width=width,
            depth=depth,
            attention=attention,
            noise_conditioning=False,
        )


def _as_tensors(images: ImageInput) -> list[Tensor]:
    """(n, H, W) or (n, C, H, W) arrays, or sequences of (H, W)/(C, H, W) arrays or tensors."""
    if isinstance(images, (np.ndarray, Tensor)):
        if images.ndim not in (3, 4):
            raise ValueError(f"expected an array (n, H, W) or (n, C, H, W), got shape {tuple(images.shape)}")
        images = list(images)
    tensors = []
    for image in images:
        tensor = image if isinstance(image, Tensor) else torch.from_numpy(np.asarray(image))
        tensor = tensor.detach().to(device="cpu", dtype=torch.float32)
        if tensor.ndim == 2:
            tensor = tensor[None]
        if tensor.ndim != 3:
            raise ValueError(f"each image must be (H, W) or (C, H, W), got shape {tuple(tensor.shape)}")
        tensors.append(tensor.contiguous())
    if not tensors:
        raise ValueError("no images")
    return tensors


def _as_levels(noise_levels: float | Sequence[float] | np.ndarray | Tensor, n: int) -> Tensor:
    levels = torch.as_tensor(np.asarray(noise_levels, dtype=np.float32).reshape(-1))
    if levels.numel() == 1:
        levels = levels.expand(n).clone()
    if levels.numel() != n or not bool((levels > 0).all()):
        raise ValueError(f"noise_levels must be one positive value or one per image ({n})")
    return levels


def train_peer(
    loss: PeerLoss,
    network: nn.Module,
    images: ImageInput,
    noise_levels: float | Sequence[float] | np.ndarray | Tensor,
    *,
    clean: ImageInput | None = None,
    max_iter: int = TrainingConfig.max_iter,
    batch_size: int = TrainingConfig.batch_size,
    patch_size: int = TrainingConfig.patch_size,
    learning_rate: float = TrainingConfig.learning_rate,
    weight_decay: float = TrainingConfig.weight_decay,
    warmup_fraction: float = TrainingConfig.warmup_fraction,
    final_lr_fraction: float = TrainingConfig.final_lr_fraction,
    ema_decay: float = TrainingConfig.ema_decay,
    grad_clip: float | None = TrainingConfig.grad_clip,
    augment: bool = TrainingConfig.augment,
    seed: int = 0,
    device: str | torch.device = "cpu",
    verbose: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Train ``network`` with a peer loss, with the C2S training recipe and budget.

    Same steps as :func:`c2s_denoise.engine.train_gdsm` (defaults from
    :class:`~c2s_denoise.engine.TrainingConfig`): random ``patch_size`` patches with flips and
    transposition, AdamW, ``warmup_cosine`` learning rate per step, gradient-norm clipping, EMA
    of the weights (with warm-up), channels-last memory format, denormals flushed on CPU.

    Parameters
    ----------
    loss : PeerLoss
        The peer's loss unit.
    network : nn.Module
        ``network(x, sigma)``; trained in place (see :func:`make_peer_network`).
    images : array (n, H, W) / (n, C, H, W), or sequence of (H, W) / (C, H, W) arrays or tensors
        Noisy training images, already normalised (e.g. in [0, 1]); sizes may differ.
    noise_levels : float or sequence of float
        Data noise level of every image (one value for all), in the units of ``images``.
    clean : same layout as ``images``, optional
        Clean images, required by losses with ``needs_clean`` (Noise2Clean); they are cut into
        the same patches, with the same flips, as the noisy images.
    max_iter, batch_size, patch_size, learning_rate, weight_decay, warmup_fraction, \
final_lr_fraction, ema_decay, grad_clip, augment
        As in :class:`~c2s_denoise.engine.TrainingConfig`.
    seed : int, default=0
        Seed of the CPU generator of every random draw (patches, masks, noise).
    device : str or torch.device, default="cpu"
        ``"auto"`` picks CUDA, then MPS, then the CPU.
    verbose : int, default=0
        ``> 0`` shows a progress bar on stderr.
    callback : callable, optional
        ``callback(step, loss)`` after each step.

    Returns
    -------
    TrainingResult
        ``network`` is the EMA copy in eval mode; ``loss_curve`` the loss of every step. A
        ``KeyboardInterrupt`` stops early with ``interrupted=True``.
    """
    device = resolve_device(device)
    noisy_images = _as_tensors(images)
    levels = _as_levels(noise_levels, len(noisy_images))
    channels = int(noisy_images[0].shape[0])
    if loss.needs_clean:
        if clean is None:
            raise ValueError(f"{loss.name} needs the clean images (clean=...)")
        clean_images = _as_tensors(clean)
        if [c.shape[-2:] for c in clean_images] != [n.shape[-2:] for n in noisy_images]:
            raise ValueError("clean images must have the sizes of the noisy images")
        sampled = [torch.cat([n, c]) for n, c in zip(noisy_images, clean_images)]
    else:
        sampled = noisy_images
    config = TrainingConfig(
        max_iter=max_iter,
        batch_size=batch_size,
        patch_size=patch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_fraction=warmup_fraction,
        final_lr_fraction=final_lr_fraction,
        ema_decay=ema_decay,
        grad_clip=grad_clip,
        augment=augment,
        divergence_guard=loss.stationary,
    )

    def loss_step(net: nn.Module, patches: Tensor, sigma: Tensor, generator: torch.Generator, progress: float) -> Tensor:
        clean_patches = patches[:, channels:] if loss.needs_clean else None
        return loss(net, patches[:, :channels], sigma, generator=generator, clean=clean_patches, progress=progress)

    return train_network(
        network,
        sampled,
        levels,
        loss_step=loss_step,
        config=config,
        generator=torch.Generator().manual_seed(int(seed)),
        device=device,
        verbose=verbose,
        callback=callback,
        description=f"{loss.name} fit",
    )


# ---------------------------------------------------------------------------------------- inference
class _PeerEstimator(nn.Module):
    """``(x, sigma) -> loss.estimate(network, x, sigma)``, for :func:`denoise_images`."""

    def __init__(self, loss: PeerLoss, network: nn.Module, generator: torch.Generator) -> None:
        super().__init__()
        self.loss = loss
        self.network = network
        self.generator = generator

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        return self.loss.estimate(self.network, x, sigma, self.generator)


def denoise_peer(
    loss: PeerLoss,
    network: nn.Module,
    images: ImageInput,
    noise_levels: float | Sequence[float] | np.ndarray | Tensor,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    self_ensemble: bool = False,
    seed: int = 0,
) -> np.ndarray | list[Tensor]:
    """Denoise images with a network trained by :func:`train_peer`, the peer's way.

    Parameters
    ----------
    loss : PeerLoss
        The loss unit the network was trained with (it defines the estimator, e.g. R2R's and
        Noisier2Noise's averages over added noise).
    network : nn.Module
        The trained (EMA) network.
    images : array (n, H, W) / (n, C, H, W), or sequence of (H, W) / (C, H, W) arrays or tensors
        Noisy images in the training units.
    noise_levels : float or sequence of float
        Noise level of every image (one value for all).
    device : str or torch.device, default="cpu"
    batch_size : int, default=8
        Images per forward pass.
    self_ensemble : bool, default=False
        Average over the 8 flips/rotations (8x the cost).
    seed : int, default=0
        Seed of the inference-time noise of the stochastic estimators.

    Returns
    -------
    ndarray or list of Tensor
        For an array input, an array of the input's shape (float64 for float64 input, else
        float32); otherwise a list of (1, H, W) tensors.
    """
    tensors = _as_tensors(images)
    levels = _as_levels(noise_levels, len(tensors))
    estimator = _PeerEstimator(loss, network, torch.Generator().manual_seed(int(seed)))
    outputs = denoise_images(
        estimator, tensors, levels, device=resolve_device(device), batch_size=batch_size, self_ensemble=self_ensemble
    )
    if not isinstance(images, np.ndarray):
        return outputs
    stacked = torch.stack(outputs).numpy()
    if images.ndim == 3:
        stacked = stacked[:, 0]
    return stacked.astype(np.float64 if images.dtype == np.float64 else np.float32)
