"""Classical denoisers of the volume benchmark: BM4D on volumes, BM3D slice by slice (``pip install bm3d bm4d``).

Both take the noise standard deviation. For magnitude data (``n_coils``: 1 for Rician, more for
the noncentral chi of a root-sum-of-squares) either the output's noise bias is removed afterwards
with the package's :func:`~c2s_denoise.physics.magnitude.unbias_magnitude` (the ``+ bias removal``
of the realistic-scan tables), since neither method models it, or (``vst=True``) they denoise the
variance-stabilised volume (:func:`~c2s_denoise.physics.variance_stabilisation.stabilise`) and the
output goes through its exact unbiased inverse (Foi's approach for BM4D), optionally with the
floor shrinkage C2S uses (``floor_shrinkage``, in units of the output's error spread at the floor;
``FLOOR_SHRINKAGE`` is C2S's default, which the benchmarks' floor rows give the peers).
"""

from __future__ import annotations

import numpy as np

from c2s_denoise import C2SDenoiser
from c2s_denoise.physics.magnitude import unbias_magnitude
from c2s_denoise.physics.variance_stabilisation import stabilise, unstabilise_denoised

__all__ = ["FLOOR_SHRINKAGE", "bm3d_slices", "bm4d_volume"]

#: C2S's default ``floor_shrinkage``: what the peers' floor rows are given.
FLOOR_SHRINKAGE = C2SDenoiser().floor_shrinkage


def _unbias(output: np.ndarray, sigma: float, n_coils: int | None) -> np.ndarray:
    return output if n_coils is None else unbias_magnitude(output, sigma, n_coils)


def bm4d_volume(
    volume: np.ndarray, sigma: float, *, n_coils: int | None = None, vst: bool = False, floor_shrinkage: float = 0.0
) -> np.ndarray:
    """BM4D (profile ``"np"``, both stages) of one volume ``(D, H, W)`` with noise level ``sigma``.

    ``n_coils=None``: Gaussian noise; else magnitude noise of that many coils (bias removal, or
    the stabilised path with ``vst=True``).
    """
    import bm4d

    if n_coils is not None and vst:
        stabilised = stabilise(volume, sigma, n_coils)
        denoised = np.asarray(bm4d.bm4d(stabilised, sigma), dtype=np.float64).reshape(volume.shape)
        return unstabilise_denoised(denoised, sigma, n_coils, floor_shrinkage=floor_shrinkage)
    return _unbias(np.asarray(bm4d.bm4d(volume, sigma), dtype=np.float64).reshape(volume.shape), sigma, n_coils)


def bm3d_slices(
    volume: np.ndarray, sigma: float, *, n_coils: int | None = None, vst: bool = False, floor_shrinkage: float = 0.0
) -> np.ndarray:
    """BM3D of each slice of ``volume`` ``(D, H, W)`` with noise level ``sigma``; magnitude noise as in :func:`bm4d_volume`."""
    import bm3d

    if n_coils is not None and vst:
        denoised = np.stack([bm3d.bm3d(image, sigma) for image in stabilise(volume, sigma, n_coils)])
        return unstabilise_denoised(denoised, sigma, n_coils, floor_shrinkage=floor_shrinkage)
    return _unbias(np.stack([bm3d.bm3d(image, sigma) for image in volume]), sigma, n_coils)
