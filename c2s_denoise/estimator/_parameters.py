"""What each parameter of :class:`~c2s_denoise.estimator.C2SDenoiser` may be, and the check of it.

Checked once, by ``fit`` (:func:`validate_params`), and by ``load`` for a model file's parameters.
The constraints are this module's own small classes (scikit-learn's are private API): a parameter
passes when its value satisfies one of its constraints, and otherwise raises
:class:`InvalidParameterError` naming the parameter, the value and what it may be, in
scikit-learn's words ("The 'max_iter' parameter of C2SDenoiser must be an int in the range [1,
inf). Got 0 instead.").
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from ..engine import LOSS_WEIGHTINGS, NOISE_SCHEDULES, PRECISIONS
from ._magnitude_path import MAGNITUDE_CORRECTIONS
from .rules import INITS, MAP_METHODS, NOISE_MODELS, SIGMA_METHODS

__all__ = [
    "PARAMETER_CONSTRAINTS",
    "SIGMA_VALUE",
    "Constraint",
    "InstanceOf",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "validate_params",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a type or value it may not have.

    Both a ``ValueError`` and a ``TypeError``, like scikit-learn's error of the same name, so
    that code catching either keeps working.
    """


class Constraint(abc.ABC):
    """One thing a parameter may be: :meth:`accepts` a value or not; ``str()`` says what, for a message."""

    @abc.abstractmethod
    def accepts(self, value: Any) -> bool:
        """Whether ``value`` satisfies this constraint."""


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of ``kind`` (``Integral`` or ``Real``) between ``left`` and ``right`` (None: unbounded, and the
    infinity itself excluded); ``closed`` is ``"left"``, ``"right"``, ``"both"`` or ``"neither"``. Booleans and
    NaN are not numbers here."""

    kind: type
    left: float | None
    right: float | None
    closed: str

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, self.kind):
            return False
        if isinstance(value, Real) and math.isnan(value):
            return False
        left = -math.inf if self.left is None else self.left
        right = math.inf if self.right is None else self.right
        above = value >= left if self.closed in ("left", "both") and self.left is not None else value > left
        below = value <= right if self.closed in ("right", "both") and self.right is not None else value < right
        return bool(above and below)

    def __str__(self) -> str:
        def bound(value: float | None, infinite: str) -> str:
            if value is None:
                return infinite
            return str(int(value)) if self.kind is Integral else str(float(value))

        opening = "[" if self.closed in ("left", "both") and self.left is not None else "("
        closing = "]" if self.closed in ("right", "both") and self.right is not None else ")"
        kind = "an int" if self.kind is Integral else "a float"
        return f"{kind} in the range {opening}{bound(self.left, '-inf')}, {bound(self.right, 'inf')}{closing}"


@dataclass(frozen=True)
class StrOptions(Constraint):
    """One of a few strings."""

    options: frozenset[str]

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.options

    def __str__(self) -> str:
        return "a str among {" + ", ".join(repr(option) for option in sorted(self.options)) + "}"


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of one of ``types`` (None: the value None itself); ``name`` is what a message calls it."""

    types: tuple[type, ...]
    name: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def __str__(self) -> str:
        return self.name


def _options(names: Sequence[str]) -> StrOptions:
    return StrOptions(frozenset(names))


def _instance(kind: type) -> InstanceOf:
    return InstanceOf((kind,), f"an instance of {kind.__name__!r}")


NONE = InstanceOf((type(None),), "None")
BOOLEAN = InstanceOf((bool, np.bool_), "a bool")
#: What ``random_state`` may be, as :func:`sklearn.utils.check_random_state` takes it.
RANDOM_STATE = [
    Interval(Integral, 0, 2**32 - 1, "both"),
    InstanceOf((np.random.RandomState,), "a numpy.random.RandomState"),
    NONE,
]

#: What ``sigma`` (or each value of a per-contrast ``sigma`` dict) may be: a finite level > 0, or a method.
SIGMA_VALUE: list[Constraint] = [Interval(Real, 0, None, "neither"), _options(SIGMA_METHODS)]

PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "sigma": [
        *SIGMA_VALUE,
        _instance(dict),
        _options(MAP_METHODS),
        InstanceOf((list, tuple, np.ndarray), "noise maps (a list of arrays, one per item, or an array like X)"),
    ],
    "noise_model": [_options(NOISE_MODELS)],
    "n_coils": [Interval(Real, 1, None, "left"), _options(["auto"])],
    "magnitude_correction": [_options(MAGNITUDE_CORRECTIONS)],
    "floor_shrinkage": [Interval(Real, 0, None, "left")],
    "refinement": [Interval(Real, 0, 1, "left")],
    "tau_max": [Interval(Real, 0, 100, "right")],
    "noise_schedule": [_options(NOISE_SCHEDULES)],
    "loss_alpha": [Interval(Real, None, None, "neither")],
    "loss_weighting": [_options(LOSS_WEIGHTINGS)],
    "width": [Interval(Integral, 1, None, "left")],
    "depth": [Interval(Integral, 1, 8, "both")],
    "attention": [BOOLEAN],
    "noise_conditioning": [BOOLEAN],
    "max_iter": [Interval(Integral, 1, None, "left"), _options(["auto"])],
    "max_time": [Interval(Real, 0, None, "neither"), NONE],
    "batch_size": [Interval(Integral, 1, None, "left")],
    "patch_size": [Interval(Integral, 1, None, "left")],
    "learning_rate": [Interval(Real, 0, 1, "right"), _options(["auto"])],
    "ema_decay": [Interval(Real, 0, 1, "left")],
    "air_weight": [Interval(Real, 0, 1, "right"), _options(["auto"])],
    "precision": [_options(PRECISIONS)],
    "self_ensemble": [BOOLEAN],
    "multiplanar": [BOOLEAN],
    "sure_filter": [BOOLEAN],
    "inference_batch_size": [Interval(Integral, 1, None, "left")],
    "image_shape": [_instance(tuple), _instance(list), NONE],
    "contrasts": [_instance(tuple), _instance(list), NONE],
    "target_contrasts": [_instance(tuple), _instance(list), NONE],
    "context_slices": [Interval(Integral, 0, None, "left"), _options(["auto"])],
    "spatial_dims": [_options(["auto"]), Interval(Integral, 2, 3, "both")],
    "patch_depth": [Interval(Integral, 1, None, "left")],
    "conv3d": [_options(["full", "separable"])],
    "warm_start": [BOOLEAN],
    "init": [_options(INITS)],
    "device": [_instance(str)],
    "random_state": RANDOM_STATE,
    "verbose": [Interval(Integral, 0, None, "left"), BOOLEAN],
}


def check_value(name: str, value: Any, constraints: Sequence[Constraint], owner: str) -> None:
    """Raise :class:`InvalidParameterError` unless ``value`` satisfies one of ``constraints``."""
    if any(constraint.accepts(value) for constraint in constraints):
        return
    allowed = [str(constraint) for constraint in constraints]
    text = allowed[0] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"
    raise InvalidParameterError(f"The {name!r} parameter of {owner} must be {text}. Got {value!r} instead.")


def validate_params(estimator: Any, constraints: Mapping[str, Sequence[Constraint]] = PARAMETER_CONSTRAINTS) -> None:
    """Check every parameter of ``estimator`` (``get_params(deep=False)``) against its constraints.

    Each value of a per-contrast ``sigma`` dict is checked like ``sigma`` itself (as ``sigma['T1']``).

    Raises
    ------
    InvalidParameterError
        For the first parameter that satisfies none of its constraints.
    """
    owner = type(estimator).__name__
    params = estimator.get_params(deep=False)
    for name, value in params.items():
        if name in constraints:
            check_value(name, value, constraints[name], owner)
    sigma = params.get("sigma")
    if isinstance(sigma, dict):
        for contrast, value in sigma.items():
            check_value(f"sigma[{contrast!r}]", value, SIGMA_VALUE, owner)
