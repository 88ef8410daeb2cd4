"""The scikit-learn estimator :class:`C2SDenoiser`: the only place where numpy meets torch.

- :mod:`.denoiser` -- the face: :class:`C2SDenoiser`, its parameters, docstring and public methods;
- :mod:`._fitting` and :mod:`._inference` -- what ``fit`` and ``transform``/``score`` do, on the
  estimator's validated parameters;
- :mod:`.rules` (no torch) -- decisions shared with the file workflows (complex or real input, slices a
  context needs, contrast names, the names of noise models and sigma methods);
- :mod:`._layouts`, :mod:`._lazy_layouts`, :mod:`._channels`, :mod:`._volumes` -- how arrays,
  lists, dicts of contrasts and lazy volumes become network inputs and back;
- :mod:`._noise_levels`, :mod:`._magnitude_path` -- noise levels and the magnitude path per item;
- :mod:`.model_file`, :mod:`._persistence` -- persistence (the safetensors model file, pickles);
- :mod:`._parameters` -- what each parameter may be, and :class:`InvalidParameterError` when it is not;
- :mod:`.legacy` -- what models saved by older versions meant, in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._parameters import InvalidParameterError
    from .denoiser import C2SDenoiser

__all__ = ["C2SDenoiser", "InvalidParameterError"]


def __getattr__(name: str) -> Any:
    """:class:`C2SDenoiser` on first use, so that :mod:`.rules` is usable without importing torch."""
    if name == "C2SDenoiser":
        from .denoiser import C2SDenoiser

        return C2SDenoiser
    if name == "InvalidParameterError":
        from ._parameters import InvalidParameterError

        return InvalidParameterError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
