"""Co-registered multi-contrast axial slices of the MNI152 anatomy (:func:`load_mni152_multicontrast`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mni152 import DEFAULT_TEST_SLICES, Split, axial_slices, split_fields, split_slices
from .tissue import CONTRASTS, mni152_tissue_maps, simulate_contrasts

__all__ = ["MultiContrastSplit", "load_mni152_multicontrast"]


@dataclass(frozen=True)
class MultiContrastSplit(Split):
    """Clean multi-contrast training and test slices (contrasts as channels) with brain masks.

    Attributes
    ----------
    train, test : ndarray of shape (n, n_contrasts, H, W), float64
        Clean slices in [0, 1]; channel ``c`` is contrast ``contrasts[c]``.
    train_mask, test_mask : ndarray of shape (n, H, W), bool
        Brain masks of the slices (shared by all contrasts).
    train_indices, test_indices : tuple of int
        Axial index ``k`` of each slice in the source volumes.
    contrasts : tuple of str
        Channel names.
    source : str
        Human-readable description of the data.
    """

    contrasts: tuple[str, ...]
    source: str


def load_mni152_multicontrast(
    contrasts: tuple[str, ...] = CONTRASTS,
    *,
    test_slices: tuple[int, ...] = DEFAULT_TEST_SLICES,
    gap: int = 4,
    train_stride: int = 2,
    min_brain_fraction: float = 0.15,
    crop_margin: int | None = 4,
) -> MultiContrastSplit:
    """Simulated co-registered multi-contrast axial slices of the MNI152 anatomy.

    The images of :func:`simulate_contrasts` on the tissue maps of :func:`mni152_tissue_maps`,
    sliced like :func:`load_mni152_axial`: the same training/test indices and, for the same
    arguments, the same crop (both use the template's brain mask).

    Parameters
    ----------
    contrasts : tuple of str, default=CONTRASTS
        Contrasts, in channel order: any of ``"T1"``, ``"T2"``, ``"PD"``, ``"FLAIR"``.
    test_slices, gap, train_stride, min_brain_fraction : see :func:`load_mni152_axial`
    crop_margin : int or None, default=4
        As in :func:`load_mni152_axial` (None: full 233 x 197 slices).

    Returns
    -------
    MultiContrastSplit
        With the defaults: ``train`` of shape (30, 4, 189, 153) and ``test`` (6, 4, 189, 153),
        slices ``DEFAULT_TRAIN_SLICES`` and ``DEFAULT_TEST_SLICES``.
    """
    contrasts = tuple(contrasts)
    if not contrasts or len(set(contrasts)) != len(contrasts):
        raise ValueError(f"contrasts must be distinct and non-empty, got {contrasts}")
    gm, wm, csf, mask = mni152_tissue_maps()
    images = simulate_contrasts(gm, wm, csf, contrasts)
    train, test = split_slices(mask, test_slices, gap, train_stride, min_brain_fraction)
    train_images = np.stack([axial_slices(images[name], train) for name in contrasts], axis=1)
    test_images = np.stack([axial_slices(images[name], test) for name in contrasts], axis=1)
    train_masks, test_masks = axial_slices(mask, train), axial_slices(mask, test)
    return MultiContrastSplit(
        **split_fields(train_images, test_images, train_masks, test_masks, crop_margin),
        train_indices=train,
        test_indices=test,
        contrasts=contrasts,
        source=(
            f"{'/'.join(contrasts)} simulated at 3 T from the MNI152 2009a GM/WM maps (nilearn), 1 mm, axial; "
            "partial-volume mix of literature T1/T2/PD (bench_data.TISSUE_PARAMETERS)"
        ),
    )
