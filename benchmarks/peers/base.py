"""The loss interface of the peers (:class:`PeerLoss`) and the helpers their losses share."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

__all__ = ["Network", "PeerLoss"]

Network = Callable[[Tensor, Tensor], Tensor]


def randn_like(x: Tensor, generator: torch.Generator) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn on the CPU from ``generator``."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)


def per_sample(sigma: Tensor, x: Tensor) -> Tensor:
    """``sigma`` (B,) or scalar, shaped to broadcast against ``x`` (B, C, H, W)."""
    return sigma.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


def mse(output: Tensor, target: Tensor) -> Tensor:
    return (output - target).square().mean()


def mean_of_draws(n: int, draw: Callable[[], Tensor]) -> Tensor:
    """Mean of ``n >= 1`` calls of ``draw()`` (stochastic inference averaged over draws)."""
    total = draw()
    for _ in range(n - 1):
        total = total + draw()
    return total / n


class PeerLoss:
    """Base class of the peer losses: each one is a training step loss of the engine.

    A peer loss is a :data:`c2s_denoise.engine.StepLoss`, exactly like C2S's
    :class:`c2s_denoise.engine.GDSMStep`: calling it as
    ``loss(network, patches, sigma_data, generator, progress)`` returns the scalar loss of a
    batch, so :func:`c2s_denoise.engine.train_network` takes it as its ``loss_step`` unchanged.
    A subclass implements :meth:`__call__` and, when its inference is not simply ``f(y)``,
    :meth:`estimate`. Peer losses hold no parameters.
    """

    #: Short name used in tables.
    name: ClassVar[str] = "peer"
    #: True for losses that need the clean patches (supervised); see :meth:`__call__`.
    needs_clean: ClassVar[bool] = False
    #: False for losses whose network must not have the U-Net's identity skip path (the
    #: blind-spot losses); pass it to :func:`~peers.training.make_peer_network` as ``skip``.
    identity_skip: ClassVar[bool] = True
    #: Peak learning rate that :func:`~peers.training.train_peer` uses for this loss when the
    #: caller passes none; None: C2S's default (5e-3).
    learning_rate: ClassVar[float | None] = None

    @property
    def stationary(self) -> bool:
        """Whether the loss's scale stays put during training, so that the trainer's divergence
        guard (a rise of the windowed mean loss) applies to it."""
        return True

    def __call__(
        self, network: Network, patches: Tensor, sigma_data: Tensor, generator: torch.Generator, progress: float
    ) -> Tensor:
        """Return the scalar training loss of a batch (the engine's ``StepLoss`` signature).

        Parameters
        ----------
        network : callable
            ``network(x, sigma)`` returning (B, C_out, H, W).
        patches : Tensor, shape (B, C, H, W)
            Noisy training patches; for a loss with ``needs_clean``, the noisy channels followed
            by as many clean channels (as :func:`~peers.training.train_peer` samples them).
        sigma_data : Tensor, shape (B,)
            Data noise level of each patch (normalised units).
        generator : torch.Generator
            CPU generator for every random draw of the loss.
        progress : float
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

    def __repr__(self) -> str:
        public = {key: value for key, value in vars(self).items() if not key.startswith("_")}
        return f"{type(self).__name__}({', '.join(f'{key}={value!r}' for key, value in public.items())})"


class PairedLoss(PeerLoss):
    """``||f(input) - target||^2`` for an ``(input, target)`` pair drawn by :meth:`pair`."""

    def pair(self, noisy: Tensor, sigma: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return the network input and the regression target of a batch."""
        raise NotImplementedError

    def __call__(
        self, network: Network, patches: Tensor, sigma_data: Tensor, generator: torch.Generator, progress: float
    ) -> Tensor:
        """Mean squared error of ``f(input)`` against ``target`` (see :meth:`pair`)."""
        network_input, target = self.pair(patches, sigma_data, generator)
        output = network(network_input, sigma_data)
        return mse(output, target[:, : output.shape[1]])
