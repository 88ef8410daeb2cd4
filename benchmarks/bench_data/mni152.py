"""Axial slices of the MNI152 T1 template (nilearn), split into training and test slices.

MNI152 T1 template (``nilearn``)
    ``nilearn.datasets.load_mni152_template(resolution=1)``: the skull-stripped ICBM152 2009a
    non-linear asymmetric T1 template at 1 mm, an array of 197 x 233 x 189 voxels with values in
    [0, 1] (8-bit quantised, background exactly 0), affine RAS+ (``nibabel.aff2axcodes`` gives
    ``('R', 'A', 'S')``). The third array axis is therefore inferior -> superior, and **axial
    slices are** ``volume[:, :, k]``. Each slice is returned as ``np.rot90(volume[:, :, k])``:
    233 rows (anterior at the top) by 197 columns (array x: from the patient's left to right,
    the neurological display convention); slice ``k`` lies at ``z = k - 72`` mm in MNI space.
    ``load_mni152_brain_mask(resolution=1)`` gives the matching binary brain mask, which
    nilearn computes as ``template > 0.2`` (0.04% of the voxels are in (0, 0.2]; all others
    outside the mask are exactly 0). The template file and this API are the same in nilearn
    0.10.0 and 0.14.1 (checked in both wheels).
    Being an average of 152 brains, the template is smoother than a single acquisition.

Default MNI152 train/test split (``load_mni152_axial()`` with its defaults)
    Candidate slices are those whose brain mask covers at least ``min_brain_fraction = 0.15`` of
    the 233 x 197 slice: axial indices 26..138 (113 slices). The test slices are
    ``DEFAULT_TEST_SLICES = (40, 56, 72, 88, 104, 120)``, 16 mm apart (z = -32 to +48 mm), from
    the temporal lobes and cerebellum to the upper frontal/parietal lobes. Training slices are
    the candidates more than ``gap = 4`` slices away from every test slice (the nearest training
    slice is 5 mm from a test slice), thinned to every ``train_stride = 2``-th of that list
    (the stride runs over the whole list, not per block), which gives the 30 slices
    ``DEFAULT_TRAIN_SLICES`` = 26, 28, 30, 32, 34, 45, 47, 49, 51, 62, 64, 66, 77, 79, 81, 83,
    94, 96, 98, 109, 111, 113, 115, 126, 128, 130, 132, 134, 136, 138
    (checked by ``tests/test_bench_data.py``).

The split and crop helpers here are shared by the multi-contrast and slab loaders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .deps import require

__all__ = [
    "DEFAULT_TEST_SLICES",
    "DEFAULT_TRAIN_SLICES",
    "SliceSplit",
    "load_mni152_axial",
    "mni152_volume",
]

#: Axial MNI152 slices held out for testing (indices along the template's third axis).
DEFAULT_TEST_SLICES: tuple[int, ...] = (40, 56, 72, 88, 104, 120)
#: Axial MNI152 training slices produced by the default arguments of :func:`load_mni152_axial`.
DEFAULT_TRAIN_SLICES: tuple[int, ...] = (
    26, 28, 30, 32, 34, 45, 47, 49, 51, 62, 64, 66, 77, 79, 81,
    83, 94, 96, 98, 109, 111, 113, 115, 126, 128, 130, 132, 134, 136, 138,
)  # fmt: skip


@dataclass(frozen=True)
class Split:
    """The arrays of a training/test split, and where they come from (base of the loaders' splits).

    The subclasses document the shapes and the indices of their arrays.
    """

    train: np.ndarray
    test: np.ndarray
    train_mask: np.ndarray
    test_mask: np.ndarray
    train_indices: tuple
    test_indices: tuple


@dataclass(frozen=True)
class SliceSplit(Split):
    """Clean training and test slices with their brain masks.

    Attributes
    ----------
    train, test : ndarray of shape (n, H, W), float64
        Clean slices in [0, 1].
    train_mask, test_mask : ndarray of shape (n, H, W), bool
        Brain masks of the slices.
    train_indices, test_indices : tuple of int
        Slice index of each image in the source volume (axial index ``k`` of ``volume[:, :, k]``).
    source : str
        Human-readable description of the data.
    """

    source: str


def mni152_volume() -> tuple[np.ndarray, np.ndarray]:
    """Return the 1 mm MNI152 T1 template and its brain mask as arrays.

    Returns
    -------
    volume : ndarray of shape (197, 233, 189), float64
        Template intensities in [0, 1], array axes (x: left -> right, y: posterior -> anterior,
        z: inferior -> superior).
    mask : ndarray of shape (197, 233, 189), bool
        Brain mask.
    """
    require("nilearn")
    from nilearn import datasets

    volume = np.asarray(datasets.load_mni152_template(resolution=1).get_fdata(), dtype=np.float64)
    return volume, mni152_brain_mask()


def mni152_brain_mask() -> np.ndarray:
    """nilearn's 1 mm MNI152 brain mask (``template > 0.2``) as a bool array (197, 233, 189)."""
    from nilearn import datasets

    return np.asarray(datasets.load_mni152_brain_mask(resolution=1).get_fdata()) > 0.5


def axial_slices(volume: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    """Axial slices ``rot90(volume[:, :, k])`` stacked as (n, 233, 197), anterior at the top."""
    if not indices:
        return np.zeros((0, volume.shape[1], volume.shape[0]), dtype=volume.dtype)
    return np.stack([np.rot90(volume[:, :, k]) for k in indices]).copy()


def candidate_slices(mask: np.ndarray, min_brain_fraction: float) -> np.ndarray:
    """Bool per axial slice: the brain mask covers at least ``min_brain_fraction`` of it."""
    return mask.mean(axis=(0, 1)) >= min_brain_fraction


def _test_slices(test_slices: tuple[int, ...], candidate: np.ndarray) -> tuple[int, ...]:
    """The requested test slices that exist and are candidates, sorted."""
    test = tuple(sorted(int(k) for k in test_slices if 0 <= k < candidate.size and candidate[k]))
    if not test:
        raise ValueError("no test slice is above min_brain_fraction")
    return test


def split_slices(
    mask: np.ndarray,
    test_slices: tuple[int, ...],
    gap: int,
    train_stride: int,
    min_brain_fraction: float,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Training and test axial indices of :func:`load_mni152_axial` (see its parameters)."""
    if gap < 0 or train_stride < 1:
        raise ValueError(f"need gap >= 0 and train_stride >= 1, got gap={gap}, train_stride={train_stride}")
    candidate = candidate_slices(mask, min_brain_fraction)
    test = _test_slices(test_slices, candidate)
    free = [int(k) for k in np.flatnonzero(candidate) if all(abs(k - t) > gap for t in test)]
    train = tuple(free[::train_stride])
    if not train:
        raise ValueError("no training slice remains: lower gap or min_brain_fraction")
    return train, test


def crop_box(masks: tuple[np.ndarray, ...], margin: int) -> tuple:
    """Index of the last two axes: bounding box of the union of ``masks`` (..., H, W) + ``margin``."""
    union = np.zeros(masks[0].shape[-2:], dtype=bool)
    for m in masks:
        union |= m.reshape(-1, *m.shape[-2:]).any(axis=0)
    rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
    top, bottom = max(0, rows[0] - margin), min(union.shape[0], rows[-1] + 1 + margin)
    left, right = max(0, cols[0] - margin), min(union.shape[1], cols[-1] + 1 + margin)
    return (Ellipsis, slice(top, bottom), slice(left, right))


def split_fields(
    train_images: np.ndarray,
    test_images: np.ndarray,
    train_masks: np.ndarray,
    test_masks: np.ndarray,
    crop_margin: int | None,
) -> dict[str, np.ndarray]:
    """The ``train``, ``test``, ``train_mask`` and ``test_mask`` fields of a split.

    ``crop_margin`` None keeps the arrays; an integer crops copies of all four to the bounding box
    of the union of the masks enlarged by ``crop_margin`` pixels (:func:`crop_box`).
    """
    arrays = (train_images, test_images, train_masks, test_masks)
    if crop_margin is not None:
        box = crop_box((train_masks, test_masks), crop_margin)
        arrays = tuple(array[box].copy() for array in arrays)
    return dict(zip(("train", "test", "train_mask", "test_mask"), arrays))


def load_mni152_axial(
    *,
    test_slices: tuple[int, ...] = DEFAULT_TEST_SLICES,
    gap: int = 4,
    train_stride: int = 2,
    min_brain_fraction: float = 0.15,
    crop_margin: int | None = None,
) -> SliceSplit:
    """Axial slices of the MNI152 T1 template, split into training and test slices.

    Parameters
    ----------
    test_slices : tuple of int, default=DEFAULT_TEST_SLICES
        Axial indices held out for testing; those below ``min_brain_fraction`` are dropped.
    gap : int, default=4
        Training slices are more than ``gap`` slices (1 mm each) away from every test slice.
    train_stride : int, default=2
        Keep every ``train_stride``-th of the remaining candidate slices for training (adjacent
        1 mm slices of the smooth template are nearly identical).
    min_brain_fraction : float, default=0.15
        A slice is a candidate when its brain mask covers at least this fraction of the slice;
        nearly empty slices at the top and bottom of the head are skipped.
    crop_margin : int or None, default=None
        None returns full 233 x 197 slices. An integer crops all slices (train and test) to the
        bounding box of the union of their brain masks, enlarged by ``crop_margin`` pixels on each
        side (clipped to the slice).

    Returns
    -------
    SliceSplit
        With the defaults: 30 training slices (``DEFAULT_TRAIN_SLICES``) and 6 test slices
        (``DEFAULT_TEST_SLICES``) of 233 x 197 pixels.

    Raises
    ------
    ValueError
        If no test or no training slice remains.
    """
    volume, mask = mni152_volume()
    train, test = split_slices(mask, test_slices, gap, train_stride, min_brain_fraction)
    train_images, test_images = axial_slices(volume, train), axial_slices(volume, test)
    train_masks, test_masks = axial_slices(mask, train), axial_slices(mask, test)
    return SliceSplit(
        **split_fields(train_images, test_images, train_masks, test_masks, crop_margin),
        train_indices=train,
        test_indices=test,
        source="MNI152 2009a T1 template (nilearn), 1 mm, axial",
    )
