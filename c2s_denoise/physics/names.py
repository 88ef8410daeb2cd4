"""Names of the physics' methods, importable without numerical libraries (the command line checks them)."""

from __future__ import annotations

__all__ = ["NOISE_ESTIMATORS"]

#: The noise-level estimators of :func:`c2s_denoise.physics.noise.estimate_sigma`.
NOISE_ESTIMATORS = ("wavelet", "background", "foreground", "rayleigh")
