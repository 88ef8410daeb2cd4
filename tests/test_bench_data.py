"""Benchmark data loaders (benchmarks/bench_data.py): MNI152 slices, dipy's T1 slice, noise."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_data import (  # noqa: E402
    DEFAULT_TEST_SLICES,
    DEFAULT_TRAIN_SLICES,
    SIGMAS,
    add_noise,
    load_dipy_t1_slice,
    load_mni152_axial,
    mni152_volume,
)


@pytest.fixture(scope="module")
def mni():
    pytest.importorskip("nilearn")
    return load_mni152_axial()


def test_mni152_default_split(mni):
    assert mni.train_indices == DEFAULT_TRAIN_SLICES and mni.test_indices == DEFAULT_TEST_SLICES
    assert mni.train.shape == (30, 233, 197) and mni.test.shape == (6, 233, 197)
    assert mni.train_mask.shape == mni.train.shape and mni.train_mask.dtype == bool
    assert mni.test_mask.shape == mni.test.shape
    for images in (mni.train, mni.test):
        assert images.dtype == np.float64 and images.min() >= 0.0 and images.max() <= 1.0
    # no training slice is within 4 slices (4 mm) of a test slice
    assert min(abs(a - b) for a in mni.train_indices for b in mni.test_indices) > 4
    # no nearly empty slice: the brain covers at least 15% of every slice
    assert mni.train_mask.mean(axis=(1, 2)).min() >= 0.15 and mni.test_mask.mean(axis=(1, 2)).min() >= 0.15
    # the template is zero outside the brain mask, up to a few voxels
    assert (mni.train[~mni.train_mask] > 0).mean() < 0.01


def test_mni152_slices_are_axial_with_anterior_on_top(mni):
    import nibabel
    from nilearn import datasets

    affine = datasets.load_mni152_template(resolution=1).affine
    assert nibabel.aff2axcodes(affine) == ("R", "A", "S")  # array axis 2 runs inferior -> superior
    volume, mask = mni152_volume()
    assert volume.shape == (197, 233, 189) and mask.shape == volume.shape
    k = mni.test_indices[2]
    np.testing.assert_array_equal(mni.test[2], np.rot90(volume[:, :, k]))
    np.testing.assert_array_equal(mni.test[2][0], volume[:, -1, k])  # top row: most anterior
    np.testing.assert_array_equal(mni.test[2][:, 0], volume[0, ::-1, k])  # left column: array x = 0


def test_mni152_crop_and_options(mni):
    cropped = load_mni152_axial(crop_margin=2)
    assert cropped.train.shape[0] == 30 and cropped.train.shape[1:] == cropped.test.shape[1:]
    assert cropped.train.shape[1] < 233 and cropped.train.shape[2] < 197
    assert cropped.train_mask.sum() == mni.train_mask.sum()  # nothing of the brain is cut
    sparse = load_mni152_axial(gap=8, train_stride=4)
    assert min(abs(a - b) for a in sparse.train_indices for b in sparse.test_indices) > 8
    assert len(sparse.train_indices) < 30
    with pytest.raises(ValueError):
        load_mni152_axial(test_slices=(0, 1))  # empty slices only


def test_dipy_t1_slice_ships_in_the_wheel():
    pytest.importorskip("dipy")
    image, mask = load_dipy_t1_slice()
    assert image.shape == (256, 256) and image.dtype == np.float64
    assert image.min() == 0.0 and image.max() == 1.0
    assert 0.1 < mask.mean() < 0.5 and not image[~mask].any()


def test_noise_models():
    clean = np.zeros((4, 64, 64))
    clean[:, :, 32:] = 0.6
    sigma = SIGMAS[1]
    gaussian = add_noise(clean, sigma, "gaussian", seed=3)
    np.testing.assert_array_equal(gaussian, add_noise(clean, sigma, "gaussian", seed=3))
    assert not np.array_equal(gaussian, add_noise(clean, sigma, "gaussian", seed=4))
    assert np.std(gaussian - clean) == pytest.approx(sigma, rel=0.03)
    rician = add_noise(clean, sigma, "rician", seed=3)
    assert (rician >= 0).all()
    assert (np.abs(rician) >= np.abs(gaussian) - 1e-12).all()  # the real channel is the Gaussian draw
    background = rician[clean == 0]
    assert background.mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.03)  # Rayleigh
    bright = rician[clean > 0]
    assert bright.mean() == pytest.approx(np.sqrt(0.6**2 + sigma**2), abs=3e-3)  # Rice mean at high SNR
    assert SIGMAS == (13 / 255, 25 / 255)
    with pytest.raises(ValueError):
        add_noise(clean, sigma, "poisson", seed=0)
