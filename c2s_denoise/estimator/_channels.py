"""Network input channels: the denoised slice first, then its conditioning channels.

Multi-contrast C2S (docs/method.md section 6) and adjacent-slice context feed the network, besides
the target contrast's slice ``z`` (the only channel that is corrupted and regressed on), the
other contrasts' slice ``z`` and the slices ``z - k .. z + k`` of every contrast as
conditioning channels. Their noise is independent of the denoised slice's, so they add information
without giving the network that slice's own noise.

At the ends of a volume a missing neighbour ``z + j`` is replaced by its mirror ``z - j`` about
the denoised slice. Mirroring about the volume's edge (``numpy.pad(mode="reflect")``) would, for
``k >= 2``, feed slice ``z`` itself back as a conditioning channel: the network would then see
the denoised slice's own noisy values uncorrupted and learn the identity.

Training volumes have enough slices for that mirror (:func:`~c2s_denoise.estimator.rules.min_depth`).
A fitted model also denoises thinner volumes, down to a single image: a neighbour that has no
mirror either is the nearest slice on its side (a single image is its own neighbour). The network
then sees the denoised slice's noise in a conditioning channel, which costs some of the gain that
real neighbours bring, but only at inference, where nothing is learnt from it.
"""

from __future__ import annotations

import numpy as np

from ..physics.phase import smooth_phase
from .rules import min_depth

__all__ = [
    "AUTO_CONTEXT_SLICES",
    "as_parts",
    "channel_plan",
    "complex_channel_plan",
    "demodulated",
    "neighbour_index",
    "network_inputs",
    "resolve_context_slices",
    "slice_stacks",
]


def channel_plan(n_contrasts: int, target_contrast: int, context_slices: int) -> list[tuple[int, int]]:
    """``(contrast, slice offset)`` of every input channel, the denoised one ``(target_contrast, 0)`` first.

    Parameters
    ----------
    n_contrasts : int
        Contrasts per item.
    target_contrast : int
        Index of the contrast being denoised.
    context_slices : int
        ``k``: slices ``z - k .. z + k`` of every contrast enter as conditioning.

    Returns
    -------
    list of (int, int)
        ``1 + (n_contrasts * (2k + 1) - 1)`` channels: the denoised one, then the others in contrast
        order and offset order.
    """
    offsets = range(-context_slices, context_slices + 1)
    others = [(c, o) for c in range(n_contrasts) for o in offsets if (c, o) != (target_contrast, 0)]
    return [(target_contrast, 0), *others]


def complex_channel_plan(context_slices: int) -> list[tuple[int, int]]:
    """Channels of a complex image stored as parts ``(real, imaginary)``: both parts of slice ``z`` first.

    Both parts are denoised (corrupted and regressed on, with one noise level); the parts of
    the neighbouring slices ``z - k .. z + k`` follow as conditioning.
    """
    offsets = [o for o in range(-context_slices, context_slices + 1) if o != 0]
    return [(0, 0), (1, 0), *[(part, o) for part in (0, 1) for o in offsets]]


#: ``context_slices="auto"`` on volumes: one slice each side (the 2.5-D network; benchmarks/results/volumes.md).
AUTO_CONTEXT_SLICES = 1


def resolve_context_slices(context_slices: int | str, spatial_dims: int, depths: list[int]) -> int:
    """The neighbouring slices each side a fit gives its network.

    Parameters
    ----------
    context_slices : int or "auto"
        A number is kept. ``"auto"``: :data:`AUTO_CONTEXT_SLICES` when the network is 2-D and
        every item is a volume of at least ``min_depth(AUTO_CONTEXT_SLICES)`` slices, 0 otherwise
        (single images, thin volumes, 3-D networks, which see the neighbours through their
        convolutions).
    spatial_dims : {2, 3}
        The network's dimensions for this fit.
    depths : list of int
        Slices of each item.

    Returns
    -------
    int
    """
    if context_slices != "auto":
        return int(context_slices)
    volumes = bool(depths) and all(depth >= max(2, min_depth(AUTO_CONTEXT_SLICES)) for depth in depths)
    return AUTO_CONTEXT_SLICES if spatial_dims == 2 and volumes else 0


def neighbour_index(z: int, offset: int, depth: int) -> int:
    """Slice ``z + offset``, or its mirror ``z - offset`` about ``z`` beyond the volume's ends.

    In a volume thinner than :func:`~c2s_denoise.estimator.rules.min_depth` (which only a fitted
    model takes) a neighbour may have no mirror either: it is then the nearest slice on its side,
    ``z`` itself in a single image.
    """
    for index in (z + offset, z - offset):
        if 0 <= index < depth:
            return index
    return min(max(z + offset, 0), depth - 1)


def slice_stacks(item: np.ndarray, plan: list[tuple[int, int]]) -> list[np.ndarray]:
    """Input channels ``(len(plan), H, W)`` of every slice ``z`` of ``item`` ``(C, D, H, W)``."""
    depth = item.shape[1]
    contrasts = np.array([c for c, _ in plan])
    stacks = []
    for z in range(depth):
        slices = np.array([neighbour_index(z, offset, depth) for _, offset in plan])
        stacks.append(item[contrasts, slices])
    return stacks


def as_parts(
    items: list[np.ndarray], sigmas: np.ndarray, scales: np.ndarray, is_complex: bool
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Complex items ``(1, D, H, W)`` as real ``(2, D, H, W)`` (real, imaginary), levels and scales repeated.

    Real items come back as they are.
    """
    if not is_complex:
        return items, sigmas, scales
    parts = [np.concatenate([item.real, item.imag]) for item in items]
    return parts, np.repeat(sigmas, 2, axis=1), np.repeat(scales, 2, axis=1)


def demodulated(items: list[np.ndarray], sigmas: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Complex items ``(C, D, H, W)`` rotated by their smooth phase, and the phases that put it back.

    Each contrast of each item gets :func:`~c2s_denoise.physics.phase.smooth_phase` at its noise
    level ``sigmas[i, c]``: the anatomy then lies in the real part, the imaginary part holds little
    besides noise (docs/method.md, "Complex images: the smooth phase"). New arrays.
    """
    phases = [
        np.stack([smooth_phase(item[c], float(sigma[c])) for c in range(item.shape[0])])
        for item, sigma in zip(items, sigmas)
    ]
    return [item * np.conj(phase) for item, phase in zip(items, phases)], phases


def network_inputs(
    items: list[np.ndarray],
    sigmas: np.ndarray,
    scales: np.ndarray,
    target_contrast: int,
    context_slices: int,
    *,
    is_complex: bool = False,
    min_relative_sigma: float = 0.0,
) -> tuple[list[np.ndarray], list[float], int]:
    """Normalised network inputs of every slice of every item, for the network of ``target_contrast``.

    Parameters
    ----------
    items : list of ndarray, each (C, D, H, W)
        Real items (complex ones as parts, see :func:`as_parts`).
    sigmas, scales : ndarray, shape (n_items, C)
        Noise level and intensity scale of each item and channel, input units.
    target_contrast : int
        The denoised channel (for complex parts: 0, with 1 the imaginary part).
    context_slices : int
        ``k`` of :func:`channel_plan`.
    is_complex : bool, default=False
        Whether ``items`` are complex parts (:func:`complex_channel_plan`).
    min_relative_sigma : float, default=0.0
        Lower bound of the normalised noise levels.

    Returns
    -------
    inputs : list of ndarray, each (n_channels, H, W), float32, C-contiguous
    levels : list of float
        Normalised noise level of the denoised channel of each input.
    n_channels : int
    """
    if is_complex:
        plan = complex_channel_plan(context_slices)
    else:
        plan = channel_plan(items[0].shape[0], target_contrast, context_slices)
    inputs, levels = [], []
    for item, sigma, scale in zip(items, sigmas, scales):
        normalised = (item / scale[:, None, None, None]).astype(np.float32)
        stacks = slice_stacks(normalised, plan)
        inputs += [np.ascontiguousarray(stack) for stack in stacks]
        levels += [max(float(sigma[target_contrast]) / scale[target_contrast], min_relative_sigma)] * len(stacks)
    return inputs, levels, len(plan)
