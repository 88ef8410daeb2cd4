"""Running the per-subject work of ``apply`` on a Dask cluster (``dask.distributed``, the ``dask`` extra).

The cluster runs the same worker function as the local processes of ``apply --n-jobs``; files are
read and written by the workers, so the inputs, the model and the output folder must be reachable
under the same absolute paths on every worker (a shared file system).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..io import C2SInputError
from ..io.errors import describe_exception

__all__ = ["connect_scheduler", "results_as_completed"]

#: How ``pip`` installs what ``--scheduler`` needs.
DASK_EXTRA = 'pip install "c2s-denoise[dask]"'


@contextlib.contextmanager
def connect_scheduler(address: str | None, timeout_s: float) -> Iterator[Any]:
    """A ``dask.distributed.Client`` connected to the scheduler at ``address`` for the block (None: no client).

    Raises
    ------
    C2SInputError
        When dask.distributed is not installed, or the scheduler cannot be reached within
        ``timeout_s`` seconds (a bad address, nothing listening, a network in the way).
    """
    if address is None:
        yield None
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise C2SInputError(None, f"scheduler=... needs dask.distributed: {DASK_EXTRA}") from None
    try:
        client = Client(address, timeout=timeout_s)
    except Exception as exc:  # OSError / TimeoutError when nothing answers, ValueError for a bad address
        raise C2SInputError(
            None, f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s ({describe_exception(exc)})"
        ) from None
    try:
        yield client
    finally:
        client.close()


def results_as_completed(client: Any, function: Callable[..., Any], arguments: Sequence[tuple]) -> Iterable[Any]:
    """``function(*args)`` for each tuple of ``arguments`` on the cluster, results as they finish.

    An exception raised by a task is raised here (the remaining tasks are cancelled).
    """
    from dask.distributed import as_completed

    futures = [client.submit(function, *args, pure=False) for args in arguments]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)
