"""Training and inference of the peers: :func:`train_peer`, :func:`denoise_peer`, the registry.

:func:`train_peer` hands the peer loss itself to :func:`c2s_denoise.engine.train_network` as its
``loss_step``, exactly as C2S hands it a :class:`~c2s_denoise.engine.GDSMStep`: same patches
with flips/rotations (:class:`~c2s_denoise.engine.PatchSampler`), AdamW, linear warm-up then
cosine decay (:func:`~c2s_denoise.engine.warmup_cosine`), gradient clipping and EMA of the
weights (:class:`~c2s_denoise.engine.ExponentialMovingAverage`) used for inference.
:func:`denoise_peer` applies the EMA network the peer's way (:meth:`PeerLoss.estimate`) through
:func:`~c2s_denoise.engine.denoise_images`, optionally with the 8-fold self-ensemble.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from c2s_denoise import C2SDenoiser
from c2s_denoise.engine import (
    NoiseConditionedUNet,
    TrainingConfig,
    TrainingResult,
    denoise_images,
    resolve_device,
    resolve_training_dtype,
    train_network,
)
from c2s_denoise.engine.prior import FROM_RANDOM_WEIGHTS

from .base import PeerLoss
from .blind_spot import Noise2SelfLoss, Noise2VoidLoss
from .neighbor2neighbor import Neighbor2NeighborLoss
from .paired import Noisier2NoiseLoss, R2RLoss
from .supervised import Noise2CleanLoss

#: C2S's defaults from random weights: the peers train with the same batch, patch, learning rate and EMA
#: unless told otherwise.
_C2S_DEFAULTS = {**C2SDenoiser().get_params(), **FROM_RANDOM_WEIGHTS}

__all__ = ["PEERS", "UNetWithoutSkip", "denoise_peer", "make_peer", "make_peer_network", "train_peer"]

ImageInput = np.ndarray | Sequence[np.ndarray] | Sequence[Tensor]

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


class UNetWithoutSkip(nn.Module):
    """The C2S U-Net's backbone ``F`` alone: ``h(x, sigma) = F(x / signal_std)``, no skip path.

    :class:`~c2s_denoise.engine.NoiseConditionedUNet` outputs
    ``c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x)``, with ``c_skip`` about 0.96 and ``c_out``
    about 0.1 at ``sigma = 25/255``. For a blind-spot loss that identity path hands the masked
    pixel's *replacement* (the neighbours' mean for Noise2Self, a neighbour's value for
    Noise2Void) straight to the output, and ``F`` has to learn the correction at a tenth of the
    scale: measured on the benchmark's MNI152 slices (sigma 25/255, 1000 steps), Noise2Self's
    loss never leaves the local-mean level and its output is the local mean (26.66 dB brain
    PSNR; the local mean itself, 26.65 dB), while this network learns (27.67 dB). Noise2Self
    (``loss.identity_skip`` False) uses it; ``F``'s input is scaled by the fixed
    ``1 / signal_std`` and its output is the image itself.

    Parameters
    ----------
    network : NoiseConditionedUNet
        Its backbone (all its parameters) is used; its preconditioning is not.
    """

    def __init__(self, network: NoiseConditionedUNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        sigma = sigma.to(x.dtype).reshape(-1)
        if sigma.numel() == 1 and x.shape[0] != 1:
            sigma = sigma.expand(x.shape[0])
        return self.network._backbone(x / self.network.signal_std, sigma)


def make_peer_network(
    width: int = 16,
    depth: int = 3,
    attention: bool = False,
    *,
    in_channels: int = 1,
    seed: int = 0,
    skip: bool = True,
) -> NoiseConditionedUNet | UNetWithoutSkip:
    """The C2S U-Net without noise-level conditioning, initialised from ``seed``.

    Parameters
    ----------
    width, depth, attention : see :class:`c2s_denoise.engine.NoiseConditionedUNet`
        Use the C2S model's values for a like-for-like comparison (defaults: the estimator's).
    in_channels : int, default=1
    seed : int, default=0
        Seed of the weight initialisation (the global torch RNG is left untouched).
    skip : bool, default=True
        False: the same U-Net without its preconditioning skip path (:class:`UNetWithoutSkip`),
        for Noise2Self; pass ``loss.identity_skip``.

    Returns
    -------
    NoiseConditionedUNet or UNetWithoutSkip
        With ``noise_conditioning=False`` and one output channel.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = NoiseConditionedUNet(
            in_channels=in_channels,
            out_channels=1,
            width=width,
            depth=depth,
            attention=attention,
            noise_conditioning=False,
        )
    return network if skip else UNetWithoutSkip(network)


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
    max_iter: int,
    batch_size: int = _C2S_DEFAULTS["batch_size"],
    patch_size: int = _C2S_DEFAULTS["patch_size"],
    learning_rate: float | None = None,
    weight_decay: float = TrainingConfig.weight_decay,
    warmup_fraction: float = TrainingConfig.warmup_fraction,
    final_lr_fraction: float = TrainingConfig.final_lr_fraction,
    ema_decay: float = _C2S_DEFAULTS["ema_decay"],
    grad_clip: float | None = TrainingConfig.grad_clip,
    augment: bool = TrainingConfig.augment,
    precision: str = "auto",
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
        The peer's loss, handed to :func:`c2s_denoise.engine.train_network` as its ``loss_step``
        (as C2S hands it a :class:`~c2s_denoise.engine.GDSMStep`).
    network : nn.Module
        ``network(x, sigma)``; trained in place (see :func:`make_peer_network`).
    images : array (n, H, W) / (n, C, H, W), or sequence of (H, W) / (C, H, W) arrays or tensors
        Noisy training images, already normalised (e.g. in [0, 1]); sizes may differ.
    noise_levels : float or sequence of float
        Data noise level of every image (one value for all), in the units of ``images``.
    clean : same layout as ``images``, optional
        Clean images of the shapes of ``images``, required by losses with ``needs_clean``
        (Noise2Clean); they travel as extra channels after the noisy ones, so they are cut into
        the same patches, with the same flips, as the noisy images.
    max_iter, batch_size, patch_size, weight_decay, warmup_fraction, final_lr_fraction, ema_decay, \
grad_clip, augment
        As in :class:`~c2s_denoise.engine.TrainingConfig`.
    learning_rate : float, optional
        Peak learning rate; None: the loss's own (``loss.learning_rate``, Noise2Void's and
        Neighbor2Neighbor's 2.5e-3), else C2S's default.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Training arithmetic, as ``C2SDenoiser(precision=...)``: peers and C2S train alike.
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
    noisy_images = _as_tensors(images)
    levels = _as_levels(noise_levels, len(noisy_images))
    if loss.needs_clean:
        if clean is None:
            raise ValueError(f"{loss.name} needs the clean images (clean=...)")
        clean_images = _as_tensors(clean)
        if [c.shape for c in clean_images] != [n.shape for n in noisy_images]:
            raise ValueError("clean images must have the shapes of the noisy images")
        # noisy then clean channels: one patch sampler cuts and flips both alike
        sampled = [torch.cat([n, c]) for n, c in zip(noisy_images, clean_images)]
    else:
        sampled = noisy_images
    if learning_rate is None:
        learning_rate = loss.learning_rate if loss.learning_rate is not None else _C2S_DEFAULTS["learning_rate"]
    config = TrainingConfig(
        max_iter=max_iter,
        max_time=None,
        batch_size=batch_size,
        patch_size=patch_size,
        patch_depth=1,  # images only
        refinement=0.0,
        air_weight=1.0,  # patches drawn uniformly, as every peer's paper does
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_fraction=warmup_fraction,
        final_lr_fraction=final_lr_fraction,
        ema_decay=ema_decay,
        grad_clip=grad_clip,
        augment=augment,
        divergence_guard=loss.stationary,
        compute_dtype=resolve_training_dtype(precision, resolve_device(device)),
    )
    return train_network(
        network,
        sampled,
        levels,
        loss_step=loss,
        config=config,
        generator=torch.Generator().manual_seed(int(seed)),
        device=resolve_device(device),
        verbose=verbose,
        callback=callback,
        description=f"{loss.name} fit",
    )


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
