"""A small U-Net conditioned on the noise level (docs/method.md section 4).

The embedding of ``log(sigma_t)`` modulates every residual block (feature-wise scale and shift,
DDPM style). An optional self-attention block sits at the lowest resolution, its normalisation
modulated by the same embedding. Inputs of any size (down to 1x1) are padded internally to a
multiple of the total down-sampling factor and cropped back. ``spatial_dims=3`` builds the same
network with 3-D convolutions, for volumes ``(B, C, D, H, W)`` (docs/method.md section 6, "Volumes").

The network is wrapped in the EDM-style preconditioning of Karras et al. (2022),

    h(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, log sigma),

which keeps the input and the regression target of ``F`` near unit variance at every noise
level; ``h`` is still an unconstrained function of ``(x, sigma)``, so the GDSM minimiser is
unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["NoiseConditionedUNet", "multiply_adds_per_pixel", "network_from_state", "network_state"]

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
#: 3-D feature maps of at most this many slices are computed in float32 under autocast (see ``_run``).
THIN_SLICES = 2
_CONV_TRANSPOSE = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def _per_channel(values: Tensor, spatial_dims: int) -> Tensor:
    """``(B, C)`` values viewed to broadcast over ``(B, C, *spatial)`` feature maps."""
    return values.view(values.shape + (1,) * spatial_dims)


def _modulate(h: Tensor, film: Tensor) -> Tensor:
    """Feature-wise scale and shift ``h * (1 + scale) + shift``, ``(scale, shift) = film.chunk(2)``.

    ``film`` is ``(B, 2C)``. In float32 this is one fused ``addcmul``. In reduced precision
    (bfloat16 training) torch's CPU kernels add a broadcast ``(B, C, 1, 1)`` tensor to a
    channels-last map about ten times slower than they multiply one, so there the shift is first
    materialised in ``h``'s layout: same result up to rounding, the modulation's forward and
    backward about half the time (benchmarks/results/HISTORY.md, 2026-11-30 "FiLM").
    """
    scale, shift = _per_channel(film, h.dim() - 2).chunk(2, dim=1)
    if h.dtype in (torch.float32, torch.float64):
        return torch.addcmul(shift, h, 1.0 + scale)
    return h * (1.0 + scale) + torch.empty_like(h).copy_(shift.expand_as(h))


class NoiseEmbedding(nn.Module):
    """Fourier features of ``log(sigma)`` followed by a small MLP."""

    def __init__(self, dim: int, n_frequencies: int = 8) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.pi * 2.0 ** torch.arange(n_frequencies) / 8.0)
        self.mlp = nn.Sequential(nn.Linear(2 * n_frequencies, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU())

    def forward(self, log_sigma: Tensor) -> Tensor:
        angles = log_sigma[:, None] * self.frequencies[None, :]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))


def _separable_conv3d(channels: int) -> nn.Sequential:
    """A "(2+1)-D" convolution: 1x3x3 in the plane, then 3x1x1 through the slices (12 weights per pair, not 27)."""
    return nn.Sequential(
        nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1)),
        nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0)),
    )


class ResidualBlock(nn.Module):
    """``x + conv(act(film(conv(x))))``, with a feature-wise scale/shift from the embedding."""

    def __init__(
        self, channels: int, embedding_dim: int | None, spatial_dims: int = 2, separable: bool = False
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        if separable:
            self.conv1, self.conv2 = _separable_conv3d(channels), _separable_conv3d(channels)
        else:
            self.conv1 = _CONV[spatial_dims](channels, channels, 3, padding=1)
            self.conv2 = _CONV[spatial_dims](channels, channels, 3, padding=1)
        self.film = nn.Linear(embedding_dim, 2 * channels) if embedding_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.act = nn.SiLU()

    def forward(self, x: Tensor, embedding: Tensor | None) -> Tensor:
        h = self.conv1(self.act(x))
        if self.film is not None and embedding is not None:
            h = _modulate(h, self.film(embedding))
        h = self.conv2(self.act(h))
        return x + h


class ModulatedSelfAttention(nn.Module):
    """Multi-head self-attention over pixels with an embedding-modulated GroupNorm."""

    def __init__(self, channels: int, embedding_dim: int | None, n_heads: int = 4) -> None:
        super().__init__()
        n_heads = max(1, min(n_heads, channels // 16)) if channels % 16 == 0 else 1
        self.norm = nn.GroupNorm(min(8, channels), channels, affine=embedding_dim is None)
        self.film = nn.Linear(embedding_dim, 2 * channels) if embedding_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.attention = nn.MultiheadAttention(channels, n_heads, batch_first=True)

    def forward(self, x: Tensor, embedding: Tensor | None) -> Tensor:
        h = self.norm(x)
        if self.film is not None and embedding is not None:
            h = _modulate(h, self.film(embedding))
        tokens = h.flatten(2).transpose(1, 2)
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return x + attended.transpose(1, 2).reshape(x.shape)


class NoiseConditionedUNet(nn.Module):
    """U-Net denoiser ``h(x, sigma)`` conditioned on the noise level.

    Parameters
    ----------
    in_channels : int, default=1
        Input channels: the ``out_channels`` denoised channels first, then any conditioning
        channels (other contrasts of the same slice, neighbouring slices).
    out_channels : int, default=1
        Channels of the output (the denoised channels, the first ``out_channels`` of the input).
    width : int, default=16
        Channels at full resolution; doubled at each lower level.
    depth : int, default=3
        Number of resolution levels (``depth - 1`` down-samplings by 2).
    attention : bool, default=False
        Add a modulated self-attention block at the lowest resolution.
    noise_conditioning : bool, default=True
        Feed the embedding of ``log(sigma)`` to every block; False gives a plain U-Net (ablation).
    signal_std : float, default=0.5
        Typical standard deviation of the normalised images, used by the preconditioning.
    embedding_dim : int, default=64
        Size of the noise-level embedding.
    spatial_dims : {2, 3}, default=2
        2: images ``(B, C, H, W)``; 3: volumes ``(B, C, D, H, W)`` with 3x3x3 convolutions,
        down-sampled by 2 along every axis (voxel sizes do not matter: the network sees voxels).
        Volumes need at least ``2 ** (depth - 1)`` slices (:attr:`min_depth`).
    separable : bool, default=False
        With ``spatial_dims=3``: the residual blocks' 3x3x3 convolutions become a 1x3x3 one
        followed by a 3x1x1 one ("(2+1)-D", 12/27 of the arithmetic).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        width: int = 16,
        depth: int = 3,
        attention: bool = False,
        noise_conditioning: bool = True,
        signal_std: float = 0.5,
        embedding_dim: int = 64,
        spatial_dims: int = 2,
        separable: bool = False,
    ) -> None:
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be >= 1, got width={width}, depth={depth}")
        if spatial_dims not in _CONV:
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        if separable and spatial_dims != 3:
            raise ValueError("separable convolutions are for 3-D networks (spatial_dims=3)")
        if out_channels > in_channels:
            raise ValueError("out_channels cannot exceed in_channels")
        self.config = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            width=width,
            depth=depth,
            attention=attention,
            noise_conditioning=noise_conditioning,
            signal_std=signal_std,
            embedding_dim=embedding_dim,
        )
        if spatial_dims != 2:  # 2-D configurations stay as they were saved before volumes existed
            self.config["spatial_dims"] = spatial_dims
        if separable:
            self.config["separable"] = True
        self.spatial_dims = spatial_dims
        self.out_channels = out_channels
        self.signal_std = float(signal_std)
        self.depth = depth
        emb = embedding_dim if noise_conditioning else None
        self.embedding = NoiseEmbedding(embedding_dim) if noise_conditioning else None
        channels = [width * 2**level for level in range(depth)]
        conv, dims = _CONV[spatial_dims], spatial_dims
        self.stem = conv(in_channels, channels[0], 3, padding=1)
        self.encoder = nn.ModuleList(ResidualBlock(c, emb, dims, separable) for c in channels[:-1])
        self.down = nn.ModuleList(conv(channels[i], channels[i + 1], 3, stride=2, padding=1) for i in range(depth - 1))
        self.middle = nn.ModuleList([ResidualBlock(channels[-1], emb, dims, separable)])
        if attention:
            self.middle.append(ModulatedSelfAttention(channels[-1], emb))
            self.middle.append(ResidualBlock(channels[-1], emb, dims, separable))
        self.up = nn.ModuleList(
            _CONV_TRANSPOSE[dims](channels[i + 1], channels[i], 2, stride=2) for i in range(depth - 1)
        )
        self.decoder = nn.ModuleList(ResidualBlock(c, emb, dims, separable) for c in channels[:-1])
        self.head = nn.Sequential(nn.SiLU(), conv(channels[0], out_channels, 3, padding=1))

    @property
    def memory_format(self) -> torch.memory_format:
        """The channels-last layout of this network's weights and inputs (faster on CPU and recent GPUs)."""
        return torch.channels_last_3d if self.spatial_dims == 3 else torch.channels_last

    @property
    def min_depth(self) -> int:
        """Fewest slices a volume needs (``spatial_dims=3``): one voxel at the lowest resolution."""
        return 2 ** (self.depth - 1) if self.spatial_dims == 3 else 1

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        """Denoise ``x`` (B, C, H, W), or (B, C, D, H, W) with ``spatial_dims=3``, whose first ``out_channels`` carry noise level ``sigma`` (B,).

        Channels after the first ``out_channels`` are conditioning inputs (other contrasts,
        neighbouring slices): they enter the backbone scaled by ``1 / signal_std`` and are not
        part of the output.
        """
        sigma = sigma.to(x.dtype).reshape(-1)
        if sigma.numel() == 1 and x.shape[0] != 1:
            sigma = sigma.expand(x.shape[0])
        if x.dim() != 2 + self.spatial_dims:
            raise ValueError(
                f"a network with spatial_dims={self.spatial_dims} takes {2 + self.spatial_dims}-D input "
                f"(batch, channels, {'depth, ' if self.spatial_dims == 3 else ''}height, width), got shape {tuple(x.shape)}"
            )
        var_total = self.signal_std**2 + sigma.square()
        shape = (-1,) + (1,) * (1 + self.spatial_dims)
        c_in = var_total.rsqrt().view(shape)
        c_skip = (self.signal_std**2 / var_total).view(shape)
        c_out = (sigma * self.signal_std * var_total.rsqrt()).view(shape)
        denoised_input = x[:, : self.out_channels]
        if x.shape[1] > self.out_channels:
            # conditioning channels (other contrasts, neighbouring slices) keep their own noise
            # level, not sigma: they get a fixed unit-variance scaling instead of c_in(sigma)
            scaled = torch.cat([c_in * denoised_input, x[:, self.out_channels :] / self.signal_std], dim=1)
        else:
            scaled = c_in * x
        residual = self._backbone(scaled, sigma)
        return c_skip * denoised_input + c_out * residual

    def _backbone(self, x: Tensor, sigma: Tensor) -> Tensor:
        sizes = x.shape[2:]
        multiple = 2 ** (self.depth - 1)
        pads = [(-size) % multiple for size in sizes]
        if any(pads):
            x = F.pad(x, [p for pad in reversed(pads) for p in (0, pad)], mode="replicate")
        embedding = self.embedding(torch.log(sigma)) if self.embedding is not None else None
        run = self._run
        h = run(self.stem, x)
        skips = []
        for block, down in zip(self.encoder, self.down):
            h = run(block, h, embedding)
            skips.append(h)
            h = run(down, h, thinnest=-(-h.shape[2] // 2) if self.spatial_dims == 3 else None)
        for block in self.middle:
            h = run(block, h, embedding)
        for block, up, skip in zip(reversed(self.decoder), reversed(self.up), reversed(skips)):
            h = run(block, run(up, h) + skip, embedding)
        out = run(self.head, h)
        return out[(Ellipsis, *(slice(0, size) for size in sizes))]

    def _run(self, module: nn.Module, h: Tensor, *args: Tensor | None, thinnest: int | None = None) -> Tensor:
        """``module(h, *args)``; in float32 for a 3-D network whose input (or output: ``thinnest``
        slices) has at most :data:`THIN_SLICES` slices under reduced-precision autocast.

        torch's bfloat16 CPU convolutions (oneDNN) return NaN weight gradients now and then for
        3-D inputs of one or two slices (measured: 1 to 3 in 12 random trials per shape, never
        for 3 or more slices, never in 2-D); the lowest levels of a U-Net on thin patches hit
        that, so they run in float32 (a small share of the arithmetic).
        """
        if self.spatial_dims == 3 and torch.is_autocast_enabled(h.device.type):
            slices = h.shape[2] if thinnest is None else min(h.shape[2], thinnest)
            if slices <= THIN_SLICES:
                with torch.autocast(h.device.type, enabled=False):
                    return module(h.float(), *(a.float() if a is not None else None for a in args))
        return module(h, *args)


def multiply_adds_per_pixel(network: NoiseConditionedUNet, size: int = 64) -> float:
    """Multiply-adds of the convolutions and linear layers per input pixel or voxel (forward pass).

    Measured with forward hooks on one ``size x size`` image (``size``-cubed volume); attention's matrix products are
    not counted. Training costs about three times this per pixel (forward and backward).
    """
    total = [0.0]

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            kernel = math.prod(module.kernel_size)
            total[0] += output.numel() * kernel * module.in_channels / module.groups
        elif isinstance(module, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
            kernel = math.prod(module.kernel_size)
            total[0] += inputs[0].numel() * kernel * module.out_channels / module.groups
        elif isinstance(module, nn.Linear):
            total[0] += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in network.modules()]
    try:
        with torch.no_grad():
            channels = network.config["in_channels"]
            dims = network.config.get("spatial_dims", 2)
            network(torch.zeros(1, channels, *(size,) * dims), torch.tensor([0.1]))
    finally:
        for handle in handles:
            handle.remove()
    return total[0] / size ** network.config.get("spatial_dims", 2)


def network_state(network: NoiseConditionedUNet) -> dict:
    """A network's constructor arguments and weights as CPU tensors (what pickling stores).

    Parameters
    ----------
    network : NoiseConditionedUNet

    Returns
    -------
    dict
        ``{"config": constructor arguments, "weights": state dict on the CPU}``; the inverse of
        :func:`network_from_state`.
    """
    return {
        "config": dict(network.config),
        "weights": {name: tensor.detach().cpu().clone() for name, tensor in network.state_dict().items()},
    }


def network_from_state(saved: dict) -> NoiseConditionedUNet:
    """Rebuild the network saved by :func:`network_state`, in evaluation mode."""
    network = NoiseConditionedUNet(**saved["config"])
    network.load_state_dict(saved["weights"])
    return network.eval()
