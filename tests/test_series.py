"""4-D NIfTI series (diffusion directions, time points): every 3-D volume is an item of one fit, and the output
keeps the input's shape and header."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_cli, make_phantoms, psnr

from c2s_denoise.io import load_image

nib = pytest.importorskip("nibabel")

SIGMA = 0.06
TINY = ["--max-iter", "60", "--width", "8", "--patch-size", "32", "--batch-size", "4", "--seed", "0"]

invoke = invoke_cli


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A series of 5 volumes (4 slices of 48x48), each a different weighting of one anatomy, with Gaussian noise."""
    root = tmp_path_factory.mktemp("series")
    anatomy = make_phantoms(4, 48, seed=7)
    clean = np.stack([anatomy ** (1 + 0.3 * t) * (1 - 0.1 * t) for t in range(5)])  # (T, D, H, W)
    noisy = clean + SIGMA * np.random.default_rng(1).standard_normal(clean.shape)
    stored = np.moveaxis(np.moveaxis(noisy, 0, -1), 0, 2).astype(np.float32)  # (X, Y, Z, T), slices on axis 2
    image = nib.Nifti1Image(stored, np.diag([2.0, 2.0, 2.5, 1.0]))
    image.header.set_xyzt_units("mm", "sec")
    image.header["pixdim"][4] = 3.2  # repetition time: kept in the output's header
    path = root / "dwi.nii.gz"
    nib.save(image, path)
    return {"root": root, "path": path, "clean": clean, "noisy": noisy}


def test_a_4d_nifti_reads_as_a_series_of_volumes(series: dict) -> None:
    image = load_image(series["path"])
    assert image.data.shape == (5, 4, 48, 48) and len(image.volumes) == 5
    np.testing.assert_allclose(image.data, series["noisy"], atol=1e-6)


def test_fit_and_apply_keep_shape_and_header_and_denoise_every_volume(series: dict, tmp_path: Path) -> None:
    model = tmp_path / "model.c2s"
    fitted = invoke("fit", series["path"], "-o", model, "--sigma", SIGMA, *TINY)
    assert fitted.exit_code == 0, fitted.stderr
    summary = json.loads(fitted.stdout)
    assert summary["inputs"][0]["shape"] == [5, 4, 48, 48] and len(summary["sigma"]) == 5  # one item per volume
    applied = invoke("apply", model, series["path"], "-o", tmp_path / "out", "--save-noise-map")
    assert applied.exit_code == 0, applied.stderr
    entry = json.loads(applied.stdout)["outputs"][0]
    source, output = nib.load(series["path"]), nib.load(entry["output"])
    assert output.shape == source.shape == (48, 48, 4, 5)
    np.testing.assert_array_equal(output.affine, source.affine)
    for key in ("dim", "pixdim", "qform_code", "sform_code", "xyzt_units"):
        np.testing.assert_array_equal(output.header[key], source.header[key])
    denoised = load_image(entry["output"]).data
    for t in range(5):  # every volume gains
        assert psnr(series["clean"][t], denoised[t]) > psnr(series["clean"][t], series["noisy"][t]) + 1.0
    assert len(entry["sigma_per_volume"]) == 5 and nib.load(entry["noise_map"]).shape == source.shape


def test_a_series_with_contrasts_is_refused_with_its_name(series: dict, tmp_path: Path) -> None:
    result = invoke(
        "fit", "--contrast", f"DWI={series['path']}", "--contrast", f"B={series['path']}", "-o", tmp_path / "m.c2s"
    )
    assert result.exit_code != 0 and "dwi.nii.gz: a 4-D series cannot be fitted with --contrast" in result.stderr
