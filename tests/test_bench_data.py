"""Benchmark data loaders (benchmarks/bench_data/): MNI152 slices, dipy's T1 slice, noise."""

import numpy as np
import pytest

from bench_data import (
    CONTRASTS,
    DEFAULT_TEST_SLICES,
    DEFAULT_TRAIN_SLICES,
    SEQUENCE_PARAMETERS,
    SIGMAS,
    TISSUE_PARAMETERS,
    add_noise,
    load_dipy_t1_slice,
    load_mni152_axial,
    load_mni152_multicontrast,
    load_mni152_slabs,
    mni152_tissue_maps,
    mni152_volume,
    mr_signal,
    simulate_contrasts,
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


@pytest.fixture(scope="module")
def tissues():
    pytest.importorskip("nilearn")
    return mni152_tissue_maps()


@pytest.fixture(scope="module")
def contrasts(tissues):
    gm, wm, csf, _ = tissues
    return simulate_contrasts(gm, wm, csf)


def test_tissue_fractions(tissues):
    gm, wm, csf, mask = tissues
    volume, template_mask = mni152_volume()
    assert gm.shape == wm.shape == csf.shape == volume.shape == (197, 233, 189)
    np.testing.assert_array_equal(mask, template_mask)
    for fraction in (gm, wm, csf):
        assert fraction.dtype == np.float64 and fraction.min() >= 0.0 and fraction.max() <= 1.0
        assert not fraction[~mask].any()
    total = gm + wm + csf
    assert total.max() <= 1 + 1e-6
    np.testing.assert_allclose(total[mask], 1.0, atol=1e-6)  # the brain is GM, WM or CSF
    # the ventricles are CSF (the lateral ventricles cross axial slice 88)
    assert csf[:, :, 88].max() > 0.99 and (csf[mask] > 0.9).mean() > 0.005
    assert 0.3 < gm[mask].mean() < 0.6 and 0.3 < wm[mask].mean() < 0.6


def test_sequences_null_csf_and_order_tissues():
    signal = {
        name: {t: mr_signal(p["PD"], p["T1"], p["T2"], s["TR"], s["TE"], s["TI"]) for t, p in TISSUE_PARAMETERS.items()}
        for name, s in SEQUENCE_PARAMETERS.items()
    }
    assert tuple(SEQUENCE_PARAMETERS) == CONTRASTS
    assert signal["T1"]["WM"] > signal["T1"]["GM"] > signal["T1"]["CSF"] > 0
    assert signal["T2"]["CSF"] > signal["T2"]["GM"] > signal["T2"]["WM"] > 0
    assert abs(signal["FLAIR"]["CSF"]) < 1e-12 and signal["FLAIR"]["GM"] > signal["FLAIR"]["WM"] > 0
    # PD weighting: GM > WM; TR = 4 s leaves CSF (T1 3.8 s) partly saturated, below GM but above
    # WM; with a TR long enough for CSF to recover, the order is that of the proton densities
    assert signal["PD"]["GM"] > signal["PD"]["CSF"] > signal["PD"]["WM"]
    long_tr = {t: mr_signal(p["PD"], p["T1"], p["T2"], 20000.0, 10.0) for t, p in TISSUE_PARAMETERS.items()}
    assert long_tr["CSF"] >= long_tr["GM"] > long_tr["WM"]
    csf = TISSUE_PARAMETERS["CSF"]
    assert SEQUENCE_PARAMETERS["FLAIR"]["TI"] < csf["T1"] * np.log(2)  # the exact null, finite TR


def test_simulated_contrasts(contrasts, tissues):
    gm, wm, csf, mask = tissues
    assert tuple(contrasts) == CONTRASTS
    pure = {"GM": gm > 0.95, "WM": wm > 0.95, "CSF": csf > 0.95}
    for image in contrasts.values():
        assert image.shape == gm.shape and image.dtype == np.float64
        assert image.min() >= 0.0 and image.max() == pytest.approx(1.0) and not image[~mask].any()
    level = {
        name: {t: float(np.median(image[region])) for t, region in pure.items()} for name, image in contrasts.items()
    }
    assert level["T1"]["WM"] > level["T1"]["GM"] > level["T1"]["CSF"]
    assert level["T2"]["CSF"] > level["T2"]["GM"] > level["T2"]["WM"]
    assert level["FLAIR"]["CSF"] < 0.02 * level["FLAIR"]["WM"]  # CSF nulled
    assert level["PD"]["GM"] > level["PD"]["WM"] and level["PD"]["CSF"] > level["PD"]["WM"]
    subset = simulate_contrasts(gm, wm, csf, ("FLAIR", "T2"))
    assert tuple(subset) == ("FLAIR", "T2")
    np.testing.assert_array_equal(subset["T2"], contrasts["T2"])
    with pytest.raises(ValueError):
        simulate_contrasts(gm, wm, csf, ("T1", "DWI"))


def test_multicontrast_split_matches_the_axial_split():
    pytest.importorskip("nilearn")
    data = load_mni152_multicontrast()
    axial = load_mni152_axial(crop_margin=4)
    assert data.contrasts == CONTRASTS
    assert data.train_indices == DEFAULT_TRAIN_SLICES and data.test_indices == DEFAULT_TEST_SLICES
    assert data.train.shape == (30, 4, *axial.train.shape[1:]) and data.test.shape == (6, 4, *axial.test.shape[1:])
    np.testing.assert_array_equal(data.train_mask, axial.train_mask)
    np.testing.assert_array_equal(data.test_mask, axial.test_mask)
    for images in (data.train, data.test):
        assert images.dtype == np.float64 and images.min() >= 0.0 and images.max() <= 1.0
    for c in range(4):
        assert not data.test[:, c][~data.test_mask].any()  # zero outside the brain
    # contrasts differ: T1w and T2w are anti-correlated inside the brain
    t1, t2 = data.test[:, 0][data.test_mask], data.test[:, 1][data.test_mask]
    assert np.corrcoef(t1, t2)[0, 1] < -0.5
    two = load_mni152_multicontrast(("T2", "T1"), crop_margin=None)
    assert two.train.shape == (30, 2, 233, 197)
    # the chosen order; the crop only removes background
    np.testing.assert_allclose(two.test[:, 1].sum(), data.test[:, 0].sum())
    np.testing.assert_allclose(two.test[:, 0].sum(), data.test[:, 1].sum())
    # independent noise per contrast: one draw over the whole array
    noisy = add_noise(data.test, SIGMAS[1], seed=2)
    residual = (noisy - data.test).reshape(6, 4, -1)
    correlation = np.corrcoef(residual[:, 0].ravel(), residual[:, 1].ravel())[0, 1]
    assert abs(correlation) < 0.01


def test_slabs_are_contiguous_and_held_out():
    pytest.importorskip("nilearn")
    slabs = load_mni152_slabs(10, 3)
    assert slabs.train.shape[:2] == (10, 3) and slabs.test.shape[:2] == (6, 3)
    assert slabs.train.shape[2:] == slabs.test.shape[2:] and slabs.train_mask.shape == slabs.train.shape
    assert slabs.slice_step == 2
    assert tuple(slab[1] for slab in slabs.test_indices) == DEFAULT_TEST_SLICES  # centred
    for slab in (*slabs.train_indices, *slabs.test_indices):
        assert np.all(np.diff(slab) == 2)  # contiguous at the 2 mm step
    held_out = {k for slab in slabs.test_indices for k in slab}
    assert min(abs(a - b) for slab in slabs.train_indices for a in slab for b in held_out) > 2
    assert len(set(slabs.train_indices)) == 10
    volume, mask = mni152_volume()
    full = load_mni152_slabs(10, 3, crop_margin=None)
    k = full.test_indices[2]
    np.testing.assert_array_equal(full.test[2], np.stack([np.rot90(volume[:, :, i]) for i in k]))
    assert full.train_mask.sum() == slabs.train_mask.sum()  # the crop cuts nothing of the brain
    for images in (slabs.train, slabs.test):
        assert images.min() >= 0.0 and images.max() <= 1.0
    wide = load_mni152_slabs(4, 3, gap=4, slice_step=2)
    assert (
        min(abs(a - b) for slab in wide.train_indices for a in slab for b in {k for s in wide.test_indices for k in s})
        > 4
    )
    even = load_mni152_slabs(2, 4, slice_step=1, gap=0)
    assert all(slab[1] == t for slab, t in zip(even.test_indices, DEFAULT_TEST_SLICES))
    with pytest.raises(ValueError, match="only 31 training slab positions"):
        load_mni152_slabs(32, 3)
    with pytest.raises(ValueError, match="only 2 training slab positions"):
        load_mni152_slabs(3, 5, gap=4)  # 5 slices 2 mm apart fit only above the top test slab
    with pytest.raises(ValueError):
        load_mni152_slabs(0, 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_benchmark_psnr_is_the_package_psnr_and_the_former_formulas(dtype):
    """benchmarks/scoring.py scores with c2s_denoise.metrics.psnr; the numbers equal the hand-written
    formulas the scripts used before (compare.metrics, realistic_scans.scores, budget_sweep.psnr)."""
    pytest.importorskip("skimage")
    from c2s_denoise import metrics as package_metrics
    from scoring import masked_psnr, metrics, psnr, scores

    assert psnr is package_metrics.psnr
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.0, 1.0, (3, 24, 20))
    estimate = (clean + 0.2 * rng.standard_normal(clean.shape)).astype(dtype)
    mask = rng.uniform(size=clean.shape) < 0.4

    clipped = np.clip(estimate, 0.0, 1.0)
    whole, brain = [], []
    for e, c, m in zip(clipped, clean, mask):
        error = (e - c) ** 2
        whole.append(10 * np.log10(1.0 / error.mean()))
        brain.append(10 * np.log10(1.0 / error[m].mean()))
    result = metrics(estimate, clean, mask)
    assert result["psnr"] == float(np.mean(whole)) and result["psnr_brain"] == float(np.mean(brain))

    peak = float(clean.max())
    former = [10 * np.log10(peak**2 / np.mean((e - c)[m] ** 2)) for e, c, m in zip(estimate, clean, mask)]
    assert scores(estimate, clean, mask)["psnr_brain"] == float(np.mean(former))
    assert masked_psnr(estimate[0], clean[0], mask[0], range_=peak) == former[0]

    budget_sweep = float(10 * np.log10(1.0 / np.mean((np.clip(estimate, 0, 1) - clean) ** 2)))
    assert psnr(np.clip(estimate, 0, 1), clean, range_=1.0) == budget_sweep


@pytest.mark.parametrize("spacing, thickness", [(2, 1), (4, 4)])
def test_mni152_volumes_alternate_blocks_that_never_touch(spacing, thickness):
    pytest.importorskip("nilearn")
    from bench_data.volumes import load_mni152_volumes

    split = load_mni152_volumes(spacing, thickness)
    assert len(split.train) == len(split.test) == 2
    for volume, mask in zip(split.train + split.test, split.train_mask + split.test_mask):
        assert volume.shape == mask.shape and volume.shape[0] >= 4 and mask.any()
        assert 0.0 <= volume.min() and volume.max() <= 1.0
    starts = sorted(
        (block[0], block[-1], "train" if block in split.train_indices else "test")
        for block in split.train_indices + split.test_indices
    )
    assert [kind for *_, kind in starts] == ["train", "test", "train", "test"]
    for (_, last, _), (first, _, _) in zip(starts, starts[1:]):
        assert first - (last + thickness - 1) > spacing  # a dropped slice between blocks
