"""c2s-denoise: Corruption2Self (C2S) self-supervised MRI denoising.

The main entry point is :class:`C2SDenoiser`, a scikit-learn transformer::

    from c2s_denoise import C2SDenoiser
    denoised = C2SDenoiser().fit(noisy).transform(noisy)

:class:`C2SDenoiser`, :func:`estimate_sigma`, :func:`psnr_scorer` (scores a
fitted denoiser against clean references) and :class:`InvalidParameterError` (what a
parameter of the wrong type or value raises) are imported on first use
(PEP 562), so that importing the package, or running ``c2s-denoise --help``,
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .estimator import C2SDenoiser, InvalidParameterError
    from .metrics import psnr_scorer
    from .physics.noise import estimate_sigma

__all__ = ["C2SDenoiser", "InvalidParameterError", "__version__", "estimate_sigma", "psnr_scorer"]

#: Public names imported on first use, and the module that defines each.
_LAZY = {
    "C2SDenoiser": ".estimator",
    "InvalidParameterError": ".estimator",
    "estimate_sigma": ".physics.noise",
    "psnr_scorer": ".metrics",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
