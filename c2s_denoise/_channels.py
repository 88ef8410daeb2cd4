"""Network input channels: the target slice first, then its conditioning channels.

Multi-contrast C2S (docs/method.md section 6) and adjacent-slice context feed the network, besides
the target contrast's slice ``z`` (the only channel that is corrupted and regressed on), the
other contrasts' slice ``z`` and the slices ``z - k .. z + k`` of every contrast as
conditioning channels. Their noise is independent of the target's, so they add information
without giving the network the target's own noise.

At the ends of a volume a missing neighbour ``z + j`` is replaced by its mirror ``z - j`` about
the target slice. Mirroring about the volume's edge (``numpy.pad(mode="reflect")``) would, for
``k >= 2``, feed slice ``z`` itself back as a conditioning channel: the network would then see
the target's own noisy values uncorrupted and learn the identity.
"""

from __future__ import annotations

import numpy as np

__all__ = ["channel_plan", "complex_channel_plan", "min_depth", "neighbour_index", "slice_stacks"]


def channel_plan(n_contrasts: int, target: int, context_slices: int) -> list[tuple[int, int]]:
    """``(contrast, slice offset)`` of every input channel, the target ``(target, 0)`` first.

    Parameters
    ----------
    n_contrasts : int
        Contrasts per item.
    target : int
        Index of the contrast being denoised.
    context_slices : int
        ``k``: slices ``z - k .. z + k`` of every contrast enter as conditioning.

    Returns
    -------
    list of (int, int)
        ``1 + (n_contrasts * (2k + 1) - 1)`` channels: the target, then the others in contrast
        order and offset order.
    """
    offsets = range(-context_slices, context_slices + 1)
    others = [(c, o) for c in range(n_contrasts) for o in offsets if (c, o) != (target, 0)]
    return [(target, 0), *others]


def complex_channel_plan(context_slices: int) -> list[tuple[int, int]]:
    """Channels of a complex image stored as parts ``(real, imaginary)``: both parts of slice ``z`` first.

    Both parts are the target (corrupted and regressed on, with one noise level); the parts of
    the neighbouring slices ``z - k .. z + k`` follow as conditioning.
    """
    offsets = [o for o in range(-context_slices, context_slices + 1) if o != 0]
    return [(0, 0), (1, 0), *[(part, o) for part in (0, 1) for o in offsets]]


def min_depth(context_slices: int) -> int:
    """Fewest slices a volume needs so that every neighbour exists on one side of each slice."""
    return max(1, 2 * context_slices)


def neighbour_index(z: int, offset: int, depth: int) -> int:
    """Slice ``z + offset``, or its mirror ``z - offset`` about ``z`` beyond the volume's ends."""
    for index in (z + offset, z - offset):
        if 0 <= index < depth:
            return index
    raise ValueError(f"slice {z} has no neighbour at distance {abs(offset)} in a volume of {depth} slices")


def slice_stacks(item: np.ndarray, plan: list[tuple[int, int]]) -> list[np.ndarray]:
    """Input channels ``(len(plan), H, W)`` of every slice ``z`` of ``item`` ``(C, D, H, W)``."""
    depth = item.shape[1]
    contrasts = np.array([c for c, _ in plan])
    stacks = []
    for z in range(depth):
        slices = np.array([neighbour_index(z, offset, depth) for _, offset in plan])
        stacks.append(item[contrasts, slices])
    return stacks
