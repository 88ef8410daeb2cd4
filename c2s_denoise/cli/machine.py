"""Options that say where the work runs: the torch device and threads (``fit`` and ``apply``)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["DeviceOpt", "ThreadsOpt"]

DeviceOpt = Annotated[
    str | None,
    typer.Option(
        help="Torch device: auto, cpu, cuda, cuda:N, mps (default: fit picks auto; apply uses the model's, or the "
        "CPU where the model's accelerator is missing).",
        show_default=False,
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads", min=1, help="Torch threads of each process (default: torch's choice).", show_default=False
    ),
]
