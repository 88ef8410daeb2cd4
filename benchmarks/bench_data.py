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

Noise
    ``add_noise`` adds, with a fixed seed, either additive Gaussian noise ``y = x + sigma n`` or
    Rician (magnitude) noise ``y = |x + sigma (n1 + i n2)|`` with ``sigma`` per real/imaginary
    channel, at the levels of ``METHOD.md`` section 7, ``SIGMAS = (13/255, 25/255)``, for images
    in [0, 1]. For a given seed the Gaussian noise equals the real-channel noise of the Rician
    draw, so the two variants of a benchmark share their noise realisation.

Requirements: ``pip install c2s-denoise[bench]`` (nilearn, dipy); numpy only otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "DEFAULT_TEST_SLICES",
    "DEFAULT_TRAIN_SLICES",
    "NOISE_KINDS",
    "SIGMAS",
    "TEST_NOISE_SEED",
    "TRAIN_NOISE_SEED",
    "SliceSplit",
    "add_noise",
    "load_dipy_t1_slice",
    "load_mni152_axial",
    "mni152_volume",
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
    mask = np.asarray(datasets.load_mni152_brain_mask(resolution=1).get_fdata()) > 0.5
    return volume, mask


def _axial(volume: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    """Axial slices ``rot90(volume[:, :, k])`` stacked as (n, 233, 197), anterior at the top."""
    if not indices:
        return np.zeros((0, volume.shape[1], volume.shape[0]), dtype=volume.dtype)
    return np.stack([np.rot90(volume[:, :, k]) for k in indices]).copy()


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
    if gap < 0 or train_stride < 1:
        raise ValueError(f"need gap >= 0 and train_stride >= 1, got gap={gap}, train_stride={train_stride}")
    volume, mask = mni152_volume()
    fraction = mask.mean(axis=(0, 1))
    candidates = [int(k) for k in np.flatnonzero(fraction >= min_brain_fraction)]
    test = tuple(sorted(int(k) for k in test_slices if 0 <= k < volume.shape[2] and fraction[k] >= min_brain_fraction))
    if not test:
        raise ValueError("no test slice is above min_brain_fraction")
    free = [k for k in candidates if all(abs(k - t) > gap for t in test)]
    train = tuple(free[::train_stride])
    if not train:
        raise ValueError("no training slice remains: lower gap or min_brain_fraction")
    train_images, test_images = _axial(volume, train), _axial(volume, test)
    train_masks, test_masks = _axial(mask, train), _axial(mask, test)
    if crop_margin is not None:
        union = train_masks.any(axis=0) | test_masks.any(axis=0)
        rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
        top, bottom = max(0, rows[0] - crop_margin), min(union.shape[0], rows[-1] + 1 + crop_margin)
        left, right = max(0, cols[0] - crop_margin), min(union.shape[1], cols[-1] + 1 + crop_margin)
        box = (slice(None), slice(top, bottom), slice(left, right))
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
