"""Volumetric C2S: the 3-D U-Net, 3-D patches, volume inference, the estimator's spatial_dims and its errors."""

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import make_phantoms, psnr
from typer.testing import CliRunner

import c2s_denoise.engine.inference as inference
from c2s_denoise import C2SDenoiser
from c2s_denoise.cli.commands import app
from c2s_denoise.engine import NoiseConditionedUNet, denoise_images, multiply_adds_per_pixel
from c2s_denoise.engine.volume_patches import VolumePatchSampler
from c2s_denoise.estimator.model_file import save_model_file

# n_coils=1: the smooth test volumes have no air to fit a coil number to (n_coils="auto" would warn)
FAST_3D = dict(spatial_dims=3, width=8, depth=2, batch_size=2, patch_size=16, patch_depth=4, random_state=0, n_coils=1)


def smooth_volume(depth: int = 12, size: int = 32, seed: int = 3) -> np.ndarray:
    """A volume that changes smoothly along z: a blend of two phantoms."""
    first, last = make_phantoms(2, size, seed=seed)
    t = np.linspace(0, 1, depth)[:, None, None]
    return (1 - t) * first + t * last


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("shape", [(1, 1, 4, 8, 8), (2, 3, 5, 13, 11), (1, 1, 9, 1, 1)])
def test_3d_unet_keeps_the_volume_shape(shape, separable):
    network = NoiseConditionedUNet(
        in_channels=shape[1], out_channels=1, width=4, depth=3, spatial_dims=3, separable=separable
    )
    out = network(torch.randn(shape), torch.full((shape[0],), 0.2))
    assert out.shape == (shape[0], 1, *shape[2:])
    assert network.min_depth == 4 and network.config["spatial_dims"] == 3


def test_3d_unet_costs_about_three_times_the_2d_one_per_voxel_and_refuses_images():
    two, three = NoiseConditionedUNet(), NoiseConditionedUNet(spatial_dims=3)
    assert "spatial_dims" not in two.config  # 2-D model files are as before
    assert 1.5 < multiply_adds_per_pixel(three, 16) / multiply_adds_per_pixel(two, 16) < 3.0
    with pytest.raises(ValueError, match="spatial_dims=3 takes 5-D input"):
        three(torch.zeros(1, 1, 8, 8), torch.tensor([0.1]))
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        NoiseConditionedUNet(spatial_dims=1)
    with pytest.raises(ValueError, match="separable convolutions are for 3-D networks"):
        NoiseConditionedUNet(separable=True)
    separable = NoiseConditionedUNet(spatial_dims=3, separable=True)
    assert multiply_adds_per_pixel(separable, 16) < 0.6 * multiply_adds_per_pixel(three, 16)


def test_volume_patches_have_the_patch_shape_and_never_swap_the_slice_axis():
    # slice z holds the value z everywhere: any patch must keep that order along its first axis (or reversed)
    volume = torch.arange(10, dtype=torch.float32)[:, None, None].expand(10, 20, 24)[None].clone()
    small = torch.zeros(1, 6, 30, 30)
    sampler = VolumePatchSampler([volume, small], torch.tensor([0.1, 0.2]), patch_size=16, patch_depth=8)
    assert sampler.patch_depth == 6  # limited by the thinnest volume
    generator = torch.Generator().manual_seed(0)
    seen_flip = False
    for _ in range(20):
        patches, sigma = sampler.sample(4, generator)
        assert patches.shape == (4, 1, 6, 16, 16) and sigma.shape == (4,)
        for patch, level in zip(patches, sigma):
            if level == 0.1:
                column = patch[0, :, 0, 0]
                assert torch.all(patch[0] == column[:, None, None])  # constant in-plane
                steps = column.diff()
                assert torch.all(steps == 1) or torch.all(steps == -1)
                seen_flip |= bool(steps[0] == -1)
    assert seen_flip
    # voxels are drawn uniformly: volumes by their number of voxels
    assert torch.allclose(sampler.weights, torch.tensor([4800.0, 5400.0], dtype=torch.float64) / 10200)


def test_volume_inference_in_slabs_matches_the_whole_volume(monkeypatch):
    torch.manual_seed(0)
    network = NoiseConditionedUNet(width=4, depth=2, spatial_dims=3).eval()
    volume = torch.rand(1, 20, 16, 16)
    whole = denoise_images(network, [volume], torch.tensor([0.1]), device=torch.device("cpu"), self_ensemble=True)[0]
    monkeypatch.setattr(inference, "MAX_SLAB_VOXELS", 16 * 16 * 22)  # slabs of 6 slices with 8 of margin
    slabs = denoise_images(network, [volume], torch.tensor([0.1]), device=torch.device("cpu"), self_ensemble=True)[0]
    assert whole.shape == (1, 20, 16, 16)
    # a 2-level U-Net sees a few slices on each side: 8 slices of margin make the slabs exact
    assert torch.allclose(whole, slabs, atol=1e-5)


def test_3d_self_ensemble_is_exact_for_an_equivariant_map():
    class Blur(torch.nn.Module):  # symmetric in-plane and along z: equivariant under every transform used
        def forward(self, x, sigma):
            kernel = torch.ones(1, 1, 3, 3, 3) / 27
            return torch.nn.functional.conv3d(x, kernel, padding=1)

    volume = torch.rand(1, 6, 10, 10)
    one = denoise_images(Blur(), [volume], torch.tensor([0.1]), device=torch.device("cpu"))[0]
    eight = denoise_images(Blur(), [volume], torch.tensor([0.1]), device=torch.device("cpu"), self_ensemble=True)[0]
    assert torch.allclose(one, eight, atol=1e-6)


def test_3d_c2s_denoises_a_held_out_volume():
    clean = smooth_volume()
    rng = np.random.default_rng(1)
    train, test = clean + 0.1 * rng.standard_normal(clean.shape), clean + 0.1 * rng.standard_normal(clean.shape)
    model = C2SDenoiser(sigma=0.1, max_iter=80, learning_rate=5e-3, **{**FAST_3D, "batch_size": 4, "patch_depth": 8})
    denoised = model.fit([train]).transform([test])[0]
    assert model.spatial_dims_ == 3 and model.network_.config["spatial_dims"] == 3
    assert denoised.shape == test.shape
    assert psnr(clean, denoised) > psnr(clean, test) + 4.0


def test_spatial_dims_auto_picks_3_for_volumes_and_2_for_images():
    volumes = np.random.default_rng(0).random((1, 4, 16, 16))
    auto = {**FAST_3D, "spatial_dims": "auto", "max_iter": 2}
    assert C2SDenoiser(**auto).fit(volumes).spatial_dims_ == 3
    assert C2SDenoiser(**auto).fit(volumes[0]).spatial_dims_ == 2  # (n, H, W): a stack of 2-D images
    assert C2SDenoiser(max_iter=2, random_state=0, n_coils=1).fit(volumes).spatial_dims_ == 2  # the default: 2-D


@pytest.mark.parametrize("conv3d", ["full", "separable"])
def test_3d_model_round_trips_through_the_model_file(tmp_path, conv3d):
    volume = smooth_volume(6, 16)
    model = C2SDenoiser(sigma=0.1, max_iter=3, conv3d=conv3d, **FAST_3D).fit([volume])
    assert model.network_.config.get("separable", False) == (conv3d == "separable")
    path = save_model_file(model, tmp_path / "m.c2s")
    loaded = C2SDenoiser.load(path)
    assert loaded.spatial_dims_ == 3
    np.testing.assert_array_equal(loaded.transform([volume])[0], model.transform([volume])[0])


# ---------------------------------------------------------------------------------------- bad input
def test_volume_thinner_than_the_field_of_view_is_refused_naming_the_item():
    volumes = [np.random.default_rng(0).random((8, 16, 16)), np.random.default_rng(1).random((3, 16, 16))]
    with pytest.raises(
        ValueError, match=r"item 1 has 3 slices, thinner than the 3-D network's field of view.*at least 4"
    ):
        C2SDenoiser(max_iter=2, **{**FAST_3D, "depth": 3}).fit(volumes)


def test_2d_images_given_to_a_3d_model_are_refused_naming_the_item():
    volume = np.random.default_rng(0).random((6, 16, 16))
    with pytest.raises(ValueError, match=r"item 0 is a 2-D image .* model is 3-D"):
        C2SDenoiser(max_iter=2, **FAST_3D).fit(volume)  # (n, H, W): images
    model = C2SDenoiser(max_iter=2, **FAST_3D).fit([volume])
    with pytest.raises(ValueError, match=r"item 2 is a 2-D image .* model is 3-D"):
        model.transform([volume, volume, volume[0]])
    with pytest.raises(ValueError, match="context_slices=1 is for the slice-by-slice network"):
        C2SDenoiser(context_slices=1, **FAST_3D).fit([volume])


def _nifti(path, data, zooms):
    image = nib.Nifti1Image(data.astype(np.float32), np.diag([*zooms, 1.0]))
    image.header.set_zooms(zooms)
    nib.save(image, path)
    return path


def test_cli_refuses_training_files_of_different_voxel_sizes(tmp_path):
    rng = np.random.default_rng(0)
    first = _nifti(tmp_path / "a.nii.gz", rng.random((16, 16, 8)), (1.0, 1.0, 1.0))
    second = _nifti(tmp_path / "b.nii.gz", rng.random((16, 16, 8)), (1.0, 1.0, 3.0))
    model = str(tmp_path / "m.c2s")
    args = ["fit", str(first), str(second), "--output", model, "--max-iter", "2", "--width", "4", "--n-coils", "1"]
    result = CliRunner().invoke(app, [*args, "--dims", "3"])
    assert result.exit_code == 1
    assert "b.nii.gz" in result.output and "voxel size 3 x 1 x 1 mm" in result.output
    assert "a 3-D network (--dims 3) learns from voxels" in result.output
    assert CliRunner().invoke(app, [*args, "--dims", "2"]).exit_code == 0  # slice by slice: fine
    result = CliRunner().invoke(app, [*args, "--dims", "4", "--overwrite"])
    assert result.exit_code == 2 and "expected 2, 3 or auto" in result.output


def test_cli_fits_and_applies_a_3d_model_to_a_nifti_volume(tmp_path):
    volume = smooth_volume(8, 16)
    source = _nifti(tmp_path / "a.nii.gz", np.moveaxis(volume, 0, -1), (1.0, 1.0, 2.0))
    model = tmp_path / "m.c2s"
    fit = CliRunner().invoke(
        app,
        [
            "fit",
            str(source),
            "--output",
            str(model),
            "--max-iter",
            "2",
            "--width",
            "4",
            "--dims",
            "3",
            "--n-coils",
            "1",
        ],
    )
    assert fit.exit_code == 0, fit.output
    assert C2SDenoiser.load(model).spatial_dims_ == 3
    out = tmp_path / "out"
    applied = CliRunner().invoke(app, ["apply", str(model), str(source), "--outdir", str(out)])
    assert applied.exit_code == 0, applied.output
    assert nib.load(next(out.iterdir())).shape == (16, 16, 8)


@pytest.mark.parametrize("kind", ["complex", "rician", "contrasts"])
def test_3d_networks_take_complex_magnitude_and_multi_contrast_volumes(kind):
    rng = np.random.default_rng(0)
    volume = smooth_volume(4, 16)
    params = {**FAST_3D, "max_iter": 2}
    if kind == "complex":
        X = [
            volume * np.exp(1j * volume)
            + 0.05 * (rng.standard_normal(volume.shape) + 1j * rng.standard_normal(volume.shape))
        ]
    elif kind == "rician":
        X = [np.hypot(volume + 0.05 * rng.standard_normal(volume.shape), 0.05 * rng.standard_normal(volume.shape))]
    else:
        X = [np.stack([volume, 1 - volume])]
        params["contrasts"] = ("T1", "T2")
    model = C2SDenoiser(**params).fit(X)
    out = model.transform(X)[0]
    assert out.shape == X[0].shape and out.dtype == X[0].dtype and np.isfinite(out).all()
    assert model.spatial_dims_ == 3
    if kind == "rician":
        assert model.noise_model_ == "rician"


# ------------------------------------------------------------------- context_slices="auto" (2.5-D for volumes)
def test_context_slices_auto_gives_volumes_one_neighbour_each_side_and_images_none():
    volume = smooth_volume(6, 16)
    fast = dict(sigma=0.1, max_iter=2, width=4, depth=2, batch_size=2, patch_size=16, random_state=0, n_coils=1)
    assert C2SDenoiser(**fast).fit([volume]).context_slices_ == 1  # a list of (D, H, W)
    assert C2SDenoiser(**fast).fit(volume[None]).context_slices_ == 1  # (n, D, H, W)
    assert C2SDenoiser(**fast).fit(volume).context_slices_ == 0  # (n, H, W): a stack of 2-D images
    assert C2SDenoiser(**fast).fit([volume, volume[0]]).context_slices_ == 0  # an image among the items
    assert C2SDenoiser(**{**fast, "context_slices": 0}).fit([volume]).context_slices_ == 0
    assert C2SDenoiser(**{**fast, "context_slices": 2}).fit([volume]).context_slices_ == 2
    three_d = C2SDenoiser(**{**fast, "spatial_dims": 3, "patch_depth": 4}).fit([volume])
    assert (three_d.spatial_dims_, three_d.context_slices_) == (3, 0)
    assert C2SDenoiser(**fast).fit([volume]).network_.config["in_channels"] == 3  # slices z-1, z, z+1


def test_transform_uses_the_fitted_context_and_the_model_file_keeps_it(tmp_path):
    volume = smooth_volume(6, 16)
    noisy = [volume + 0.1 * np.random.default_rng(1).standard_normal(volume.shape)]
    model = C2SDenoiser(sigma=0.1, max_iter=3, width=4, depth=2, batch_size=2, patch_size=16, random_state=0)
    expected = model.fit(noisy).transform(noisy)[0]
    model.set_params(context_slices=0)  # changed after the fit: the networks still take 3 slices
    np.testing.assert_array_equal(model.transform(noisy)[0], expected)
    loaded = C2SDenoiser.load(save_model_file(model, tmp_path / "m.c2s"))
    assert loaded.context_slices_ == 1
    np.testing.assert_array_equal(loaded.transform(noisy)[0], expected)


def test_a_warm_start_keeps_the_fitted_context_and_refuses_another():
    volume = smooth_volume(6, 16)
    fast = dict(sigma=0.1, max_iter=2, width=4, depth=2, batch_size=2, patch_size=16, random_state=0, n_coils=1)
    model = C2SDenoiser(**fast, warm_start=True).fit([volume])
    assert model.fit([volume]).context_slices_ == 1 and model.n_iter_ == 4
    with pytest.raises(ValueError, match="fitted with context_slices=1, this fit asks for context_slices=0"):
        model.set_params(context_slices=0).fit([volume])


def test_cli_fits_volumes_with_neighbouring_slices_unless_dims_2(tmp_path):
    source = _nifti(tmp_path / "v.nii.gz", smooth_volume(8, 16).transpose(1, 2, 0), (1.0, 1.0, 2.0))
    tiny = ["--max-iter", "2", "--width", "4", "--patch-size", "16", "--sigma", "0.1", "--n-coils", "1"]
    for extra, context in (([], 1), (["--dims", "2"], 0), (["--dims", "2", "--context-slices", "2"], 2)):
        model = tmp_path / f"m{context}.c2s"
        result = CliRunner().invoke(app, ["fit", str(source), "--output", str(model), *tiny, *extra])
        assert result.exit_code == 0, result.output
        assert C2SDenoiser.load(model).context_slices_ == context
