"""Choice of the torch device."""

from __future__ import annotations

import warnings

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device = "auto", *, or_cpu: bool = False) -> torch.device:
    """Return a torch device; ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a device.
    or_cpu : bool, default=False
        Where the requested accelerator is not available, warn and return the CPU instead of
        raising (denoising with a model fitted on another machine's GPU).

    Raises
    ------
    ValueError
        If the device string is unknown or, without ``or_cpu``, the requested accelerator is not
        available.
    """
    if or_cpu:
        try:
            return resolve_device(device)
        except ValueError as error:
            if "not available" not in str(error):
                raise
            warnings.warn(f"{error}; using the CPU instead", UserWarning, stacklevel=3)
            return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was requested but MPS is not available")
    return resolved
