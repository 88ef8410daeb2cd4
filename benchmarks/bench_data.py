"""Real MRI available offline, and seed-fixed simulated noise, for the denoising benchmarks.

Two sources, both shipped inside their Python wheels (no network access is needed):

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

dipy's T1 coronal slice
    ``dipy.data.get_fnames(name="t1_coronal_slice")``: a 256 x 256 ``.npy`` file inside the
    dipy wheel (``dipy/data/files/t1_coronal_slice.npy``; no fetcher, no download). It is one
    real, skull-stripped T1-weighted coronal slice of a single subject, 8-bit quantised, values
    in [0, 1] (background exactly 0, 79% of the pixels). Present in the dipy 1.7.0 and 1.12.1
    wheels.

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

Slabs for adjacent-slice (2.5-D) context (``load_mni152_slabs``)
    Contiguous runs of ``slab_depth`` axial T1 slices taken every ``slice_step`` = 2 slices (2 mm
    spacing; 1 mm template slices are nearly identical). Test slabs are centred on the test slices
    (the test slice is slab slice ``(slab_depth - 1) // 2``); training slabs keep every slice more
    than ``gap`` slices from every slice of every test slab. Test slices 16 mm apart leave little
    room: at a 2 mm step a slab spans ``2 (slab_depth - 1) + 1`` mm, so with ``slab_depth = 3``
    and ``gap = 2`` (the defaults) 31 training slab positions remain (3 between each pair of test
    slabs, the rest below and above them), and with ``slab_depth >= 5`` no training slab fits
    between two test slabs at any gap (only above the top one).

Noise
    ``add_noise`` adds, with a fixed seed, either additive Gaussian noise ``y = x + sigma n`` or
    Rician (magnitude) noise ``y = |x + sigma (n1 + i n2)|`` with ``sigma`` per real/imaginary
    channel, at the levels of ``docs/method.md`` section 7, ``SIGMAS = (13/255, 25/255)``, for images
    in [0, 1]. For a given seed the Gaussian noise equals the real-channel noise of the Rician
    draw, so the two variants of a benchmark share their noise realisation. Every element gets
    its own draw, so the channels of a multi-contrast array ``(n, n_contrasts, H, W)`` and the
    slices of a slab have independent noise; ``add_noise(x, ...)[:, c]`` is not
    ``add_noise(x[:, c], ...)`` (a different part of the stream), so compare single- and
    multi-contrast models on one draw over the whole array.

Requirements: ``pip install c2s-denoise[bench]`` (nilearn, dipy); numpy only otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "CONTRASTS",
    "DEFAULT_TEST_SLICES",
    "DEFAULT_TRAIN_SLICES",
    "NOISE_KINDS",
    "SEQUENCE_PARAMETERS",
    "SIGMAS",
    "TEST_NOISE_SEED",
    "TISSUE_PARAMETERS",
    "TRAIN_NOISE_SEED",
    "MultiContrastSplit",
    "SlabSplit",
    "SliceSplit",
    "add_noise",
    "load_dipy_t1_slice",
    "load_mni152_axial",
    "load_mni152_multicontrast",
    "load_mni152_slabs",
    "mni152_tissue_maps",
    "mni152_volume",
    "mr_signal",
    "simulate_contrasts",
]

#: Noise standard deviations of the simulated benchmarks (images in [0, 1]).
SIGMAS: tuple[float, float] = (13.0 / 255.0, 25.0 / 255.0)
#: Noise models accepted by :func:`add_noise`.
NOISE_KINDS: tuple[str, str] = ("gaussian", "rician")
#: Conventional seeds of the noise added to training and to test images.
TRAIN_NOISE_SEED: int = 1
TEST_NOISE_SEED: int = 2

#: Axial MNI152 slices held out for testing (indices along the template's third axis).
DEFAULT_TEST_SLICES: tuple[int, ...] = (40, 56, 72, 88, 104, 120)
#: Axial MNI152 training slices produced by the default arguments of :func:`load_mni152_axial`.
DEFAULT_TRAIN_SLICES: tuple[int, ...] = (
    26, 28, 30, 32, 34, 45, 47, 49, 51, 62, 64, 66, 77, 79, 81,
    83, 94, 96, 98, 109, 111, 113, 115, 126, 128, 130, 132, 134, 136, 138,
)  # fmt: skip

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


@dataclass(frozen=True)
class SliceSplit:
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

    train: np.ndarray
    test: np.ndarray
    train_mask: np.ndarray
    test_mask: np.ndarray
    train_indices: tuple[int, ...]
    test_indices: tuple[int, ...]
    source: str


@dataclass(frozen=True)
class MultiContrastSplit:
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

    train: np.ndarray
    test: np.ndarray
    train_mask: np.ndarray
    test_mask: np.ndarray
    train_indices: tuple[int, ...]
    test_indices: tuple[int, ...]
    contrasts: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class SlabSplit:
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

    train: np.ndarray
    test: np.ndarray
    train_mask: np.ndarray
    test_mask: np.ndarray
    train_indices: tuple[tuple[int, ...], ...]
    test_indices: tuple[tuple[int, ...], ...]
    slice_step: int
    source: str


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"the benchmark data loaders need {module!r}: pip install 'c2s-denoise[bench]' "
            f"(or pip install {module})"
        ) from error


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
    _require("nilearn")
    from nilearn import datasets

    volume = np.asarray(datasets.load_mni152_template(resolution=1).get_fdata(), dtype=np.float64)
    return volume, _mni152_brain_mask()


def _mni152_brain_mask() -> np.ndarray:
    """nilearn's 1 mm MNI152 brain mask (``template > 0.2``) as a bool array (197, 233, 189)."""
    from nilearn import datasets

    return np.asarray(datasets.load_mni152_brain_mask(resolution=1).get_fdata()) > 0.5


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
    _require("nilearn")
    from nilearn import datasets

    mask = _mni152_brain_mask()
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


def _axial(volume: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    """Axial slices ``rot90(volume[:, :, k])`` stacked as (n, 233, 197), anterior at the top."""
    if not indices:
        return np.zeros((0, volume.shape[1], volume.shape[0]), dtype=volume.dtype)
    return np.stack([np.rot90(volume[:, :, k]) for k in indices]).copy()


def _candidate_slices(mask: np.ndarray, min_brain_fraction: float) -> np.ndarray:
    """Bool per axial slice: the brain mask covers at least ``min_brain_fraction`` of it."""
    return mask.mean(axis=(0, 1)) >= min_brain_fraction


def _test_slices(test_slices: tuple[int, ...], candidate: np.ndarray) -> tuple[int, ...]:
    """The requested test slices that exist and are candidates, sorted."""
    test = tuple(sorted(int(k) for k in test_slices if 0 <= k < candidate.size and candidate[k]))
    if not test:
        raise ValueError("no test slice is above min_brain_fraction")
    return test


def _split_slices(
    mask: np.ndarray,
    test_slices: tuple[int, ...],
    gap: int,
    train_stride: int,
    min_brain_fraction: float,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Training and test axial indices of :func:`load_mni152_axial` (see its parameters)."""
    if gap < 0 or train_stride < 1:
        raise ValueError(f"need gap >= 0 and train_stride >= 1, got gap={gap}, train_stride={train_stride}")
    candidate = _candidate_slices(mask, min_brain_fraction)
    test = _test_slices(test_slices, candidate)
    free = [int(k) for k in np.flatnonzero(candidate) if all(abs(k - t) > gap for t in test)]
    train = tuple(free[::train_stride])
    if not train:
        raise ValueError("no training slice remains: lower gap or min_brain_fraction")
    return train, test


def _crop_box(masks: tuple[np.ndarray, ...], margin: int) -> tuple:
    """Index of the last two axes: bounding box of the union of ``masks`` (..., H, W) + ``margin``."""
    union = np.zeros(masks[0].shape[-2:], dtype=bool)
    for m in masks:
        union |= m.reshape(-1, *m.shape[-2:]).any(axis=0)
    rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
    top, bottom = max(0, rows[0] - margin), min(union.shape[0], rows[-1] + 1 + margin)
    left, right = max(0, cols[0] - margin), min(union.shape[1], cols[-1] + 1 + margin)
    return (Ellipsis, slice(top, bottom), slice(left, right))


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
    train, test = _split_slices(mask, test_slices, gap, train_stride, min_brain_fraction)
    train_images, test_images = _axial(volume, train), _axial(volume, test)
    train_masks, test_masks = _axial(mask, train), _axial(mask, test)
    if crop_margin is not None:
        box = _crop_box((train_masks, test_masks), crop_margin)
        train_images, test_images = train_images[box].copy(), test_images[box].copy()
        train_masks, test_masks = train_masks[box].copy(), test_masks[box].copy()
    return SliceSplit(
        train=train_images,
        test=test_images,
        train_mask=train_masks,
        test_mask=test_masks,
        train_indices=train,
        test_indices=test,
        source="MNI152 2009a T1 template (nilearn), 1 mm, axial",
    )


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
    train, test = _split_slices(mask, test_slices, gap, train_stride, min_brain_fraction)
    train_images = np.stack([_axial(images[name], train) for name in contrasts], axis=1)
    test_images = np.stack([_axial(images[name], test) for name in contrasts], axis=1)
    train_masks, test_masks = _axial(mask, train), _axial(mask, test)
    if crop_margin is not None:
        box = _crop_box((train_masks, test_masks), crop_margin)
        train_images, test_images = train_images[box].copy(), test_images[box].copy()
        train_masks, test_masks = train_masks[box].copy(), test_masks[box].copy()
    return MultiContrastSplit(
        train=train_images,
        test=test_images,
        train_mask=train_masks,
        test_mask=test_masks,
        train_indices=train,
        test_indices=test,
        contrasts=contrasts,
        source=(
            f"{'/'.join(contrasts)} simulated at 3 T from the MNI152 2009a GM/WM maps (nilearn), 1 mm, axial; "
            "partial-volume mix of literature T1/T2/PD (bench_data.TISSUE_PARAMETERS)"
        ),
    )


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
        apart a gap of 4 leaves no room between test slabs (see the module docstring).
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
    candidate = _candidate_slices(mask, min_brain_fraction)

    def fits(slab: tuple[int, ...]) -> bool:
        return all(0 <= k < candidate.size and candidate[k] for k in slab)

    offsets = slice_step * (np.arange(slab_depth) - (slab_depth - 1) // 2)
    test = tuple(
        slab for slab in (tuple(int(t + o) for o in offsets) for t in sorted(set(test_slices))) if fits(slab)
    )
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
        return np.stack([_axial(source, slab) for slab in slabs])

    train_images, test_images = stack(volume, train), stack(volume, test)
    train_masks, test_masks = stack(mask, train), stack(mask, test)
    if crop_margin is not None:
        box = _crop_box((train_masks, test_masks), crop_margin)
        train_images, test_images = train_images[box].copy(), test_images[box].copy()
        train_masks, test_masks = train_masks[box].copy(), test_masks[box].copy()
    return SlabSplit(
        train=train_images,
        test=test_images,
        train_mask=train_masks,
        test_mask=test_masks,
        train_indices=train,
        test_indices=test,
        slice_step=slice_step,
        source=f"MNI152 2009a T1 template (nilearn), axial slabs of {slab_depth} slices {slice_step} mm apart",
    )


def load_dipy_t1_slice() -> tuple[np.ndarray, np.ndarray]:
    """dipy's real T1-weighted coronal slice, scaled to [0, 1], and its (non-zero) brain mask.

    Returns
    -------
    image : ndarray of shape (256, 256), float64
        Min-max scaled to [0, 1].
    mask : ndarray of shape (256, 256), bool
        Pixels of the (skull-stripped) image that are not background, ``image > 0``.

    Raises
    ------
    FileNotFoundError
        If the data file is missing from the installed dipy (it ships inside the dipy wheel since
        at least dipy 1.7; no download is attempted).
    """
    _require("dipy")
    from dipy.data import get_fnames

    path = Path(get_fnames(name="t1_coronal_slice"))
    if not path.is_file():
        raise FileNotFoundError(
            f"dipy's t1_coronal_slice is not at {path}: this dipy installation lacks its bundled "
            "data files; reinstall dipy from a wheel (pip install --force-reinstall dipy)"
        )
    image = np.asarray(np.load(path), dtype=np.float64)
    low, high = float(image.min()), float(image.max())
    image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return image, image > 0


def add_noise(
    clean: np.ndarray,
    sigma: float,
    kind: Literal["gaussian", "rician"] = "gaussian",
    *,
    seed: int,
) -> np.ndarray:
    """Return a noisy copy of ``clean`` with seed-fixed Gaussian or Rician noise.

    Parameters
    ----------
    clean : ndarray
        Clean image(s) of any shape, e.g. (n, H, W) in [0, 1].
    sigma : float
        Noise standard deviation (per real/imaginary channel for Rician noise).
    kind : {"gaussian", "rician"}, default="gaussian"
        ``"gaussian"``: ``clean + sigma * n1``. ``"rician"``: the magnitude of complex Gaussian
        noise, ``sqrt((clean + sigma * n1)**2 + (sigma * n2)**2)``; its mean exceeds ``clean``
        (by ``sigma * sqrt(pi / 2)`` where ``clean`` is 0).
    seed : int
        Seed of ``numpy.random.default_rng``; ``n1`` is drawn first, so both kinds share it.

    Returns
    -------
    ndarray, float64, same shape as ``clean``
        Not clipped (Gaussian values can leave [0, 1]).
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    clean = np.asarray(clean, dtype=np.float64)
    rng = np.random.default_rng(seed)
    real = clean + sigma * rng.standard_normal(clean.shape)
    if kind == "gaussian":
        return real
    return np.hypot(real, sigma * rng.standard_normal(clean.shape))
