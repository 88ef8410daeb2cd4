"""Rules that the estimator and the file workflows share, each decided here once.

- the names ``noise_model`` and ``sigma`` may take (:data:`NOISE_MODELS`, :data:`SIGMA_METHODS`,
  :data:`MAP_METHODS`);
- complex or real input: :func:`image_kind` (all items alike) and :func:`kind_mismatch` (against a
  fitted model);
- how many slices a training volume needs for ``context_slices`` neighbours each side:
  :func:`min_depth` and :func:`depth_problem` (a fitted model denoises thinner volumes too, single
  images included: their missing neighbours are the nearest slices, see
  :func:`~c2s_denoise.estimator._channels.neighbour_index`);
- the contrast names, target contrasts and per-contrast ``sigma`` keys:
  :func:`check_contrast_names`;

Each rule raises a ``ValueError`` (or returns the problem as text) in the estimator's terms; the
workflows add the file it concerns, and only the command line names flags.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..physics.names import NOISE_ESTIMATORS

__all__ = [
    "INITS",
    "MAP_METHODS",
    "NOISE_MODELS",
    "SIGMA_METHODS",
    "check_contrast_names",
    "depth_problem",
    "image_kind",
    "kind_mismatch",
    "min_depth",
]

#: Noise models: "auto" resolves at fit time from the images (negative values: Gaussian; else magnitude).
NOISE_MODELS = ("auto", "gaussian", "rician", "ncchi")
#: Names ``sigma`` may take instead of a level: "auto" (chosen per noise model) or an estimator.
SIGMA_METHODS = ("auto", *NOISE_ESTIMATORS)
#: Names ``sigma`` may take to estimate a noise map per item instead of one level ("local": the local estimator).
MAP_METHODS = ("local",)
#: Where training starts (``init``): the shipped prior where the network fits it, or random weights.
INITS = ("prior", "random")


def image_kind(kinds: Sequence[bool], expected: bool | None = None) -> bool:
    """Whether the items are complex, given whether each is (``kinds``); all must be alike.

    Parameters
    ----------
    kinds : sequence of bool
        For each item, whether it is complex (``numpy.iscomplexobj``).
    expected : bool, optional
        The kind a fitted model takes (its ``complex_input_``); None while fitting.

    Raises
    ------
    ValueError
        When the items mix complex and real images, or differ from ``expected``.
    """
    if any(kinds) and not all(kinds):
        first = list(kinds).index(not kinds[0])
        raise ValueError(
            f"X mixes complex and real images (item 0 is {'complex' if kinds[0] else 'real'}, item {first} is not)"
        )
    is_complex = bool(kinds[0])
    problem = None if expected is None else kind_mismatch(expected, is_complex)
    if problem:
        raise ValueError(problem)
    return is_complex


def kind_mismatch(fitted_complex: bool, is_complex: bool) -> str | None:
    """Why a model fitted on complex (or real) images cannot denoise these images, or None."""
    if bool(fitted_complex) == bool(is_complex):
        return None
    fitted, given = ("complex", "real") if fitted_complex else ("real", "complex")
    return f"the model was fitted on {fitted} images but X is {given}"


def min_depth(context_slices: int) -> int:
    """Fewest slices a training volume needs so that every neighbour exists on one side of each slice.

    Only ``fit`` requires it; ``transform`` takes any depth.
    """
    return max(1, 2 * int(context_slices))


def depth_problem(depth: int, context_slices: int | str) -> str | None:
    """Why a volume of ``depth`` slices is too thin to train with ``context_slices``, or None (``"auto"`` adapts).

    A fitted model denoises volumes of any depth: this is the rule for training inputs only.
    """
    if context_slices == "auto" or depth >= min_depth(int(context_slices)):
        return None
    return (
        f"has {depth} slice(s) but context_slices={context_slices} needs volumes of at least "
        f"{min_depth(int(context_slices))} slices"
    )


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names)


def check_contrast_names(
    contrasts: Sequence[str] | None, target_contrasts: Sequence[str] | None, sigma: object
) -> tuple[str, ...] | None:
    """The contrast names as a tuple (None for single-contrast input), checked with what refers to them.

    ``target_contrasts`` must name contrasts, once each; a dict ``sigma`` must have exactly one
    entry per contrast.

    Raises
    ------
    ValueError
        Naming the contrast at fault.
    """
    if contrasts is None:
        if target_contrasts is not None:
            raise ValueError("target_contrasts=... needs contrasts=... (several named contrasts of each subject)")
        if isinstance(sigma, dict):
            raise ValueError(
                "a per-contrast sigma (a dict) needs contrasts=... (several named contrasts of each subject)"
            )
        return None
    names = tuple(contrasts)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"contrasts must be a non-empty sequence of non-empty names, got {contrasts!r}")
    targets = list(target_contrasts or ())
    for listed, what in ((list(names), "a contrast"), (targets, "a target")):
        duplicates = sorted({name for name in listed if listed.count(name) > 1})
        if duplicates:
            raise ValueError(f"contrast {duplicates[0]!r} is {what} more than once ({_listed(listed)})")
    for name in targets:
        if name not in names:
            raise ValueError(f"target contrast {name!r} is not one of the contrasts ({_listed(names)})")
    if isinstance(sigma, dict):
        for name in sigma:
            if name not in names:
                raise ValueError(
                    f"sigma has an entry for contrast {name!r}, which is not one of the contrasts ({_listed(names)})"
                )
        for name in names:
            if name not in sigma:
                raise ValueError(
                    f"sigma has no entry for contrast {name!r} (give one value for all contrasts or one per contrast)"
                )
    return names
