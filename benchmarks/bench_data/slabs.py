"""Slabs of contiguous axial MNI152 T1 slices, for denoisers that use neighbouring slices.

Slabs for adjacent-slice (2.5-D) context (``load_mni152_slabs``)
    Contiguous runs of ``slab_depth`` axial T1 slices taken every ``slice_step`` = 2 slices (2 mm
    spacing; 1 mm template slices are nearly identical). Test slabs are centred on the test slices
    (the test slice is slab slice ``(slab_depth - 1) // 2``); training slabs keep every slice more
    than ``gap`` slices from every slice of every test slab. Test slices 16 mm apart leave little
    room: at a 2 mm step a slab spans ``2 (slab_depth - 1) + 1`` mm, so with ``slab_depth = 3``
    and ``gap = 2`` (the defaults) 31 training slab positions remain (3 between each pair of test
    slabs, the rest below and above them), and with ``slab_depth >= 5`` no training slab fits
    between two test slabs at any gap (only above the top one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mni152 import DEFAULT_TEST_SLICES, Split, axial_slices, candidate_slices, mni152_volume, split_fields

__all__ = ["SlabSplit", "load_mni152_slabs"]


@dataclass(frozen=True)
class SlabSplit(Split):
    """Clean training and test slabs (contiguous axial slices) with brain masks.

    Attributes
    ----------
    train, test : ndarray of shape (n_slabs, slab_depth, H, W), float64
        Clean slabs in [0, 1], slices ordered inferior -> superior.
    train_mask, test_mask : ndarray of shape (n_slabs, slab_depth, H, W), bool
        Brain masks of the slab slices.
    train_indices, test_indices : tuple of tuple of int
        Axial indices ``k`` of the slices of each slab (``slice_step`` apart).
    slice_step : int
        Spacing of consecutive slab slices, in template slices (mm).
    source : str
        Human-readable description of the data.
    """

    slice_step: int
    source: str


def load_mni152_slabs(
    n_train_slabs: int,
    slab_depth: int,
    slice_step: int = 2,
    crop_margin: int | None = 4,
    *,
    test_slices: tuple[int, ...] = DEFAULT_TEST_SLICES,
    gap: int = 2,
    min_brain_fraction: float = 0.15,
) -> SlabSplit:
    """Contiguous slabs of axial MNI152 T1 slices, for denoisers that use neighbouring slices.

    A slab is ``slab_depth`` axial slices ``k0, k0 + slice_step, ...``, inferior to superior. One
    test slab is centred on each test slice: its slices are ``t + slice_step * (j - (slab_depth -
    1) // 2)``. Training slabs are chosen among all slabs whose slices are candidates (brain
    fraction >= ``min_brain_fraction``) and lie more than ``gap`` slices from every slice of every
    test slab: ``n_train_slabs`` of them, evenly spread over those positions (sorted by first
    slice). Training slabs may share slices when ``n_train_slabs`` is close to the number of
    positions; they never share one with a test slab.

    Parameters
    ----------
    n_train_slabs : int
        Number of training slabs.
    slab_depth : int
        Slices per slab.
    slice_step : int, default=2
        Spacing of a slab's slices in template slices (mm). Adjacent 1 mm slices of the smooth
        template are nearly identical; 2 mm is closer to clinical slice spacing.
    crop_margin : int or None, default=4
        None returns full 233 x 197 slices; an integer crops every slab to the bounding box of the
        union of all slab masks (train and test) enlarged by ``crop_margin`` pixels.
    test_slices : tuple of int, default=DEFAULT_TEST_SLICES
        Centres of the test slabs; those whose slab leaves the candidate slices are dropped.
    gap : int, default=2
        Minimum distance, exclusive, in slices (mm) between a training slice and a test-slab slice.
        The default is smaller than :func:`load_mni152_axial`'s 4 because with test slices 16 mm
        apart a gap of 4 leaves no room between test slabs (see the docstring of this module).
    min_brain_fraction : float, default=0.15
        A slice is a candidate when its brain mask covers at least this fraction of it.

    Returns
    -------
    SlabSplit
        ``train`` of shape (n_train_slabs, slab_depth, H, W), ``test`` (n_test, slab_depth, H, W),
        their masks and the slice indices of each slab.

    Raises
    ------
    ValueError
        For invalid sizes, when no test slab fits, or when fewer than ``n_train_slabs`` training
        slab positions remain (the message gives how many).
    """
    if n_train_slabs < 1 or slab_depth < 1 or slice_step < 1 or gap < 0:
        raise ValueError(
            "need n_train_slabs >= 1, slab_depth >= 1, slice_step >= 1 and gap >= 0, got "
            f"{n_train_slabs}, {slab_depth}, {slice_step}, {gap}"
        )
    volume, mask = mni152_volume()
    candidate = candidate_slices(mask, min_brain_fraction)

    def fits(slab: tuple[int, ...]) -> bool:
        return all(0 <= k < candidate.size and candidate[k] for k in slab)

    offsets = slice_step * (np.arange(slab_depth) - (slab_depth - 1) // 2)
    test = tuple(slab for slab in (tuple(int(t + o) for o in offsets) for t in sorted(set(test_slices))) if fits(slab))
    if not test:
        raise ValueError("no test slab fits inside the candidate slices: lower slab_depth or slice_step")
    held_out = np.array(sorted({k for slab in test for k in slab}))
    starts = [
        k0
        for k0 in range(candidate.size)
        if fits(slab := tuple(k0 + slice_step * j for j in range(slab_depth)))
        and np.abs(np.array(slab)[:, None] - held_out[None, :]).min() > gap
    ]
    if len(starts) < n_train_slabs:
        raise ValueError(
            f"only {len(starts)} training slab positions of depth {slab_depth} (step {slice_step}) are more than "
            f"{gap} slices from the test slabs; ask for fewer, or lower slab_depth, slice_step or gap"
        )
    picked = [starts[int((i + 0.5) * len(starts) / n_train_slabs)] for i in range(n_train_slabs)]
    train = tuple(tuple(k0 + slice_step * j for j in range(slab_depth)) for k0 in picked)

    def stack(source: np.ndarray, slabs: tuple[tuple[int, ...], ...]) -> np.ndarray:
        return np.stack([axial_slices(source, slab) for slab in slabs])

    train_images, test_images = stack(volume, train), stack(volume, test)
    train_masks, test_masks = stack(mask, train), stack(mask, test)
    return SlabSplit(
        **split_fields(train_images, test_images, train_masks, test_masks, crop_margin),
        train_indices=train,
        test_indices=test,
        slice_step=slice_step,
        source=f"MNI152 2009a T1 template (nilearn), axial slabs of {slab_depth} slices {slice_step} mm apart",
    )
