"""Classical denoisers of the volume benchmark: BM4D on volumes, BM3D slice by slice (``pip install bm3d bm4d``).

Both take the noise standard deviation; for magnitude (Rician) data the output's noise bias is
removed afterwards with the package's :func:`~c2s_denoise.physics.magnitude.unbias_magnitude` (the
``+ bias removal`` of the realistic-scan tables), since neither method models it, or (``vst=True``)
they denoise the variance-stabilised volume (:func:`~c2s_denoise.physics.variance_stabilisation.stabilise`)
and the output goes through its exact unbiased inverse (Foi's approach for BM4D).
"""

from __future__ import annotations

import numpy as np

from c2s_denoise.physics.magnitude import unbias_magnitude
from c2s_denoise.physics.variance_stabilisation import stabilise, unstabilise

__all__ = ["bm3d_slices", "bm4d_volume"]


def _unbias(output: np.ndarray, sigma: float, rician: bool) -> np.ndarray:
    return unbias_magnitude(output, sigma, 1) if rician else output


def bm4d_volume(volume: np.ndarray, sigma: float, *, rician: bool = False, vst: bool = False) -> np.ndarray:
    """BM4D (profile ``"np"``, both stages) of one volume ``(D, H, W)`` with noise level ``sigma``."""
    import bm4d

    if rician and vst:
        denoised = np.asarray(bm4d.bm4d(stabilise(volume, sigma, 1), sigma), dtype=np.float64).reshape(volume.shape)
        return unstabilise(denoised, sigma, 1)
    return _unbias(np.asarray(bm4d.bm4d(volume, sigma), dtype=np.float64).reshape(volume.shape), sigma, rician)


def bm3d_slices(volume: np.ndarray, sigma: float, *, rician: bool = False) -> np.ndarray:
    """BM3D of each slice of ``volume`` ``(D, H, W)`` with noise level ``sigma``."""
    import bm3d

    return _unbias(np.stack([bm3d.bm3d(image, sigma) for image in volume]), sigma, rician)
