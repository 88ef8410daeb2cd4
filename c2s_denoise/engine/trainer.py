"""The training loop: patches, AdamW, learning-rate schedule, EMA, divergence guard.

The loss of each batch is a :data:`StepLoss`; the GDSM one is
:class:`~c2s_denoise.engine.gdsm.GDSMStep`.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .distributed import RankFailedError, average_over_ranks, is_distributed, rank, rank_failure
from .ema import ExponentialMovingAverage
from .guard import DivergenceGuard
from .patches import PatchSampler
from .precision import training_autocast
from .volume_patches import VolumePatchSampler

__all__ = [
    "StepLoss",
    "TrainingConfig",
    "TrainingResult",
    "budget_fraction",
    "gradient_norm",
    "make_optimizer",
    "train_network",
    "warmup_cosine",
    "warmup_cosine_fraction",
]

# loss_step(network, patches (B, C, h, w) on the device, sigma_data (B,), generator, progress in (0, 1]) -> scalar loss
StepLoss = Callable[[nn.Module, Tensor, Tensor, torch.Generator, float], Tensor]


@dataclass(kw_only=True)
class TrainingConfig:
    """Hyper-parameters of :func:`train_network` (keywords only; the first nine have no default).

    Attributes
    ----------
    max_iter : int
        Optimiser steps (at most).
    max_time : float or None
        Training time budget in seconds: training stops at ``max_iter`` steps or ``max_time``
        seconds, whichever comes first, and the learning-rate schedule is laid out over the
        fraction of the budget used (steps or time, whichever is further along). None: steps
        only. With a time budget the number of steps depends on the machine's speed, so a fit
        is reproducible only in steps, not in seconds.
    batch_size : int
        Patches per step.
    patch_size : int
        Side of the square training patches.
    patch_depth : int
        Slices of the training patches of volumes (3-D networks); unused for images.
    learning_rate : float
        Peak learning rate of AdamW.
    weight_decay : float
        AdamW weight decay.
    warmup_fraction : float
        Fraction of the steps with a linear learning-rate warm-up; a cosine decay to
        ``final_lr_fraction * learning_rate`` follows.
    final_lr_fraction : float
        Learning rate at the last step, relative to the peak.
    ema_decay : float
        Final EMA decay (with warm-up, see :class:`ExponentialMovingAverage`).
    refinement : float
        ``rho = sigma_target / sigma_data`` in [0, 1).
    grad_clip : float or None
        Clip the gradient norm to this value.
    augment : bool
        Flips and rotations of the patches.
    air_weight : float
        Probability of keeping a drawn patch that holds only background noise (see
        :class:`~c2s_denoise.engine.patches.PatchSampler`; needs ``air_rms``); 1 samples
        uniformly.
    divergence_guard : bool
        Roll back to the last healthy state and halve the learning rate when the loss diverges
        (see :class:`~c2s_denoise.engine.guard.DivergenceGuard`).
    compute_dtype : torch.dtype
        Arithmetic of the forward and backward passes: ``torch.float32``, or ``torch.bfloat16``
        for mixed precision under autocast (weights, optimiser, EMA and loss stay float32; see
        :mod:`~c2s_denoise.engine.precision`).
    """

    # What the estimator exposes: no default here (its defaults are C2SDenoiser's, stated once).
    max_iter: int
    max_time: float | None
    batch_size: int
    patch_size: int
    patch_depth: int
    learning_rate: float
    ema_decay: float
    refinement: float
    air_weight: float
    # The engine's own settings.
    weight_decay: float = 0.0
    warmup_fraction: float = 0.05
    final_lr_fraction: float = 0.02
    grad_clip: float | None = 1.0
    augment: bool = True
    divergence_guard: bool = True
    compute_dtype: torch.dtype = torch.float32


@dataclass
class TrainingResult:
    """What :func:`train_network` returns."""

    network: nn.Module
    planned_steps: int = 0
    loss_curve: list[float] = field(default_factory=list)
    n_iter: int = 0
    interrupted: bool = False
    rollbacks: int = 0
    skipped_steps: int = 0
    seconds: float = 0.0


def warmup_cosine(step: int, total: int, warmup_fraction: float, final_fraction: float) -> float:
    """Learning-rate multiplier: linear warm-up then cosine decay to ``final_fraction``."""
    warmup = max(1, int(round(warmup_fraction * total)))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


def budget_fraction(step: int, elapsed: float, config: TrainingConfig) -> float:
    """Fraction of the training budget used after ``step + 1`` steps and ``elapsed`` seconds, in (0, 1]."""
    fraction = (step + 1) / config.max_iter
    if config.max_time is not None:
        fraction = max(fraction, elapsed / config.max_time)
    return min(1.0, fraction)


def warmup_cosine_fraction(fraction: float, warmup_fraction: float, final_fraction: float) -> float:
    """:func:`warmup_cosine` as a function of the fraction of the budget used (time budgets)."""
    if fraction < warmup_fraction:
        return fraction / warmup_fraction
    progress = min(1.0, (fraction - warmup_fraction) / max(1e-12, 1.0 - warmup_fraction))
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


#: Steps in a row whose gradient may be non-finite before training stops (see :func:`finite_gradients`).
MAX_SKIPPED_IN_A_ROW = 50


def gradient_norm(network: nn.Module, grad_clip: float | None) -> float:
    """The total norm of ``network``'s gradients before clipping, after clipping them to ``grad_clip``.

    Not finite when a gradient is not (torch's bfloat16 CPU kernels have returned NaN weight
    gradients for 3-D convolutions over one or two slices, with a finite loss): the optimiser then
    skips the step, since a NaN update makes every weight NaN. The divergence guard watches the
    norm for spikes. One norm over all gradients, one host sync.
    """
    parameters = [p for p in network.parameters() if p.grad is not None]
    if not parameters:
        return 0.0
    if grad_clip is not None:
        norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
    return float(norm)


def make_optimizer(network: nn.Module, config: TrainingConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over ``network``'s parameters, with torch's fused kernel where the device has one.

    The fused kernel updates every tensor in one pass: on a 2-core CPU it takes about a quarter
    of the time of the default per-tensor loop (1.3 vs 5.4 ms per step for the default network,
    a tenth of a training step). Torch versions or devices without it get the default AdamW.
    """
    parameters = list(network.parameters())
    kwargs = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    fused = device.type in ("cpu", "cuda")
    try:
        return torch.optim.AdamW(parameters, fused=fused, **kwargs)
    except (RuntimeError, ValueError, TypeError):  # torch without a fused kernel for this device
        return torch.optim.AdamW(parameters, **kwargs)


def _non_finite_message(value: float, step: int, config: TrainingConfig, warmup_steps: int) -> str:
    """Why training stopped at a non-finite loss that could not be rolled back, and what to change."""
    if config.divergence_guard:
        why = (
            "before the divergence guard held a healthy state to roll back to (it keeps one from the end of the "
            f"{warmup_steps}-step learning-rate warm-up on)"
        )
    else:
        why = "with the divergence guard off"
    return (
        f"the training loss became non-finite ({value}) at step {step + 1} of {config.max_iter}, {why}: "
        f"try a lower learning_rate (the peak is {config.learning_rate:g}), and check the noise level sigma "
        "(far too small or too large for the images) and that the images are finite"
    )


def _data_parallel(network: nn.Module, device: torch.device) -> nn.Module:
    """``network`` in :class:`~torch.nn.parallel.DistributedDataParallel` (its weights broadcast from rank 0)."""
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" and device.index is not None else None
    return DistributedDataParallel(network, device_ids=device_ids)


def train_network(
    network: nn.Module,
    images: list[Tensor],
    noise_levels: Tensor,
    *,
    loss_step: StepLoss,
    config: TrainingConfig,
    generator: torch.Generator,
    device: torch.device,
    verbose: int = 0,
    callback: Callable[[int, float], None] | None = None,
    description: str = "C2S fit",
    air_rms: Tensor | None = None,
    signal_channels: int = 1,
) -> TrainingResult:
    """Train ``network`` on random patches with any per-batch loss (GDSM or a peer's).

    Each step draws ``config.batch_size`` patches (with flips/transposes) and their noise levels,
    evaluates ``loss_step(network, patches, sigma_data, generator, progress)``, and takes an
    AdamW step with the warm-up/cosine learning rate, gradient-norm clipping and an EMA update.
    The network and patches use the channels-last memory format; denormals are flushed on CPU.

    Parameters
    ----------
    network : nn.Module
        Trained in place; the returned network is its EMA copy.
    images : list of Tensor, each (C, H, W), or (C, D, H, W) for a 3-D network
        Normalised training images or volumes (CPU).
    noise_levels : Tensor, shape (n_images,)
        ``sigma_data`` of each image in normalised units.
    loss_step : callable
        Scalar loss of one batch, see :data:`StepLoss`.
    config : TrainingConfig
    generator : torch.Generator
        CPU generator for every random draw: the run is deterministic for a given generator
        state on a given machine.
    device : torch.device
    verbose : int, default=0
        ``> 0`` shows a progress bar with loss and speed on stderr.
    callback : callable, optional
        ``callback(step, loss)`` after each step.
    description : str, default="C2S fit"
        Label of the progress bar.
    air_rms : Tensor, shape (n_images,), optional
        Root-mean-square of the noise alone in each image: with ``config.air_weight < 1``, patches
        of background noise are drawn less often (see :class:`~c2s_denoise.engine.patches.PatchSampler`).
    signal_channels : int, default=1
        Leading channels that decide whether a patch is background.

    Returns
    -------
    TrainingResult
        With the EMA network (in eval mode). A ``KeyboardInterrupt`` stops training early and
        returns the EMA weights reached so far with ``interrupted=True`` (in a distributed run it
        propagates: the ranks would not agree on where they stopped).

    Notes
    -----
    Inside an initialised process group of several processes (see
    :mod:`c2s_denoise.engine.distributed`) the network is wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel`: each rank draws ``config.batch_size``
    patches per step from its own ``generator``, the gradients are averaged over the ranks, and
    the loss (hence the loss curve, the divergence guard's decisions and a non-finite loss) and the
    elapsed time (hence a time budget's schedule and stop) are averaged over the ranks each step,
    so that every rank takes the same decisions and holds the same weights.

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN/inf and the divergence guard has no healthy state to roll back
        to (before the end of the warm-up, or with the guard off); the message names the step.
    RankFailedError
        In a distributed run, when a collective breaks (another rank failed or left).
    """
    # channels-last convolutions are ~20% faster on CPU (oneDNN) and on recent GPUs
    network.to(device=device, memory_format=getattr(network, "memory_format", torch.channels_last)).train()
    distributed = is_distributed()
    trained = _data_parallel(network, device) if distributed else network
    volumes = {"patch_depth": config.patch_depth} if images and len(images[0].shape) == 4 else {}
    sampler = (VolumePatchSampler if volumes else PatchSampler)(
        images,
        noise_levels,
        config.patch_size,
        **volumes,
        augment=config.augment,
        air_rms=air_rms,
        air_weight=config.air_weight,
        signal_channels=signal_channels,
    )
    optimizer = make_optimizer(network, config, device)
    ema = ExponentialMovingAverage(network, config.ema_decay)
    warmup_steps = max(1, int(round(config.warmup_fraction * config.max_iter)))
    guard = DivergenceGuard(window=min(500, max(50, config.max_iter // 20)), start=warmup_steps, network=network)
    used = [1.0 / config.max_iter]  # fraction of the budget used so far, updated each step (time budgets)

    def lr_multiplier(step: int) -> float:
        if config.max_time is None:  # the schedule in steps (bitwise as before time budgets existed)
            return guard.lr_scale * warmup_cosine(
                step, config.max_iter, config.warmup_fraction, config.final_lr_fraction
            )
        return guard.lr_scale * warmup_cosine_fraction(used[0], config.warmup_fraction, config.final_lr_fraction)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier)
    guarded = {"network": network, "optimizer": optimizer, "ema": ema.network}
    result = TrainingResult(network=ema.network, planned_steps=config.max_iter)
    progress = None
    if verbose and rank() == 0:
        from tqdm.auto import tqdm

        progress = tqdm(total=config.max_iter, file=sys.stderr, desc=description, unit="step", dynamic_ncols=True)
    pixels_per_step = (
        config.batch_size * sampler.patch_height * sampler.patch_width * getattr(sampler, "patch_depth", 1)
    )
    # Denormal floats (tiny activations or moments) make CPU arithmetic up to ~100x slower;
    # flushing them to zero changes nothing measurable in the result.
    flushed = device.type == "cpu" and torch.set_flush_denormal(True)
    start = time.perf_counter()
    skipped_in_a_row = 0
    agreed_elapsed = 0.0  # distributed: the elapsed time averaged over the ranks at the end of the last step
    try:
        for step in range(config.max_iter):
            patches, sigma_data = sampler.sample(config.batch_size, generator)
            patches, sigma_data = patches.to(device, non_blocking=True), sigma_data.to(device)
            elapsed = agreed_elapsed if distributed else time.perf_counter() - start
            used[0] = budget_fraction(step, elapsed, config)
            with training_autocast(config.compute_dtype, device):
                loss = loss_step(trained, patches, sigma_data, generator, used[0])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            value = float(loss.detach())
            norm = gradient_norm(network, config.grad_clip)
            stepped = math.isfinite(norm)
            if stepped:
                optimizer.step()
                skipped_in_a_row = 0
            elif math.isfinite(value):  # a finite loss with a NaN/inf gradient: this update is dropped
                result.skipped_steps += 1
                skipped_in_a_row += 1
                if skipped_in_a_row > MAX_SKIPPED_IN_A_ROW:
                    raise FloatingPointError(
                        f"the gradient was non-finite (NaN/inf) at {skipped_in_a_row} steps in a row up to step "
                        f"{step + 1} of {config.max_iter}, with a finite loss: try precision='float32'"
                    )
            # (a non-finite loss is the divergence guard's, below; no update is made with its gradient)
            with warnings.catch_warnings():
                if not stepped:  # torch warns when a schedule moves before the optimiser's first step
                    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                scheduler.step()
            ema.update(network)
            if distributed:
                value, agreed_elapsed = average_over_ranks([value, time.perf_counter() - start], device)
            if config.divergence_guard and guard.check(step, value, guarded, norm if stepped else None):
                result.rollbacks = guard.rollbacks
                if verbose:
                    print(
                        f"step {step}: the loss diverged ({value:.3e}); restored the last healthy weights, "
                        f"learning rate x{guard.lr_scale:g}",
                        file=sys.stderr,
                    )
            elif not math.isfinite(value):
                raise FloatingPointError(_non_finite_message(value, step, config, warmup_steps))
            result.loss_curve.append(value)
            result.n_iter = step + 1
            if progress is not None:
                elapsed = time.perf_counter() - start
                progress.update(1)
                progress.set_postfix(loss=f"{value:.3e}", Mpx_s=f"{pixels_per_step * (step + 1) / elapsed / 1e6:.2f}")
            if callback is not None:
                callback(step, value)
            elapsed = agreed_elapsed if distributed else time.perf_counter() - start
            if config.max_time is not None and elapsed >= config.max_time:
                break
    except KeyboardInterrupt:
        if distributed:
            raise
        result.interrupted = True
    except RuntimeError as exc:
        if distributed and not isinstance(exc, RankFailedError):
            raise rank_failure(exc, "training") from exc
        raise
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        if progress is not None:
            progress.close()
        result.seconds = time.perf_counter() - start
    result.network = ema.network.eval()
    return result
