"""What each parameter of :class:`~c2s_denoise.estimator.C2SDenoiser` may be (scikit-learn's constraints).

Checked once, by ``fit`` (``_validate_params``), and by ``load`` for a model file's parameters.
"""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from ..engine import LOSS_WEIGHTINGS, NOISE_SCHEDULES, PRECISIONS
from ._magnitude_path import MAGNITUDE_CORRECTIONS
from .rules import NOISE_MODELS, SIGMA_METHODS

__all__ = ["PARAMETER_CONSTRAINTS", "SIGMA_VALUE"]

#: What ``sigma`` (or each value of a per-contrast ``sigma`` dict) may be: a finite level > 0, or a method.
SIGMA_VALUE = [Interval(Real, 0, None, closed="neither"), StrOptions(set(SIGMA_METHODS))]

PARAMETER_CONSTRAINTS: dict = {
    "sigma": [*SIGMA_VALUE, dict],
    "noise_model": [StrOptions(set(NOISE_MODELS))],
    "n_coils": [Interval(Real, 1, None, closed="left"), StrOptions({"auto"})],
    "magnitude_correction": [StrOptions(set(MAGNITUDE_CORRECTIONS))],
    "floor_shrinkage": [Interval(Real, 0, None, closed="left")],
    "refinement": [Interval(Real, 0, 1, closed="left")],
    "tau_max": [Interval(Real, 0, 100, closed="right")],
    "noise_schedule": [StrOptions(set(NOISE_SCHEDULES))],
    "loss_alpha": [Interval(Real, None, None, closed="neither")],
    "loss_weighting": [StrOptions(set(LOSS_WEIGHTINGS))],
    "width": [Interval(Integral, 1, None, closed="left")],
    "depth": [Interval(Integral, 1, 8, closed="both")],
    "attention": ["boolean"],
    "noise_conditioning": ["boolean"],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "max_time": [Interval(Real, 0, None, closed="neither"), None],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "patch_size": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, 1, closed="right")],
    "ema_decay": [Interval(Real, 0, 1, closed="left")],
    "air_weight": [Interval(Real, 0, 1, closed="right")],
    "precision": [StrOptions(set(PRECISIONS))],
    "self_ensemble": ["boolean"],
    "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
    "image_shape": [tuple, list, None],
    "contrasts": [tuple, list, None],
    "target_contrasts": [tuple, list, None],
    "context_slices": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
    "spatial_dims": [StrOptions({"auto"}), Interval(Integral, 2, 3, closed="both")],
    "patch_depth": [Interval(Integral, 1, None, closed="left")],
    "conv3d": [StrOptions({"full", "separable"})],
    "warm_start": ["boolean"],
    "device": [str],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}
