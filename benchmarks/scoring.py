"""Scores of the benchmarks: PSNR by :func:`c2s_denoise.metrics.psnr`, also inside a brain mask, and SSIM.

Every benchmark computes PSNR with the package's :func:`~c2s_denoise.metrics.psnr`,
``10 log10(range^2 / MSE)``, with an explicit ``range_``; :func:`masked_psnr` is the same over
the pixels of a mask. SSIM is scikit-image's ``structural_similarity`` (``pip install
c2s-denoise[bench]``).
"""

from __future__ import annotations

import numpy as np

from c2s_denoise.metrics import psnr

__all__ = ["masked_psnr", "metrics", "psnr", "scores"]


def masked_psnr(image: np.ndarray, reference: np.ndarray, mask: np.ndarray, *, range_: float) -> float:
    """PSNR (dB) over the pixels where ``mask`` is True: :func:`c2s_denoise.metrics.psnr` of those pixels."""
    mask = np.asarray(mask, dtype=bool)
    return psnr(np.asarray(image)[mask], np.asarray(reference)[mask], range_=range_)


def metrics(estimate: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """PSNR (whole, brain mask) and SSIM averaged over slices, on the estimate clipped to [0, 1] (range 1)."""
    from skimage.metrics import structural_similarity

    estimate = np.clip(estimate, 0.0, 1.0)
    psnr_whole, psnr_brain, ssim = [], [], []
    for e, c, m in zip(estimate, clean, mask):
        psnr_whole.append(psnr(e, c, range_=1.0))
        psnr_brain.append(masked_psnr(e, c, m, range_=1.0))
        ssim.append(structural_similarity(e, c, data_range=1.0))
    return {"psnr": float(np.mean(psnr_whole)), "psnr_brain": float(np.mean(psnr_brain)), "ssim": float(np.mean(ssim))}


def scores(estimate: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Brain-mask PSNR and whole-slice SSIM, range of the clean volume, averaged over slices (no clipping)."""
    from skimage.metrics import structural_similarity

    peak = float(clean.max())
    psnr_brain = [masked_psnr(e, c, m, range_=peak) for e, c, m in zip(estimate, clean, mask)]
    ssim = [structural_similarity(e, c, data_range=peak) for e, c in zip(estimate, clean)]
    return {"psnr_brain": float(np.mean(psnr_brain)), "ssim": float(np.mean(ssim))}
