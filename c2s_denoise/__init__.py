"""c2s-denoise: Corruption2Self (C2S) self-supervised MRI denoising.

The main entry point is :class:`C2SDenoiser`, a scikit-learn transformer::

    from c2s_denoise import C2SDenoiser
    denoised = C2SDenoiser().fit(noisy).transform(noisy)
"""

from ._version import __version__
from .estimator import C2SDenoiser
from .noise import estimate_sigma

__all__ = ["C2SDenoiser", "__version__", "estimate_sigma"]
