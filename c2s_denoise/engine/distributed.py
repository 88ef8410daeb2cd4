"""Data-parallel training over processes with ``torch.distributed``: ranks, seeds, agreement, teardown.

One model is trained by every rank of an initialised process group (``torchrun`` or
:func:`torch.distributed.init_process_group`): the trainer wraps the network in
:class:`~torch.nn.parallel.DistributedDataParallel`, each rank draws its own patches from its own
generator (:func:`rank_seed`), gradients are averaged over the ranks, and rank 0 alone writes the
result. A process group of one process, or none, is the ordinary single-process fit.

Failures must not leave the other ranks waiting in a collective: work before training runs
inside :func:`ranks_agree`, which tells every rank whether any rank failed, and a collective
that breaks because a peer left raises :class:`RankFailedError` naming this rank.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist

__all__ = [
    "RankFailedError",
    "average_over_ranks",
    "init_from_environment",
    "is_distributed",
    "leave_together",
    "rank",
    "rank_failure",
    "rank_seed",
    "ranks_agree",
    "world_size",
]

# Golden-ratio increment (as in SplitMix64): seeds of neighbouring ranks far apart.
_SEED_STRIDE = 0x9E3779B97F4A7C15
_SEED_MODULUS = 2**63


class RankFailedError(RuntimeError):
    """Another rank of a distributed run failed or left (or a collective broke): this rank stops too."""


def is_distributed() -> bool:
    """Whether a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Processes in the group (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank_seed(seed: int) -> int:
    """Seed of this rank's patch and noise generator: ``seed`` itself on rank 0 and in one process.

    Each other rank gets its own stream, a fixed function of ``seed`` and the rank, so that the
    same seed gives the same model for the same world size.
    """
    return (int(seed) + rank() * _SEED_STRIDE) % _SEED_MODULUS


def _collective_device() -> torch.device:
    """Where the tensors of a collective live: the current GPU for NCCL, the CPU otherwise."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def rank_failure(exc: BaseException, during: str) -> RankFailedError:
    """The error of a rank whose collective broke (``exc``) while ``during``: another rank failed or left."""
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return RankFailedError(
        f"distributed training stopped on rank {rank()} of {world_size()} while {during}: {first_line} (when "
        "another rank failed or left, its own error is in its output)"
    )


def average_over_ranks(values: list[float], device: torch.device, during: str = "training") -> list[float]:
    """Mean of each value over the ranks (a collective: every rank must call it, in the same order)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    try:
        dist.all_reduce(tensor)
    except (RuntimeError, ValueError) as exc:  # a peer that left breaks the collective
        raise rank_failure(exc, during) from exc
    return (tensor / world_size()).tolist()


def _failed_ranks(ok: bool, during: str) -> list[int]:
    flags = torch.zeros(world_size(), dtype=torch.float64, device=_collective_device())
    flags[rank()] = 0.0 if ok else 1.0
    try:
        dist.all_reduce(flags)
    except (RuntimeError, ValueError) as exc:
        raise rank_failure(exc, during) from exc
    return [index for index, flag in enumerate(flags.tolist()) if flag > 0]


@contextlib.contextmanager
def ranks_agree(during: str) -> Iterator[None]:
    """Run a block on every rank and raise on every rank if it failed on any (no-op in one process).

    The block's own exception propagates on the ranks where it was raised (after telling the
    others); the other ranks raise :class:`RankFailedError` naming the ranks that failed.
    """
    if not is_distributed():
        yield
        return
    try:
        yield
    except BaseException:
        with contextlib.suppress(RankFailedError):
            _failed_ranks(False, during)
        raise
    failed = _failed_ranks(True, during)
    if failed:
        raise RankFailedError(
            f"rank(s) {', '.join(map(str, failed))} of {world_size()} failed while {during} (their error is in "
            f"their output); rank {rank()} stops too, nothing is written"
        )


def leave_together() -> None:
    """Wait until every rank has finished its work (a collective), before the group is torn down.

    A gloo rank that destroys its process group while a peer is still working (rank 0 writing
    the model) can be aborted by the C++ runtime ("terminate called without an active
    exception"); leaving together avoids that.
    """
    if not is_distributed():
        return
    try:
        dist.barrier()
    except (RuntimeError, ValueError) as exc:
        raise rank_failure(exc, "finishing") from exc


def init_from_environment(device: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Join the process group that ``torchrun`` describes in the environment; True if this call created it.

    Nothing happens without ``WORLD_SIZE`` > 1 in the environment or when a group exists already.
    The backend is NCCL when the run uses CUDA (each rank then works on GPU ``LOCAL_RANK``),
    gloo otherwise.

    Raises
    ------
    ValueError
        For a CUDA device with an index (``"cuda:1"``) in a run of several processes: every rank
        would share that one GPU; ``"cuda"`` or ``"auto"`` gives each rank its own.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    if str(device).startswith("cuda:"):
        raise ValueError(
            f"device {device!r} under torchrun would put every rank on that one GPU; use device='cuda' "
            "(or auto): each rank then works on GPU LOCAL_RANK (choose the GPUs with CUDA_VISIBLE_DEVICES)"
        )
    wants_cuda = (device in (None, "auto") and torch.cuda.is_available()) or str(device).startswith("cuda")
    if wants_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if wants_cuda else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return True
