"""Noise-level estimators for MRI images (docs/method.md section 7).

Every estimator works on one image ``(H, W)`` or one volume ``(D, H, W)`` (slices along the first
axis) and returns ``sigma``, the standard deviation of each real component (real or imaginary
part) of the complex Gaussian noise of one coil image, in the image's own units. A magnitude
image from ``N`` coils combined by root-sum-of-squares is noncentral chi with ``2N`` degrees of
freedom scaled by ``sigma`` (``N = 1``: Rician); its signal-free background is central chi, of
mean ``sigma sqrt(2) Gamma(N + 1/2) / Gamma(N)``.

- ``"wavelet"``: MAD of the finest diagonal Haar band (Donoho & Johnstone 1994), for Gaussian
  noise (complex or real images). On magnitude images it is low where the signal is dark.
- ``"background"``: truncated mean of the chi distributed air around the object of a
  magnitude image (needs air); ``"rayleigh"`` is its single-coil case.
- :func:`estimate_coils_and_sigma`: the effective coil number and ``sigma`` fitted together to
  the air (``n_coils="auto"``).
- ``"foreground"``: wavelet MAD over bright blocks without edges of a magnitude image, where
  noncentral-chi noise is nearly Gaussian (needs no air).

:func:`choose_noise_estimator` picks one of them for a noise model.

The estimators live in :mod:`~c2s_denoise.physics.noise.wavelet`, :mod:`~c2s_denoise.physics.noise.background`
and :mod:`~c2s_denoise.physics.noise.foreground`; the automatic choices in :mod:`~c2s_denoise.physics.noise.auto`.
"""

from .auto import NOISE_ESTIMATORS, auto_noise_level, choose_noise_estimator, estimate_sigma, resolve_noise_model
from .background import air_correlation, estimate_coils_and_sigma, estimate_sigma_background, estimate_sigma_rayleigh
from .foreground import estimate_sigma_foreground
from .local_map import estimate_noise_map
from .wavelet import estimate_sigma_wavelet

__all__ = [
    "NOISE_ESTIMATORS",
    "air_correlation",
    "auto_noise_level",
    "choose_noise_estimator",
    "estimate_coils_and_sigma",
    "estimate_noise_map",
    "resolve_noise_model",
    "estimate_sigma",
    "estimate_sigma_background",
    "estimate_sigma_foreground",
    "estimate_sigma_rayleigh",
    "estimate_sigma_wavelet",
]
