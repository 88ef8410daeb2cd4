"""The estimator's noise levels: the ``sigma`` rule applied to each item and contrast.

``sigma`` is a number (in input units), an estimator name, ``"auto"``, or with named contrasts
a dict ``{contrast: number or name}`` (see :class:`c2s_denoise.C2SDenoiser`).
"""

from __future__ import annotations

import math
import warnings
from numbers import Real

import numpy as np
from scipy.special import gammaincinv

from ..physics.noise import (
    air_correlation,
    auto_noise_level,
    estimate_coils_and_sigma,
    estimate_noise_map,
    estimate_sigma,
    resolve_noise_model,
)

__all__ = [
    "MIN_RELATIVE_SIGMA",
    "coils",
    "effective_coils",
    "resolve_coils",
    "warn_if_correlated",
    "warn_if_noise_varies",
    "has_air_and_object",
    "noise_level",
    "noise_levels",
    "sigma_rule",
]


# Noise levels below this (in normalised units, i.e. relative to the image's intensity scale) are
# raised to it: a zero level makes every GDSM coefficient 0/0.
MIN_RELATIVE_SIGMA = 1e-3


def coils(noise_model: str, n_coils: float) -> float:
    """Coils behind a magnitude image: ``n_coils`` for ``"ncchi"``, else 1."""
    return n_coils if noise_model == "ncchi" else 1


#: ``n_coils="auto"`` reads a fitted number below ``1 + this`` as one coil (Rician): on one-coil air the fit
#: scatters just above 1 (mean 1.03, at most 1.08 over 8 seeds with 2000 air pixels; 1.005 with 31000).
_ONE_COIL_TOLERANCE = 0.1
#: Fewest air pixels for a fit of the coil number: with 2000 the one-coil estimate scatters by 0.03.
_MIN_AIR_PIXELS = 2000


def has_air_and_object(volume: np.ndarray, n_coils: float, sigma: float) -> bool:
    """Whether a fit of the air is believable: at least 10% of the positive pixels, and at least 2000, are
    air (below the 90% quantile of the chi(2N) air, counted as 90% of it) and at least 5% are clearly not
    (above its 99.9% quantile). A field of tissue without air fits a "background" too, but then nothing
    stands above it."""
    values = volume[volume > 0]
    below = np.count_nonzero(values < sigma * math.sqrt(2.0 * gammaincinv(n_coils, 0.9)))
    if below < _MIN_AIR_PIXELS:
        return False
    above = np.count_nonzero(values > sigma * math.sqrt(2.0 * gammaincinv(n_coils, 0.999)))
    return bool(below / 0.9 >= 0.1 * values.size and above >= 0.05 * values.size)


def resolve_coils(
    n_coils: float | str, noise_model: str, volumes: list, names: str = "X", *, pool: bool = True
) -> float:
    """The coils behind the images: ``n_coils`` as given; for ``"auto"``, one under Gaussian noise, else
    :func:`effective_coils` fitted to the air of ``volumes``."""
    if n_coils != "auto":
        return float(n_coils)
    return 1.0 if noise_model == "gaussian" else effective_coils(volumes, names, pool=pool)


def effective_coils(volumes: list, names: str = "X", *, pool: bool = True) -> float:
    """``n_coils="auto"``: the effective coil number fitted to the air of the magnitude volumes.

    The slices of all volumes of one in-plane shape are fitted together (one model, one coil
    number), and the median is taken over the shapes. Complex volumes and volumes with negative
    values (Gaussian noise) are skipped, and so are groups without air (:func:`has_air_and_object`).
    Where no group has signal-free air to fit, one coil is assumed, with a warning. A median below
    1.1 is one coil. ``pool=False`` fits each volume alone (lazily read volumes: one in memory at a
    time).
    """
    groups: dict[object, list[np.ndarray]] = {}
    for index, volume in enumerate(volumes):
        array = np.asarray(volume[...])
        if not np.iscomplexobj(array) and float(np.min(array)) >= 0:
            key = array.shape[-2:] if pool else index
            groups.setdefault(key, []).append(array.reshape(-1, *array.shape[-2:]))
    estimates = []
    for slices in groups.values():  # the slices of every item of one in-plane shape, fitted together
        array = np.concatenate(slices) if len(slices) > 1 else slices[0]
        try:
            n_coils, sigma = estimate_coils_and_sigma(array)
        except ValueError:
            continue
        if has_air_and_object(array, n_coils, sigma):
            estimates.append(n_coils)
    if not groups:
        return 1.0
    if not estimates:
        warnings.warn(
            f"n_coils='auto' found too little signal-free air in {names} to fit the number of coils; one coil (Rician "
            "noise) is assumed: pass n_coils=N if the images are root-sum-of-squares of N coils",
            UserWarning,
            stacklevel=4,
        )
        return 1.0
    n_coils = float(np.median(estimates))
    return 1.0 if n_coils < 1.0 + _ONE_COIL_TOLERANCE else n_coils


def sigma_rule(sigma: float | str | dict, contrast: str | None) -> float | str:
    """The ``sigma`` parameter's rule for one contrast."""
    return sigma[contrast] if isinstance(sigma, dict) else sigma


def noise_level(
    volume: np.ndarray,
    rule: float | str,
    noise_model: str | None,
    *,
    noise_model_rule: str,
    n_coils: int,
    contrast: str | None = None,
) -> tuple[float, str]:
    """``(sigma, how)``: the noise level that ``rule`` gives ``volume``, and the estimator used.

    Parameters
    ----------
    volume : ndarray, shape (H, W) or (D, H, W)
        One image or volume, real or complex.
    rule : float or str
        A level in input units ("given"), an estimator name, or ``"auto"``.
    noise_model : str or None
        The fitted noise model; None resolves ``noise_model_rule`` on ``volume``.
    noise_model_rule : str
        The estimator's ``noise_model`` parameter.
    n_coils : int
        The estimator's ``n_coils`` parameter.
    contrast : str, optional
        Named in the error message.

    Raises
    ------
    ValueError
        For a rule that is neither a finite positive number nor a name, or when the estimator
        cannot measure the noise of ``volume``.
    """
    if isinstance(rule, str):
        volume = np.asarray(volume)
        if noise_model is None:
            noise_model = resolve_noise_model([volume], noise_model_rule, n_coils=n_coils)
        n = coils(noise_model, n_coils)
        if rule != "auto":
            return float(estimate_sigma(volume, rule, n_coils=1 if rule == "rayleigh" else n)), rule
        return auto_noise_level(volume, noise_model, n_coils=n)
    if isinstance(rule, Real) and not isinstance(rule, bool) and 0 < rule < np.inf:
        return float(rule), "given"
    raise ValueError(f"sigma for contrast {contrast!r} must be a finite positive number or a method name, got {rule!r}")


def noise_levels(
    items: list[np.ndarray],
    contrasts: tuple[str, ...] | None,
    sigma: float | str | dict,
    noise_model: str | None,
    *,
    noise_model_rule: str,
    n_coils: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise level of each item and contrast ``(n_items, n_contrasts)`` in input units, and how it was obtained.

    An estimator that fails on an item gives level 0 and method ``"failed"`` with a warning
    ("item 3, contrast 'T1': ...") instead of an error; a given level that is not valid raises.
    """
    levels = np.empty((len(items), items[0].shape[0]), dtype=np.float64)
    methods = np.empty(levels.shape, dtype=object)
    for c in range(levels.shape[1]):
        contrast = contrasts[c] if contrasts else None
        rule = sigma_rule(sigma, contrast)
        for i, item in enumerate(items):
            try:
                levels[i, c], methods[i, c] = noise_level(
                    item[c], rule, noise_model, noise_model_rule=noise_model_rule, n_coils=n_coils, contrast=contrast
                )
            except ValueError as exc:
                if not isinstance(rule, str):
                    raise
                warnings.warn(
                    f"item {i}" + (f", contrast {contrast!r}" if contrasts else "") + f": {exc}; it is treated as "
                    f"nearly noise-free (sigma = {MIN_RELATIVE_SIGMA:g} x its intensity scale) and comes back "
                    "almost unchanged",
                    UserWarning,
                    stacklevel=4,
                )
                levels[i, c], methods[i, c] = 0.0, "failed"
    return levels, methods.astype(str)


#: Neighbouring air pixels correlated above this (white noise: below 0.015 with thousands of pairs) get a warning.
MAX_AIR_CORRELATION = 0.08


def warn_if_correlated(items: list[np.ndarray], sigmas: np.ndarray, noise_model: str, n_coils: float) -> None:
    """Warn when the air of a magnitude item shows spatially correlated noise (interpolated, filtered or
    zero-filled images): C2S models white noise and removes only part of correlated noise.

    ``items`` are ``(C, D, H, W)`` with ``sigmas`` ``(n_items, C)``; only magnitude noise models are checked
    (their air has a known law), and only items with enough air (:func:`~c2s_denoise.physics.noise.air_correlation`).
    """
    if noise_model == "gaussian":
        return
    n = coils(noise_model, n_coils)
    worst = None
    for index, (item, sigma_row) in enumerate(zip(items, sigmas)):
        for channel, sigma in enumerate(sigma_row):
            if sigma <= 0:
                continue
            correlation = air_correlation(item[channel], n, float(sigma))
            if correlation is not None and (worst is None or correlation > worst[0]):
                worst = (correlation, index)
    if worst is not None and worst[0] > MAX_AIR_CORRELATION:
        warnings.warn(
            f"the noise of item {worst[1]} is spatially correlated (neighbouring air pixels correlate by "
            f"{worst[0]:.2f}; white noise gives about 0): the image was probably interpolated, filtered or "
            "zero-filled, and C2S, which models white noise of level sigma, will remove only part of it; "
            "denoise images at their acquired resolution where you can",
            UserWarning,
            stacklevel=4,
        )


#: A noise map whose 90th percentile exceeds its 10th by more than this factor gets a warning. Measured
#: (``estimate_noise_map`` on MNI152 and dipy T1 slices): one level everywhere gives 1.04-1.10 (Gaussian) to
#: 1.13 (magnitude), dipy's real b0 scans 1.14-1.16; SENSE at R = 2 gives 1.34, bias fields and g-factors 1.6 to 2.2.
MAX_NOISE_MAP_SPREAD = 1.25
#: Items on which :func:`warn_if_noise_varies` estimates a map (evenly spread), and slices per item (the central
#: block: the map estimator reads a volume's neighbouring slices together).
_SPREAD_ITEMS, _SPREAD_SLICES = 8, 16


def _spread_sample(count: int) -> np.ndarray:
    return np.unique(np.linspace(0, count - 1, min(count, _SPREAD_ITEMS)).round().astype(int))


def _central_block(depth: int) -> slice:
    start = max(0, (depth - _SPREAD_SLICES) // 2)
    return slice(start, start + _SPREAD_SLICES)


def warn_if_noise_varies(items: list[np.ndarray], noise_model: str, n_coils: float) -> None:
    """Warn when the noise level of an item varies across the image (accelerated or intensity-corrected
    scans) while ``sigma`` gives one level per item.

    ``items`` are ``(C, D, H, W)``. The local noise map (:func:`~c2s_denoise.physics.noise.estimate_noise_map`)
    of up to 8 items, evenly spread (of each, the central block of up to 16 slices), is compared by the ratio
    of its 90th to its 10th percentile with :data:`MAX_NOISE_MAP_SPREAD`; items too small for a map are
    skipped.
    """
    n = coils(noise_model, n_coils)
    worst = None
    for index in _spread_sample(len(items)):
        item = items[index]
        for channel in range(item.shape[0]):
            volume = item[channel][_central_block(item.shape[1])]
            try:
                noise_map = estimate_noise_map(volume, noise_model=noise_model, n_coils=n)
            except ValueError:  # too small or constant: nothing to say
                continue
            low, high = np.percentile(noise_map, [10, 90])
            if low > 0 and (worst is None or high / low > worst[0]):
                worst = (float(high / low), int(index))
    if worst is not None and worst[0] > MAX_NOISE_MAP_SPREAD:
        warnings.warn(
            f"the noise level varies across item {worst[1]}: its local noise map spans a factor {worst[0]:.1f} "
            "(10th to 90th percentile; one level everywhere gives about 1.1), as in accelerated (SENSE, GRAPPA) "
            "or intensity-corrected scans. With one sigma per item C2S leaves noise where the level is higher "
            "and blurs where it is lower: sigma='local' estimates a noise map per pixel",
            UserWarning,
            stacklevel=4,
        )
