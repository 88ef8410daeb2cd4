"""Simulated multi-contrast MRI: MNI152 tissue maps and the MR signal of each tissue.

Simulated multi-contrast MRI (``mni152_tissue_maps``, ``simulate_contrasts``)
    Real anatomy, simulated contrast. ``nilearn.datasets.load_mni152_gm_template(resolution=1)`` and
    ``load_mni152_wm_template(resolution=1)`` are the grey- and white-matter probability maps of the
    same ICBM152 2009a release (files ``mni_icbm152_{gm,wm}_tal_nlin_sym_09a_converted.nii.gz`` inside
    the nilearn wheel), on the T1 template's 197 x 233 x 189 grid and affine, each divided by its
    maximum (values in [0, 1], 8-bit quantised). Outside the brain mask both are set to 0 (1.2% of
    the grey-matter mass lies outside ``template > 0.2``); inside, the CSF fraction is
    ``clip(1 - GM - WM, 0, 1)``, after dividing GM and WM by their sum where it exceeds 1 (0.08% of
    the mask, by at most 3e-8), so GM + WM + CSF = 1 in the mask. The ventricles and sulci are thus
    CSF, and so is the thin rim of the mask around the brain (the mask's 6 enclosed holes stay 0).
    ``simulate_contrasts`` mixes, in each voxel, the per-tissue signals of the spin-echo equation
    ``S = PD (1 - exp(-TR/T1)) exp(-TE/T2)`` (T1-, T2- and PD-weighted) or of inversion recovery
    ``S = PD (1 - 2 exp(-TI/T1) + exp(-TR/T1)) exp(-TE/T2)`` (FLAIR, magnitude of the voxel's sum),
    weighted by the tissue fractions (partial volume), with the 3 T tissue values of
    ``TISSUE_PARAMETERS`` and the sequences of ``SEQUENCE_PARAMETERS`` (sources beside them), and
    scales each contrast by its maximum. The contrast between tissues is physical; the texture
    within a tissue is not (one T1/T2/PD per tissue: no iron in the basal ganglia, no myelin
    gradients, no noise, no bias field), so these images are smoother than real acquisitions.
    ``load_mni152_multicontrast()`` returns the contrasts stacked as channels
    ``(n, n_contrasts, H, W)`` with the slices, masks and crop of ``load_mni152_axial``.
"""

from __future__ import annotations

import numpy as np

from .deps import require
from .mni152 import mni152_brain_mask

__all__ = [
    "CONTRASTS",
    "SEQUENCE_PARAMETERS",
    "TISSUE_PARAMETERS",
    "mni152_tissue_maps",
    "mr_signal",
    "simulate_contrasts",
]

#: Contrasts simulated by :func:`simulate_contrasts`, in their default channel order.
CONTRASTS: tuple[str, ...] = ("T1", "T2", "PD", "FLAIR")

#: Tissue parameters of :func:`simulate_contrasts` at 3 T: tissue -> T1 (ms), T2 (ms) and proton
#: density PD relative to CSF.
#:
#: - GM, WM T1 and T2: Wansapura JP, Holland SK, Dunn RS, Ball WS Jr. NMR relaxation times in the
#:   human brain at 3.0 tesla. J Magn Reson Imaging 1999;9:531-538 (GM: T1 1331 +- 13 ms,
#:   T2 110 +- 2 ms; frontal WM: T1 832 +- 10 ms, T2 79.6 +- 0.6 ms; some secondary tables quote
#:   the WM T2 as 79.2 ms, a 0.1% change of the T2-weighted WM signal).
#: - CSF T1: Lu H, Nagae-Poetscher LM, Golay X, Lin D, Pomper M, van Zijl PCM. Routine clinical
#:   brain MRI sequences for use at 3.0 Tesla. J Magn Reson Imaging 2005;22:13-22
#:   (3817 +- 424 ms; later inversion-recovery measurements at 3 T give 4300-4450 ms).
#: - CSF T2: Piechnik SK, Evans J, Bary LH, Wise RG, Jezzard P. Functional changes in CSF volume
#:   estimated using measurement of water T2 relaxation. Magn Reson Med 2009;61:579-586 (503 ms).
#: - PD: water content of GM 0.78, WM 0.65 and CSF 0.97 (Ernst T, Kreis R, Ross BD. J Magn Reson B
#:   1993;102:1-8, as used by Gasparovic C et al. Magn Reson Med 2006;55:1219-1226), divided by
#:   that of CSF: 0.80, 0.67, 1.
#:
#: Stanisz GJ et al. (Magn Reson Med 2005;54:507-512) measured longer GM/WM T1 (1820/1084 ms at
#: 3 T, ex vivo bovine tissue at 37 C); in vivo values are used here.
TISSUE_PARAMETERS: dict[str, dict[str, float]] = {
    "GM": {"T1": 1331.0, "T2": 110.0, "PD": 0.78 / 0.97},
    "WM": {"T1": 832.0, "T2": 79.6, "PD": 0.65 / 0.97},
    "CSF": {"T1": 3817.0, "T2": 503.0, "PD": 1.0},
}


def _csf_null_inversion_time(tr: float, t1: float) -> float:
    """Inversion time that nulls a tissue of longitudinal relaxation ``t1`` at repetition ``tr``."""
    return float(t1 * np.log(2.0 / (1.0 + np.exp(-tr / t1))))


#: Sequences of :func:`simulate_contrasts`: contrast -> repetition time TR, echo time TE and, for
#: inversion recovery, inversion time TI (ms; TI None: spin echo). Conventional clinical values:
#: T1-weighted spin echo TR/TE 500/10, T2-weighted TR/TE 4000/100, proton-density-weighted
#: TR/TE 4000/10, FLAIR TR/TE 9000/100 with the TI that nulls CSF,
#: ``TI = T1_CSF ln(2 / (1 + exp(-TR / T1_CSF)))`` = 2301 ms. (The long-TR limit
#: ``T1_CSF ln 2`` = 2646 ms would leave CSF at ``exp(-TR / T1_CSF)`` = 9.5% of its full
#: inversion-recovery signal, 44% of the WM signal, instead of dark.) With T1_CSF = 3.8 s, TR = 4 s
#: does not let CSF recover: in the PD-weighted image CSF (0.64 before scaling) lies between GM
#: (0.70) and WM (0.59); with TR >= 6 s it would be the brightest tissue.
SEQUENCE_PARAMETERS: dict[str, dict[str, float | None]] = {
    "T1": {"TR": 500.0, "TE": 10.0, "TI": None},
    "T2": {"TR": 4000.0, "TE": 100.0, "TI": None},
    "PD": {"TR": 4000.0, "TE": 10.0, "TI": None},
    "FLAIR": {"TR": 9000.0, "TE": 100.0, "TI": _csf_null_inversion_time(9000.0, TISSUE_PARAMETERS["CSF"]["T1"])},
}


def mni152_tissue_maps() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grey-matter, white-matter and CSF fractions of the 1 mm MNI152 template, and its brain mask.

    GM and WM are nilearn's ICBM152 2009a probability maps
    (``load_mni152_gm_template(resolution=1)``, ``load_mni152_wm_template(resolution=1)``), on the
    grid of :func:`mni152_volume`. Inside the brain mask, where GM + WM exceeds 1 (quantisation,
    at most by 3e-8) both are divided by their sum, and CSF is the rest,
    ``clip(1 - GM - WM, 0, 1)``; outside the mask all three are 0.

    Returns
    -------
    gm, wm, csf : ndarray of shape (197, 233, 189), float64
        Tissue fractions in [0, 1] with ``gm + wm + csf`` equal to 1 inside the mask (up to
        rounding) and 0 outside. Same array axes as :func:`mni152_volume`.
    mask : ndarray of shape (197, 233, 189), bool
        Brain mask (the same as :func:`mni152_volume`'s).
    """
    require("nilearn")
    from nilearn import datasets

    mask = mni152_brain_mask()
    gm = np.asarray(datasets.load_mni152_gm_template(resolution=1).get_fdata(), dtype=np.float64)
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(), dtype=np.float64)
    if gm.shape != mask.shape or wm.shape != mask.shape:  # pragma: no cover - depends on nilearn
        raise ValueError(f"tissue maps {gm.shape}, {wm.shape} do not match the template grid {mask.shape}")
    gm, wm = np.clip(gm, 0.0, 1.0) * mask, np.clip(wm, 0.0, 1.0) * mask
    total = np.maximum(gm + wm, 1.0)
    gm, wm = gm / total, wm / total
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0) * mask
    return gm, wm, csf, mask


def mr_signal(pd: float, t1: float, t2: float, tr: float, te: float, ti: float | None = None) -> float:
    """Signal of one tissue: spin echo, or inversion recovery when ``ti`` is given (signed).

    Parameters
    ----------
    pd : float
        Proton density (relative).
    t1, t2 : float
        Relaxation times (ms).
    tr, te : float
        Repetition and echo times (ms).
    ti : float or None, default=None
        Inversion time (ms); None for a spin echo.

    Returns
    -------
    float
        ``pd (1 - exp(-tr/t1)) exp(-te/t2)`` for a spin echo; for inversion recovery the signed
        ``pd (1 - 2 exp(-ti/t1) + exp(-tr/t1)) exp(-te/t2)`` (negative for a tissue not yet past
        its null; a magnitude image shows its absolute value).
    """
    decay = np.exp(-te / t2)
    if ti is None:
        return float(pd * (1.0 - np.exp(-tr / t1)) * decay)
    return float(pd * (1.0 - 2.0 * np.exp(-ti / t1) + np.exp(-tr / t1)) * decay)


def simulate_contrasts(
    gm: np.ndarray,
    wm: np.ndarray,
    csf: np.ndarray,
    contrasts: tuple[str, ...] = CONTRASTS,
) -> dict[str, np.ndarray]:
    """Noise-free T1-, T2-, PD-weighted and FLAIR images from tissue fractions (partial volume).

    Each voxel's signal is the fraction-weighted sum of the tissue signals of :func:`mr_signal`
    with the 3 T values of ``TISSUE_PARAMETERS`` and the sequences of ``SEQUENCE_PARAMETERS``
    (T1w spin echo TR/TE 500/10 ms, T2w 4000/100, PD 4000/10, FLAIR 9000/100 with CSF nulled);
    the FLAIR image is the magnitude of that sum. Each contrast is then divided by its maximum,
    which, the fractions being 0 outside the brain, is its maximum inside the brain mask.

    Parameters
    ----------
    gm, wm, csf : ndarray, same shape
        Tissue fractions, e.g. from :func:`mni152_tissue_maps`.
    contrasts : tuple of str, default=CONTRASTS
        Keys of ``SEQUENCE_PARAMETERS``, in the order wanted.

    Returns
    -------
    dict of str to ndarray
        Contrast name -> image of the fractions' shape, float64 in [0, 1], in ``contrasts`` order.

    Raises
    ------
    ValueError
        For an unknown contrast or fractions of different shapes.
    """
    unknown = [name for name in contrasts if name not in SEQUENCE_PARAMETERS]
    if unknown:
        raise ValueError(f"unknown contrasts {unknown}; choose from {tuple(SEQUENCE_PARAMETERS)}")
    fractions = {"GM": np.asarray(gm, np.float64), "WM": np.asarray(wm, np.float64), "CSF": np.asarray(csf, np.float64)}
    if len({f.shape for f in fractions.values()}) != 1:
        raise ValueError(f"gm, wm and csf must have one shape, got {[f.shape for f in fractions.values()]}")
    images = {}
    for name in contrasts:
        sequence = SEQUENCE_PARAMETERS[name]
        image = np.zeros_like(fractions["GM"])
        for tissue, fraction in fractions.items():
            p = TISSUE_PARAMETERS[tissue]
            image += fraction * mr_signal(p["PD"], p["T1"], p["T2"], sequence["TR"], sequence["TE"], sequence["TI"])
        image = np.abs(image)
        peak = float(image.max())
        images[name] = image / peak if peak > 0 else image
    return images
