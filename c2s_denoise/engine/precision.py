"""Arithmetic precision of training: float32, or bfloat16 mixed precision where it is native.

Under ``torch.autocast`` the convolutions and linear layers of the forward and backward passes
run in bfloat16 while the weights, the optimiser state, the EMA, the preconditioning and the
loss stay in float32 (the network's output is promoted back to float32 by ``c_out * F``).
Training arithmetic on small convolutions is the cost of a CPU fit; bfloat16 halves the
bytes moved and doubles the multiply-adds per instruction where the CPU has native bfloat16
dot products (AVX512-BF16 or AMX). Inference always runs in float32.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "native_bfloat16", "resolve_training_dtype", "training_autocast"]

PRECISIONS = ("auto", "float32", "bfloat16")


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 natively (fast), not by emulation.

    CUDA devices report it (compute capability 8.0 and newer); on the CPU the instruction sets
    AVX512-BF16 or AMX are needed (read through ``torch.cpu``'s feature checks). Apple MPS: no.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_training_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of the training arithmetic for a ``precision`` setting on ``device``.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
        ``"auto"``: bfloat16 where :func:`native_bfloat16` holds, float32 elsewhere.
    device : torch.device

    Returns
    -------
    torch.dtype
        ``torch.float32`` or ``torch.bfloat16``.

    Raises
    ------
    ValueError
        For an unknown setting, or ``"bfloat16"`` on a device without bfloat16 autocast (MPS).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "float32":
        return torch.float32
    if precision == "auto":
        return torch.bfloat16 if native_bfloat16(device) else torch.float32
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"precision='bfloat16' needs a CPU or CUDA device, not {device.type!r}")
    return torch.bfloat16


def training_autocast(dtype: torch.dtype, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast context of one training step: bfloat16 mixed precision, or nothing for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
