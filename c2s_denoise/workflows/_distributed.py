"""Workflows launched by ``torchrun``: join the process group, agree between ranks, report a failed rank.

Without ``torchrun`` (no ``WORLD_SIZE`` > 1 in the environment) and without a process group
initialised by the caller, nothing here imports torch and every helper is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from ..io import C2SInputError

__all__ = ["distributed_run", "ranks_agree"]


def _may_be_distributed() -> bool:
    """Launched by ``torchrun`` with several processes, or torch.distributed already in use by the caller."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "torch.distributed" in sys.modules


@contextlib.contextmanager
def distributed_run(device: object = None) -> Iterator[int]:
    """Join the ``torchrun`` process group for the block (left at its end); yield this process's rank.

    A :class:`~c2s_denoise.engine.distributed.RankFailedError` (another rank failed, or a
    collective broke) leaves the block as a :class:`~c2s_denoise.io.C2SInputError` with the same
    one-line message.
    """
    if not _may_be_distributed():
        yield 0
        return
    import torch.distributed as dist

    from ..engine.distributed import RankFailedError, init_from_environment, leave_together, rank

    created = init_from_environment(device if isinstance(device, str) else None)
    try:
        yield rank()
        if created:
            leave_together()
    except RankFailedError as exc:
        raise C2SInputError(None, str(exc)) from None
    finally:
        if created:
            dist.destroy_process_group()


@contextlib.contextmanager
def ranks_agree(during: str) -> Iterator[None]:
    """:func:`c2s_denoise.engine.distributed.ranks_agree` (every rank fails if one does), without torch when alone."""
    if not _may_be_distributed():
        yield
        return
    from ..engine.distributed import ranks_agree as agree

    with agree(during):
        yield
