"""What the benchmark reports say about the run: the machine and the command line."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import torch

__all__ = ["command", "cpu_model", "machine"]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """CPU model, core count, torch version and threads, e.g. for a table header."""
    return f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), CPU"


def command() -> str:
    """The command line of this run, as ``python benchmarks/X.py args``."""
    return f"python {' '.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])}"
