"""Training volumes read lazily: statistics one volume at a time, patches read from the volumes as drawn.

A lazily readable volume is anything with ``shape``, ``dtype`` and numpy slicing that is not held
in memory: an ``h5py.Dataset``, a ``numpy.memmap``, a zarr array, a NIfTI ``dataobj`` proxy.
``C2SDenoiser.fit`` given a list of them never holds more than one volume in memory: each volume
is read once (twice when ``sigma`` is estimated) to measure its intensity scale, noise level and
kind, and training reads each drawn patch from the volume (:class:`LazySlice`). Values, draws
and therefore the trained network are bitwise those of the same volumes passed as arrays.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..physics.noise import resolve_noise_model
from ..physics.phase import PHASE_MARGIN, smooth_phase
from ._channels import channel_plan, complex_channel_plan, neighbour_index
from ._layouts import _check_image_array, intensity_scale
from ._noise_levels import noise_level, noise_levels
from .rules import depth_problem, image_kind

__all__ = [
    "LazySlice",
    "LazyStatistics",
    "is_lazy",
    "lazy_network_inputs",
    "lazy_statistics",
    "lazy_volumes",
    "volume_depth",
]


def is_lazy(volume: object) -> bool:
    """Whether ``volume`` is read on demand (a memory map, or an array-like that is not an ndarray)."""
    if isinstance(volume, np.memmap):
        return True
    if isinstance(volume, np.ndarray):
        return False
    return all(hasattr(volume, name) for name in ("shape", "dtype", "__getitem__")) and len(volume.shape) >= 2


def lazy_volumes(X: object) -> list[Any] | None:
    """``X`` as a list of lazily readable volumes ``(H, W)`` / ``(D, H, W)``, or None when it holds none."""
    if not isinstance(X, (list, tuple)) or not X or not any(is_lazy(volume) for volume in X):
        return None
    for index, volume in enumerate(X):
        if len(volume.shape) not in (2, 3):
            raise ValueError(f"X[{index}] must be an image (H, W) or a volume (D, H, W), got shape {volume.shape}")
    return list(X)


def volume_depth(volume: Any) -> int:
    """Slices of a lazily read volume (1 for a 2-D array)."""
    return 1 if len(volume.shape) == 2 else int(volume.shape[0])


def _read_slice(volume: Any, z: int, rows: slice, cols: slice) -> np.ndarray:
    return np.asarray(volume[rows, cols] if len(volume.shape) == 2 else volume[z, rows, cols])


@dataclass
class LazyStatistics:
    """What :func:`lazy_statistics` measures: per-volume ``(n, 1)`` levels, methods and scales, the kind."""

    sigmas: np.ndarray
    methods: np.ndarray
    scales: np.ndarray
    is_complex: bool
    noise_model: str


def lazy_statistics(
    volumes: list[Any], sigma: float | str, noise_model_rule: str, n_coils: int, context_slices: int
) -> LazyStatistics:
    """Scale, noise level and kind of each volume, reading one volume into memory at a time.

    Each volume is checked as an array would be (numeric, finite, not empty; all real or all
    complex; deep enough for ``context_slices``). ``noise_model="auto"`` is resolved over all
    volumes as for arrays; an estimated ``sigma`` then reads each volume a second time.
    """
    kinds, scales, extremes = [], [], []
    for index, volume in enumerate(volumes):
        array = _check_image_array(np.asarray(volume[...]), name=f"X[{index}]")
        problem = depth_problem(volume_depth(volume), context_slices)
        if problem:
            raise ValueError(f"item {index} {problem}")
        kinds.append(np.iscomplexobj(array))
        scales.append(intensity_scale(array))
        extremes.append(np.zeros(1, array.dtype) if kinds[-1] else np.array([array.min()]))
        del array
    is_complex = image_kind(kinds)
    noise_model = resolve_noise_model(extremes, noise_model_rule, n_coils=n_coils)  # the extremes decide "auto"
    sigmas, methods = np.empty((len(volumes), 1)), np.empty((len(volumes), 1), dtype=object)
    for index, volume in enumerate(volumes):
        array = None if not isinstance(sigma, str) else _check_image_array(np.asarray(volume[...]), name="X")
        item = None if array is None else array[None]
        if item is None:  # a given level: nothing to read
            sigmas[index, 0], methods[index, 0] = noise_level(
                None, sigma, noise_model, noise_model_rule=noise_model_rule, n_coils=n_coils
            )
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            levels, how = noise_levels(
                [item], None, sigma, noise_model, noise_model_rule=noise_model_rule, n_coils=n_coils
            )
        for warning in caught:  # an estimator that failed: named by this volume's index
            warnings.warn(str(warning.message).replace("item 0", f"item {index}", 1), UserWarning, stacklevel=3)
        sigmas[index, 0], methods[index, 0] = levels[0, 0], how[0, 0]
    return LazyStatistics(
        sigmas=sigmas,
        methods=methods.astype(str),
        scales=np.array([[scale] for scale in scales]),
        is_complex=is_complex,
        noise_model=noise_model,
    )


class LazySlice:
    """The network input ``(n_channels, H, W)`` of one slice, read from its volume patch by patch.

    ``lazy[:, rows, cols]`` reads the slices of the channel plan in that window, divides them by
    the volume's scale and returns a float32 tensor, exactly as the in-memory inputs would hold it.

    Parameters
    ----------
    volume : array-like, (H, W) or (D, H, W)
        A lazily readable volume, real or complex.
    z : int
        The denoised slice.
    plan : list of (int, int)
        ``(channel, slice offset)`` of every input channel: for complex volumes the channel is the
        part (0 real, 1 imaginary), otherwise 0.
    scale : float
        Intensity scale of the volume.
    to_network : callable, optional
        Applied to each window as read, before the scale (the variance stabilisation of magnitude
        volumes: a pixel-wise map, so windows give what the whole volume would).
    phase_sigma : float, optional
        For complex volumes: rotate each window by the smooth phase of its slice
        (:func:`~c2s_denoise.physics.phase.smooth_phase` at this noise level), read with a margin
        of :data:`~c2s_denoise.physics.phase.PHASE_MARGIN` pixels so that it is the whole slice's.
    """

    def __init__(
        self,
        volume: Any,
        z: int,
        plan: list[tuple[int, int]],
        scale: float,
        to_network: Callable[[np.ndarray], np.ndarray] | None = None,
        phase_sigma: float | None = None,
    ) -> None:
        self.volume = volume
        self.to_network = to_network
        self.phase_sigma = phase_sigma
        self.depth = volume_depth(volume)
        self.slices = [(part, neighbour_index(z, offset, self.depth)) for part, offset in plan]
        self.scale = np.float64(scale)
        self.shape = (len(plan), *volume.shape[-2:])

    def __getitem__(self, key: tuple[slice, slice, slice]) -> torch.Tensor:
        channels, rows, cols = key
        if channels != slice(None):
            raise IndexError("a LazySlice is read whole along its channels")
        windows: dict[int, np.ndarray] = {}
        planes = []
        for part, z in self.slices:
            if z not in windows:
                windows[z] = self._read(z, rows, cols)
                if self.to_network is not None:
                    windows[z] = self.to_network(windows[z])
            window = windows[z]
            if np.iscomplexobj(window):
                window = window.imag if part else window.real
            planes.append((window / self.scale).astype(np.float32))  # float64 division, as for arrays
        return torch.from_numpy(np.ascontiguousarray(np.stack(planes)))

    def _read(self, z: int, rows: slice, cols: slice) -> np.ndarray:
        """The window of slice ``z``, rotated by the slice's smooth phase when ``phase_sigma`` is set."""
        if self.phase_sigma is None:
            return _read_slice(self.volume, z, rows, cols)
        height, width = self.shape[-2:]
        (r0, r1, _), (c0, c1, _) = rows.indices(height), cols.indices(width)
        top, left = max(r0 - PHASE_MARGIN, 0), max(c0 - PHASE_MARGIN, 0)
        wide = _read_slice(
            self.volume, z, slice(top, min(r1 + PHASE_MARGIN, height)), slice(left, min(c1 + PHASE_MARGIN, width))
        )
        inner = (slice(r0 - top, r1 - top), slice(c0 - left, c1 - left))
        return wide[inner] * np.conj(smooth_phase(wide, self.phase_sigma)[inner])


def lazy_network_inputs(
    volumes: list[Any],
    sigmas: np.ndarray,
    scales: np.ndarray,
    is_complex: bool,
    context_slices: int,
    min_relative_sigma: float,
    to_network: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    demodulate: bool = False,
) -> tuple[list[LazySlice], list[float], int]:
    """:func:`~c2s_denoise.estimator._channels.network_inputs` for lazily read volumes: one :class:`LazySlice` per slice.

    ``sigmas`` and ``scales`` are ``(n_volumes, 1)`` (or with the complex parts repeated: only
    the first column is used). ``to_network(window, sigma_row)`` maps a window read from a
    volume (as ``(1, 1, h, w)``) with that volume's noise levels ``(1, 1)``. ``demodulate``: complex
    windows are rotated by their slice's smooth phase (``LazySlice(phase_sigma=...)``).
    """
    plan = complex_channel_plan(context_slices) if is_complex else channel_plan(1, 0, context_slices)
    inputs, levels = [], []
    for volume, sigma, scale in zip(volumes, sigmas[:, 0], scales[:, 0]):
        mapping = None
        if to_network is not None:
            mapping = functools.partial(_map_window, to_network=to_network, sigma_row=np.array([[sigma]]))
        phase_sigma = float(sigma) if demodulate and is_complex else None
        stacks = [LazySlice(volume, z, plan, float(scale), mapping, phase_sigma) for z in range(volume_depth(volume))]
        inputs += stacks
        levels += [max(float(sigma) / scale, min_relative_sigma)] * len(stacks)
    return inputs, levels, len(plan)


def _map_window(window: np.ndarray, *, to_network: Callable, sigma_row: np.ndarray) -> np.ndarray:
    return to_network(window[None, None], sigma_row)[0, 0]
