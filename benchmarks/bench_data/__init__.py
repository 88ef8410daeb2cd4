"""Real MRI available offline, and seed-fixed simulated noise, for the denoising benchmarks.

Two sources, both shipped inside their Python wheels (no network access is needed): the MNI152
T1 template and tissue maps of ``nilearn``, and a real T1 slice of ``dipy``.

Modules
-------
:mod:`bench_data.mni152`
    The MNI152 T1 template, its brain mask and axial slices split into training and test
    slices (:func:`load_mni152_axial`, ``DEFAULT_TEST_SLICES``, ``DEFAULT_TRAIN_SLICES``); the
    split and crop helpers of the other loaders.
:mod:`bench_data.tissue`
    Grey/white-matter/CSF maps of the MNI152 anatomy and the spin-echo/inversion-recovery
    signal of each tissue at 3 T: simulated T1-, T2-, PD-weighted and FLAIR images
    (:func:`mni152_tissue_maps`, :func:`mr_signal`, :func:`simulate_contrasts`).
:mod:`bench_data.multicontrast`
    Those contrasts stacked as channels, sliced like :func:`load_mni152_axial`
    (:func:`load_mni152_multicontrast`).
:mod:`bench_data.slabs`
    Contiguous axial slabs for adjacent-slice (2.5-D) context (:func:`load_mni152_slabs`).
:mod:`bench_data.dipy_slice`
    dipy's real single-subject T1 coronal slice (:func:`load_dipy_t1_slice`).
:mod:`bench_data.noise`
    Seed-fixed Gaussian or Rician noise at the benchmark levels (:func:`add_noise`, ``SIGMAS``).

Requirements: ``pip install c2s-denoise[bench]`` (nilearn, dipy); numpy only otherwise.
"""

from .dipy_slice import load_dipy_t1_slice
from .mni152 import DEFAULT_TEST_SLICES, DEFAULT_TRAIN_SLICES, SliceSplit, load_mni152_axial, mni152_volume
from .multicontrast import MultiContrastSplit, load_mni152_multicontrast
from .noise import NOISE_KINDS, SIGMAS, TEST_NOISE_SEED, TRAIN_NOISE_SEED, add_noise
from .slabs import SlabSplit, load_mni152_slabs
from .tissue import CONTRASTS, SEQUENCE_PARAMETERS, TISSUE_PARAMETERS, mni152_tissue_maps, mr_signal, simulate_contrasts

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
