"""MNI152 T1 volumes at a chosen slice spacing and thickness, split along z into training and test blocks.

Volumes for 3-D denoisers (``load_mni152_volumes``)
    The candidate axial slices of :mod:`bench_data.mni152` (brain fraction >= 0.15: 1 mm
    indices 26..138) are resampled to slices ``spacing`` mm apart, each the mean of
    ``thickness`` consecutive 1 mm slices (a box slice profile: ``thickness = spacing`` gives
    contiguous thick slices with their partial-volume blur). The slices are cut into
    ``n_blocks`` contiguous blocks along z, alternately training and test (block 0 trains), with
    ``gap`` slices dropped at each boundary so that no test slice touches a training slice.
    Alternating blocks give both sets anatomy from the cerebellum to the vertex. Every block is
    cropped in-plane to the bounding box of all brain masks plus ``crop_margin`` voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mni152 import Split, axial_slices, candidate_slices, crop_box, mni152_volume

__all__ = ["VolumeSplit", "load_mni152_volumes"]


@dataclass(frozen=True)
class VolumeSplit(Split):
    """Clean training and test volumes (contiguous blocks of axial slices) with brain masks.

    Attributes
    ----------
    train, test : list of ndarray, each (D, H, W), float64
        Clean blocks in [0, 1], slices inferior -> superior (blocks may differ in depth).
    train_mask, test_mask : list of ndarray, each (D, H, W), bool
        Brain masks (the thick slice's mean mask above 0.5).
    train_indices, test_indices : tuple of tuple of int
        First 1 mm template slice of each slice of each block.
    spacing, thickness : int
        Slice spacing and thickness in mm (in-plane voxels are 1 mm).
    source : str
    """

    spacing: int
    thickness: int
    source: str


def _thick_slices(source: np.ndarray, starts: list[int], thickness: int) -> np.ndarray:
    """Axial slices, each the mean of ``thickness`` 1 mm slices from its start (``axial_slices`` layout)."""
    return np.mean([axial_slices(source.astype(np.float64), tuple(k + j for k in starts)) for j in range(thickness)], 0)


def load_mni152_volumes(
    spacing: int = 2,
    thickness: int | None = None,
    *,
    n_blocks: int = 4,
    gap: int = 1,
    crop_margin: int = 4,
    min_brain_fraction: float = 0.15,
) -> VolumeSplit:
    """MNI152 T1 volumes with slices ``spacing`` mm apart and ``thickness`` mm thick, split along z.

    Parameters
    ----------
    spacing : int, default=2
        Distance between slices in mm (1 mm template slices).
    thickness : int, optional
        Slice thickness in mm (mean of that many 1 mm slices); default 1 (thin slices).
    n_blocks : int, default=4
        Contiguous blocks along z, alternately training and test.
    gap : int, default=1
        Slices dropped at each boundary between blocks.
    crop_margin : int, default=4
        In-plane margin around the brain's bounding box.
    min_brain_fraction : float, default=0.15
        Slices whose brain mask covers less of the slice are dropped (the top and bottom of the head).

    Returns
    -------
    VolumeSplit

    Raises
    ------
    ValueError
        For bad sizes, or blocks left with fewer than 4 slices.
    """
    thickness = 1 if thickness is None else thickness
    if spacing < 1 or thickness < 1 or n_blocks < 2 or gap < 0:
        raise ValueError(
            f"need spacing, thickness >= 1, n_blocks >= 2, gap >= 0; got {spacing}, {thickness}, {n_blocks}, {gap}"
        )
    volume, mask = mni152_volume()
    candidates = np.flatnonzero(candidate_slices(mask, min_brain_fraction))
    starts = list(range(int(candidates[0]), int(candidates[-1]) - thickness + 2, spacing))
    images = _thick_slices(volume, starts, thickness)
    masks = _thick_slices(mask, starts, thickness) > 0.5
    bounds = np.linspace(0, len(starts), n_blocks + 1).round().astype(int)
    blocks = [
        np.arange(bounds[b] + (gap if b > 0 else 0), bounds[b + 1] - (gap if b < n_blocks - 1 else 0))
        for b in range(n_blocks)
    ]
    if min(block.size for block in blocks) < 4:
        raise ValueError(
            f"blocks of fewer than 4 slices ({[block.size for block in blocks]}): lower n_blocks or spacing"
        )
    box = crop_box((masks,), crop_margin)
    images, masks = images[box], masks[box]

    def pick(parity: int, source: np.ndarray) -> list[np.ndarray]:
        return [source[block].copy() for b, block in enumerate(blocks) if b % 2 == parity]

    return VolumeSplit(
        train=pick(0, images),
        test=pick(1, images),
        train_mask=pick(0, masks),
        test_mask=pick(1, masks),
        train_indices=tuple(tuple(starts[k] for k in block) for b, block in enumerate(blocks) if b % 2 == 0),
        test_indices=tuple(tuple(starts[k] for k in block) for b, block in enumerate(blocks) if b % 2 == 1),
        spacing=spacing,
        thickness=thickness,
        source=f"MNI152 2009a T1 template (nilearn), axial slices {spacing} mm apart, {thickness} mm thick",
    )
