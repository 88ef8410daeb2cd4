"""Noise maps for the file workflows: ``noise_map`` as files read like the inputs, or ``"auto"``.

A noise map holds the local noise standard deviation of its image, in the image's units: the
g-factor map of an accelerated scan times its noise level, or a constant level divided by an
intensity (bias-field) correction. The workflows give the estimator the maps as arrays
(``sigma=[...]``, :mod:`c2s_denoise.estimator._noise_maps`), so they know the map each file was
denoised with and can write it (``save_noise_map``):

- ``noise_map="auto"`` estimates each volume's map here, with
  :func:`~c2s_denoise.physics.noise.estimate_noise_map` under the model's noise model and coils
  (what the estimator's ``sigma="local"`` does, estimated once);
- files are read with the inputs' read options, one map for every input or one per input in
  the inputs' order; a map has its image's shape (a 3-D map serves every volume of a 4-D series)
  and, for a NIfTI pair, its affine. Its values are checked by the estimator's rules, whose
  messages are reworded to name the map file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..estimator._noise_levels import coils
from ..estimator.rules import MAP_METHODS
from ..io import C2SInputError, LoadedImage, ReadOptions, load_image
from ._common import PathLike

__all__ = [
    "AFFINE_TOLERANCE",
    "AUTO",
    "check_fit_maps",
    "check_map_use",
    "estimated_maps",
    "given_maps",
    "map_per_input",
    "maps_for_model",
    "read_noise_map",
    "sigma_for_fit",
    "using_maps",
]

#: ``noise_map`` value that estimates a map per volume from the image itself.
AUTO = "auto"
#: Largest difference (in the affine's units, mm) between a NIfTI map's affine and its image's.
AFFINE_TOLERANCE = 1e-3
_MAP_NAME = re.compile(r"^(?:sigma(?:\[\d+\])?|the estimated noise map of item \d+)")


def map_per_input(noise_map: PathLike | Sequence[PathLike] | None, inputs: Sequence[Path]) -> list[str] | None:
    """The noise map of each input: ``"auto"`` or the absolute path of its map file; None without maps.

    Parameters
    ----------
    noise_map : path-like, "auto", sequence of path-like, or None
        ``"auto"``, one map file for every input, or one map file per input (in the inputs' order).
    inputs : sequence of pathlib.Path
        The input files, one per item the maps are for.

    Raises
    ------
    C2SInputError
        For ``"auto"`` given with files, a number of files that is neither 1 nor the number of
        inputs, or a map file that does not exist.
    """
    given = given_maps(noise_map)
    if not given:
        return None
    if AUTO in [str(value) for value in given]:
        if len(given) > 1:
            raise C2SInputError(None, "noise_map='auto' estimates every map: give it alone, without map files")
        return [AUTO] * len(inputs)
    if len(given) not in (1, len(inputs)):
        raise C2SInputError(
            None,
            f"noise_map=... gives {len(given)} map files for {len(inputs)} inputs: give one map for every input, "
            "or one map per input in the inputs' order",
        )
    paths = [Path(value) for value in given]
    for path in paths:
        if not path.exists():
            raise C2SInputError(path, "noise map file not found")
    return [str(path.absolute()) for path in (paths * len(inputs) if len(paths) == 1 else paths)]


def given_maps(noise_map: PathLike | Sequence[PathLike] | None) -> list[PathLike]:
    """``noise_map`` as a list: empty without maps."""
    return [noise_map] if isinstance(noise_map, (str, os.PathLike)) else list(noise_map or [])


def maps_for_model(
    model: Any, subjects: Sequence[Mapping[str | None, Path]], noise_map: PathLike | Sequence[PathLike] | None
) -> list[str | None]:
    """The noise map of each subject for a fitted ``model`` (``"auto"``, a map file, or None without maps).

    A model whose ``sigma`` estimates maps (``"local"``, as ``fit`` with ``noise_map="auto"`` leaves
    it) takes ``"auto"`` without ``noise_map``: the same maps, estimated here to be written.

    Raises
    ------
    C2SInputError
        For maps with a multi-contrast model or one fitted on k-space combined as complex
        images, and as :func:`map_per_input`.
    """
    if not given_maps(noise_map):
        if not (isinstance(model.sigma, str) and model.sigma in MAP_METHODS):
            return [None] * len(subjects)
        noise_map = AUTO
    check_map_use(contrasts=model.contrasts_ is not None, complex_images=bool(model.complex_input_))
    return map_per_input(noise_map, [subject[None] for subject in subjects]) or []


def check_map_use(
    *, contrasts: bool, complex_images: bool, sigma_given: bool = False, path: PathLike | None = None
) -> None:
    """Noise maps take single-contrast magnitude (or real) images and no ``sigma``: a C2SInputError otherwise
    (naming ``path``, the file of complex images)."""
    if sigma_given:
        raise C2SInputError(None, "noise_map=... and sigma=... both give the noise level: give one of them")
    if contrasts:
        raise C2SInputError(
            None, "noise_map=... takes files without contrasts (single-contrast models); contrasts take one level each"
        )
    if complex_images:
        raise C2SInputError(
            path,
            "noise_map=... does not apply to k-space combined as complex images, whose noise level is known (1 after "
            "prewhitening); read them as magnitude with combine='rss' to use noise maps",
        )


def _volume_maps(data: np.ndarray, image: LoadedImage, source: Path | str) -> list[np.ndarray]:
    """``data`` (the image's shape, or one volume's for a 4-D series) as one map per volume of ``image``."""
    if data.shape == image.data.shape:
        return [data] if data.ndim == 3 else list(data)
    if image.data.ndim == 4 and data.shape == image.data.shape[1:]:
        return [data] * image.data.shape[0]  # one map for every volume of the series
    raise C2SInputError(
        source,
        f"noise map of shape {data.shape} does not match {image.source} of shape {image.data.shape}: a noise map has "
        "its image's shape",
    )


def _check_affine(noise_map: LoadedImage, image: LoadedImage) -> None:
    """A NIfTI map lies on its NIfTI image's voxel grid: the same affine, within :data:`AFFINE_TOLERANCE`."""
    if noise_map.format != "nifti" or image.format != "nifti":
        return
    ours, theirs = noise_map.meta.get("affine"), image.meta.get("affine")
    if ours is None or theirs is None:
        return
    difference = float(np.max(np.abs(np.asarray(ours) - np.asarray(theirs))))
    if not difference <= AFFINE_TOLERANCE:
        raise C2SInputError(
            noise_map.source,
            f"noise map's affine differs from that of {image.source} by up to {difference:.3g}: a noise map lies on "
            "its image's voxel grid (same affine)",
        )


def _checked(maps: list[np.ndarray], image: LoadedImage, source: Path | str, what: str) -> list[np.ndarray]:
    """``maps`` (one per volume) checked by the estimator's rules, whose ValueError is reworded to name ``source``."""
    from ..estimator._noise_maps import noise_maps  # here: importing the workflows imports neither sklearn nor torch

    items = [np.broadcast_to(np.float32(0), (1, *volume.shape)) for volume in image.volumes]
    try:
        noise_maps(maps, items, image_shape=None, noise_model="gaussian", n_coils=1.0)
    except ValueError as exc:
        problem = _MAP_NAME.sub(what, str(exc), count=1)
        raise C2SInputError(source, f"{problem} (for {image.source})") from None
    return [
        np.asarray(noise_map, dtype=np.float64).reshape(volume.shape) for noise_map, volume in zip(maps, image.volumes)
    ]


def read_noise_map(path: PathLike, image: LoadedImage, options: ReadOptions) -> list[np.ndarray]:
    """The noise map of ``image`` read from ``path`` with ``image``'s read options, one array per volume.

    Parameters
    ----------
    path : path-like
        The map file (any format :func:`~c2s_denoise.io.load_image` reads), magnitude.
    image : LoadedImage
        The image it belongs to.
    options : ReadOptions
        How the image was read (the crop, slice axis, array and dataset apply to the map too).

    Raises
    ------
    C2SInputError
        Naming the map file: unreadable, a shape or (NIfTI) affine other than the image's,
        or values that are not finite and > 0.
    """
    try:
        noise_map = load_image(path, dataclasses.replace(options, combine="rss"))
    except C2SInputError as exc:
        raise C2SInputError(path, f"cannot read the noise map of {image.source}: {exc.problem}") from None
    maps = _volume_maps(noise_map.data, image, path)
    _check_affine(noise_map, image)
    return _checked(maps, image, path, "noise map")


def estimated_maps(model: Any, image: LoadedImage) -> list[np.ndarray]:
    """The noise map of each volume of ``image``, estimated under ``model``'s fitted noise model and coils.

    The estimator's ``sigma="local"`` makes the same estimate; made here, the workflow keeps it
    (to write it) and the estimator is given the arrays.
    """
    from ..physics.noise import estimate_noise_map

    noise_model = model.noise_model_
    n_coils = coils(noise_model, model.n_coils_)
    maps = [
        estimate_noise_map(volume if volume.shape[0] > 1 else volume[0], noise_model=noise_model, n_coils=n_coils)
        for volume in image.volumes
    ]
    return _checked(maps, image, image.source, "the estimated noise map")


@contextlib.contextmanager
def using_maps(model: Any, maps: list[np.ndarray] | None) -> Iterator[None]:
    """``model`` with ``sigma`` set to ``maps`` (one per item) for the block, its own ``sigma`` restored after."""
    if maps is None:
        yield
        return
    before = model.get_params()["sigma"]
    model.set_params(sigma=maps)
    try:
        yield
    finally:
        model.set_params(sigma=before)


def check_fit_maps(
    noise_map: PathLike | Sequence[PathLike] | None, *, contrasts: bool, stream: bool, sigma_given: bool
) -> None:
    """Before a fit reads anything: maps take files without contrasts, in memory, and no ``sigma``."""
    if not given_maps(noise_map):
        return
    check_map_use(contrasts=contrasts, complex_images=False, sigma_given=sigma_given)
    if stream:
        raise C2SInputError(None, "noise_map=... needs the volumes in memory: leave out stream=True")


def sigma_for_fit(
    noise_map: PathLike | Sequence[PathLike] | None,
    paths: Sequence[Path],
    images: Sequence[LoadedImage],
    options: ReadOptions,
) -> tuple[list[str] | None, Any]:
    """The noise map of each input file (``"auto"`` or its map file; None without maps) and the ``sigma`` that
    fits with them: ``"local"`` (the estimator estimates the maps) or the maps read, one per volume."""
    per_input = map_per_input(noise_map, paths)
    if per_input is None:
        return None, None
    for image in images:
        check_map_use(contrasts=False, complex_images=image.meta.get("combine") == "complex", path=image.source)
    if per_input[0] == AUTO:
        return per_input, MAP_METHODS[0]
    return per_input, [
        volume_map for path, image in zip(per_input, images) for volume_map in read_noise_map(path, image, options)
    ]
