"""Models saved by older versions: what each missing parameter or fitted attribute meant, in one place.

A pickle (:mod:`c2s_denoise.estimator._pickling`) or a model file
(:mod:`c2s_denoise.estimator.model_file`) written before a parameter or a fitted attribute existed
is brought up to date here, once, as it loads: every later step reads ``self.<name>`` and never
guesses a default. Each value below is the behaviour the model had when it was saved, not today's
default.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from .._version import __version__

__all__ = [
    "LEGACY_MAGNITUDE_CORRECTION",
    "upgrade_fitted",
    "upgrade_params",
    "upgrade_pickled_networks",
    "version_warnings",
]

#: What models fitted before ``magnitude_correction`` existed did: the first moment was inverted.
LEGACY_MAGNITUDE_CORRECTION = "mean"

#: Parameters that did not exist when some models were saved, and the value that reproduces them.
_PARAMS_BEFORE_THEY_EXISTED: dict[str, Any] = {
    "noise_model": "gaussian",  # before noise models: every image was Gaussian
    "n_coils": 1,
    "air_weight": 1.0,  # before air was down-weighted: patches were drawn uniformly
    "magnitude_correction": LEGACY_MAGNITUDE_CORRECTION,
    "floor_shrinkage": 0.0,  # only the stabilised path uses it
    "warm_start": False,
    "max_time": None,
    "spatial_dims": 2,  # before volumes: slice by slice
    "patch_depth": 16,
    "conv3d": "full",
    "init": "random",  # before the prior: every fit started from random weights
    "multiplanar": False,  # before the three slicing planes: volumes were denoised along their slices
    "sure_filter": False,  # before the SURE filter: the network's output (or the planes' convex mix) as it was
}


def upgrade_params(state: dict[str, Any]) -> None:
    """Add, in place, the parameters an old pickled estimator ``state`` lacks (see the table above).

    A model saved before noise models existed was Gaussian whatever its other parameters; one saved
    before ``magnitude_correction`` inverted the mean and shrank nothing.
    """
    if "magnitude_correction" not in state:
        state["floor_shrinkage"] = 0.0
    for name, value in _PARAMS_BEFORE_THEY_EXISTED.items():
        state.setdefault(name, value)


def upgrade_fitted(model: Any) -> None:
    """Set, in place, the fitted attributes a fitted ``model`` saved by an older version lacks.

    Called once the parameters are set; ``networks_`` must be set already.
    """
    fitted = vars(model)
    fitted.setdefault("noise_model_", "gaussian")  # before noise models
    fitted.setdefault("complex_input_", False)  # before complex input
    fitted.setdefault("phase_demodulated_", False)  # before complex images lost their smooth phase
    fitted.setdefault("magnitude_correction_", LEGACY_MAGNITUDE_CORRECTION)
    if "n_coils_" not in fitted:  # before n_coils="auto", n_coils was a number
        fitted["n_coils_"] = float(model.n_coils)
    if "context_slices_" not in fitted:  # before context_slices="auto", a number
        fitted["context_slices_"] = int(model.context_slices)
    fitted.setdefault("contrasts_", None)  # single-contrast models had no contrasts_
    fitted.setdefault("target_contrasts_", None)
    fitted.setdefault("interrupted_", False)  # before interrupted fits were kept
    fitted.setdefault("init_", "random")  # before the prior


def upgrade_pickled_networks(state: dict[str, Any]) -> dict[Any, dict] | None:
    """Pop the saved network states of a pickled ``state``: ``{contrast or None: saved state}``, or None.

    Single-contrast models were pickled with one ``_network_state``; they are the entry ``None`` of
    ``networks_`` now.
    """
    single = state.pop("_network_state", None)
    several = state.pop("_networks_state", None)
    if single is not None:
        return {None: single}
    return several


def version_warnings(saved_version: str | None, saved_torch: str | None, *, stacklevel: int = 2) -> None:
    """Warn when a model was saved with another c2s-denoise or torch version than the running ones."""
    if saved_version is not None and saved_version != __version__:
        warnings.warn(
            f"this model was saved with c2s-denoise {saved_version}; loading it with {__version__}",
            UserWarning,
            stacklevel=stacklevel,
        )
    if saved_torch is not None and str(saved_torch).split("+")[0] != torch.__version__.split("+")[0]:
        warnings.warn(
            f"this model was saved with torch {saved_torch}; loading it with {torch.__version__}",
            UserWarning,
            stacklevel=stacklevel,
        )
