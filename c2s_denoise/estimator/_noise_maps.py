"""Noise that varies across the image: ``sigma`` as a map, and how the estimator takes it to one level.

``sigma`` may give each item a noise map, an array of the item's shape holding the local noise
standard deviation (per real component, in input units): a list with one map per item, or an
array in the layout of ``X``; ``sigma="local"`` estimates one per item
(:func:`~c2s_denoise.physics.noise.estimate_noise_map`).

With a map ``sigma(r)`` the item is divided by its modulation ``m(r) = sigma(r) / sigma_ref``,
``sigma_ref`` the median of the map. The noise of ``y / m`` is white of level ``sigma_ref`` (for
magnitude noise too: ``|A + sigma(r) n| / m(r) = |A / m(r) + sigma_ref n|``), so the scalar
machinery (noise model, stabilisation, training, inference) applies unchanged, and the output is
multiplied by ``m`` again. Trained this way, the GDSM step corrupts the item by
``tau sigma(r) z`` and its minimiser is the heteroscedastic ``E[x_target | x_t]``
(docs/method.md section 11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..physics.noise import estimate_noise_map
from ._layouts import split_volumes
from .rules import MAP_METHODS

__all__ = ["NoiseMaps", "check_map_support", "is_map_rule", "noise_maps"]


def is_map_rule(sigma: object) -> bool:
    """Whether ``sigma`` gives noise maps: arrays (a list of them, or one array in ``X``'s layout) or ``"local"``."""
    if isinstance(sigma, str):
        return sigma in MAP_METHODS
    return isinstance(sigma, (list, tuple, np.ndarray))


@dataclass(frozen=True)
class NoiseMaps:
    """The noise maps of the items, as the modulations that take each item to one level.

    Attributes
    ----------
    modulations : list of ndarray, each (D, H, W)
        ``m(r) = sigma(r) / sigma_ref`` of each item, median 1.
    levels : ndarray, shape (n_items,)
        ``sigma_ref`` of each item, the median of its map (input units).
    method : str
        ``"map"`` for given maps, ``"local"`` for estimated ones.
    """

    modulations: list[np.ndarray]
    levels: np.ndarray
    method: str

    def flatten(self, items: list[np.ndarray]) -> list[np.ndarray]:
        """Items ``(C, D, H, W)`` divided by their modulation: white noise of level ``levels[i]`` (new arrays)."""
        return [item / modulation[None] for item, modulation in zip(items, self.modulations)]

    def restore(self, items: list[np.ndarray]) -> list[np.ndarray]:
        """Denoised flattened items multiplied by their modulation again (the input's noise-map units)."""
        return [item * modulation[None] for item, modulation in zip(items, self.modulations)]

    def maps(self) -> list[np.ndarray]:
        """The noise map of each item, ``sigma_ref m(r)`` (input units)."""
        return [level * modulation for level, modulation in zip(self.levels, self.modulations)]


def _check_map(noise_map: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``noise_map`` as float64 of ``shape`` (D, H, W), or a ValueError naming what is wrong with it."""
    if np.iscomplexobj(noise_map):
        raise ValueError(f"{name} is complex: a noise map holds real noise levels (standard deviations)")
    array = np.asarray(noise_map, dtype=np.float64)
    if array.ndim == 2 and len(shape) == 3 and shape[0] == 1:
        array = array[None]
    if array.shape != shape:
        given = array.shape[1:] if array.ndim == 3 and array.shape[0] == 1 else array.shape
        wanted = shape[1:] if shape[0] == 1 else shape
        raise ValueError(
            f"{name} has shape {given}, but its image has shape {wanted}: a noise map has the image's shape"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s): a noise map must be finite and > 0")
    if (array <= 0).any():
        raise ValueError(
            f"{name} has {int((array <= 0).sum())} value(s) <= 0 (smallest {float(array.min()):g}): a noise map must "
            "be > 0 everywhere, the air included (fill it with the nearest level)"
        )
    return array


def _given_maps(sigma: object, items: list[np.ndarray], image_shape: tuple[int, int] | None) -> list[np.ndarray]:
    """The given maps of ``sigma``, one per item ``(C, D, H, W)``, checked against the items' shapes."""
    if isinstance(sigma, (list, tuple)) and any(np.ndim(value) < 2 for value in sigma):
        raise ValueError(
            "sigma is a list, so it must hold one noise map per item (arrays of the items' shapes); for one level per "
            "item use a number or a method name"
        )
    for index, value in enumerate(sigma if isinstance(sigma, (list, tuple)) else [sigma]):
        name = f"sigma[{index}]" if isinstance(sigma, (list, tuple)) else "sigma"
        if np.iscomplexobj(value):
            raise ValueError(f"{name} is complex: a noise map holds real noise levels (standard deviations)")
        bad = ~np.isfinite(np.asarray(value, dtype=np.float64))
        if bad.any():
            raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s): a noise map must be finite and > 0")
    try:
        maps, _ = split_volumes(list(sigma) if isinstance(sigma, tuple) else sigma, image_shape, np.asarray)
    except ValueError as exc:
        raise ValueError(f"sigma as noise maps: {exc}") from exc
    if len(maps) != len(items):
        raise ValueError(
            f"sigma has {len(maps)} noise map(s) but X has {len(items)} item(s): give one map per item, of its shape "
            "(set_params(sigma=[...]) before transform for new images)"
        )
    return [
        _check_map(noise_map, item.shape[1:], f"sigma[{index}]")
        for index, (noise_map, item) in enumerate(zip(maps, items))
    ]


def noise_maps(
    sigma: object,
    items: list[np.ndarray],
    *,
    image_shape: tuple[int, int] | None,
    noise_model: str,
    n_coils: float,
) -> NoiseMaps:
    """The noise maps that the ``sigma`` rule gives ``items``, as :class:`NoiseMaps`.

    Parameters
    ----------
    sigma : list of array, ndarray or "local"
        One map per item (each of the item's shape ``(H, W)`` or ``(D, H, W)``), an array in the
        layout of ``X``, or ``"local"`` to estimate them.
    items : list of ndarray, each (1, D, H, W)
        The items (one contrast), real or complex.
    image_shape : tuple of int or None
        The estimator's ``image_shape``, for maps given as 2-D rows like ``X``.
    noise_model, n_coils : str, float
        The noise model and coils ``"local"`` estimates under.

    Raises
    ------
    ValueError
        For maps that do not match the items (number, shape) or are not finite and > 0.
    """
    if isinstance(sigma, str):
        maps = [
            estimate_noise_map(item[0] if item.shape[1] > 1 else item[0, 0], noise_model=noise_model, n_coils=n_coils)
            for item in items
        ]
        maps = [
            _check_map(noise_map, item.shape[1:], f"the estimated noise map of item {index}")
            for index, (noise_map, item) in enumerate(zip(maps, items))
        ]
        method = "local"
    else:
        maps, method = _given_maps(sigma, items, image_shape), "map"
    levels = np.array([float(np.median(noise_map)) for noise_map in maps])
    return NoiseMaps([noise_map / level for noise_map, level in zip(maps, levels)], levels, method)


def check_map_support(contrasts: Sequence[str] | None, lazy: bool) -> None:
    """Noise maps need one contrast and images in memory: a ValueError saying so otherwise."""
    if contrasts is not None:
        raise ValueError(
            "sigma as noise maps (arrays or 'local') takes one contrast; with contrasts give one level per contrast"
        )
    if lazy:
        raise ValueError(
            "sigma as noise maps (arrays or 'local') needs the images in memory: pass arrays, not h5py datasets or "
            "memory maps"
        )
