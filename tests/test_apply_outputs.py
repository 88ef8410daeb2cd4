"""``apply`` options that shape the outputs and where the work runs, through the command line: ``--mask``,
``--save-noise-map``, ``--save-residual``, ``--dtype``, ``--device``, ``--threads``, NIfTI sidecars and BIDS
derivative names; and a model saved with a GPU device denoising on this CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_cli, make_phantoms

from c2s_denoise import C2SDenoiser

nib = pytest.importorskip("nibabel")

TINY = ["--max-iter", "10", "--width", "4", "--patch-size", "24", "--batch-size", "2", "--seed", "0"]
SIGMA = 0.05

invoke = invoke_cli


def summary(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A noisy magnitude volume with air around the object (float NIfTI and int16 NumPy), a mask, a model."""
    root = tmp_path_factory.mktemp("outputs")
    clean = np.pad(make_phantoms(3, 40, seed=2), ((0, 0), (8, 8), (8, 8)))
    noisy = np.abs(clean + SIGMA * np.random.default_rng(0).standard_normal(clean.shape)).astype(np.float32)
    affine = np.diag([0.9, 0.9, 3.0, 1.0])
    nib.save(nib.Nifti1Image(np.moveaxis(noisy, 0, -1), affine), root / "scan.nii.gz")
    np.save(root / "scan16.npy", np.rint(noisy * 1000).astype(np.int16))
    mask = np.zeros_like(noisy)
    mask[:, 16:40, 16:40] = 1
    nib.save(nib.Nifti1Image(np.moveaxis(mask, 0, -1), affine), root / "mask.nii.gz")
    model = root / "model.c2s"
    summary(invoke("fit", root / "scan.nii.gz", "-o", model, "--sigma", SIGMA, "--context-slices", "0", *TINY))
    model16 = root / "model16.c2s"
    summary(invoke("fit", root / "scan16.npy", "-o", model16, "--context-slices", "0", *TINY))
    return {"root": root, "nifti": root / "scan.nii.gz", "npy16": root / "scan16.npy", "mask": root / "mask.nii.gz",
            "model": model, "model16": model16, "noisy": noisy, "mask_array": mask.astype(bool)}  # fmt: skip


def _read(path: Path) -> np.ndarray:
    return np.moveaxis(np.asarray(nib.load(path).get_fdata()), -1, 0)


def test_mask_file_denoises_inside_only(files: dict, tmp_path: Path) -> None:
    out = summary(invoke("apply", files["model"], files["nifti"], "-o", tmp_path, "--mask", files["mask"]))
    denoised = _read(Path(out["outputs"][0]["output"]))
    inside, noisy = files["mask_array"], files["noisy"]
    np.testing.assert_array_equal(denoised[~inside], noisy[~inside])  # outside: the input as read
    assert np.abs(denoised[inside] - noisy[inside]).mean() > 0.1 * SIGMA  # inside: denoised


def test_automatic_mask_leaves_the_air_as_read(files: dict, tmp_path: Path) -> None:
    out = summary(invoke("apply", files["model"], files["nifti"], "-o", tmp_path, "--mask", "auto"))
    denoised, noisy = _read(Path(out["outputs"][0]["output"])), files["noisy"]
    np.testing.assert_array_equal(denoised[:, :3, :3], noisy[:, :3, :3])  # the corners are air
    assert not np.array_equal(denoised[:, 20:36, 20:36], noisy[:, 20:36, 20:36])


def test_a_mask_of_another_shape_is_refused_before_writing(files: dict, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones((3, 10, 10)))
    result = invoke("apply", files["model"], files["nifti"], "-o", tmp_path / "out", "--mask", wrong)
    assert result.exit_code == 1 and "wrong.npy: mask of shape (3, 10, 10) does not match" in result.stderr
    assert not (tmp_path / "out" / "scan.nii.gz").exists()


def test_noise_map_residual_and_sidecar(files: dict, tmp_path: Path) -> None:
    out = summary(
        invoke("apply", files["model"], files["nifti"], "-o", tmp_path, "--save-noise-map", "--save-residual")
    )
    entry = out["outputs"][0]
    denoised = _read(Path(entry["output"]))
    noise_map, residual = _read(Path(entry["noise_map"])), _read(Path(entry["residual"]))
    assert Path(entry["noise_map"]).name == "scan_noisemap.nii.gz" and noise_map.shape == denoised.shape
    np.testing.assert_allclose(noise_map, entry["sigma"], rtol=1e-6)  # one level per file, in input units
    assert entry["sigma"] == pytest.approx(SIGMA)
    np.testing.assert_allclose(residual, files["noisy"] - denoised, atol=1e-6)
    assert np.allclose(nib.load(entry["noise_map"]).affine, nib.load(files["nifti"]).affine)
    sidecar = json.loads(Path(entry["sidecar"]).read_text())
    assert Path(entry["sidecar"]).name == "scan.json" and sidecar["sigma"] == pytest.approx(SIGMA)
    assert sidecar["GeneratedBy"][0]["Name"] == "c2s-denoise" and len(sidecar["SourceSHA256"]) == 64
    assert sidecar["Parameters"]["max_iter"] == 10
    again = invoke("apply", files["model"], files["nifti"], "-o", tmp_path, "--save-noise-map")
    assert again.exit_code == 1 and "--overwrite" in again.stderr  # every planned output is checked


def test_bids_derivatives_get_desc_names_and_a_dataset_description(files: dict, tmp_path: Path) -> None:
    subject = tmp_path / "sub-01_T1w.nii.gz"
    subject.write_bytes(files["nifti"].read_bytes())
    outdir = tmp_path / "bids" / "derivatives" / "c2s" / "sub-01" / "anat"
    out = summary(invoke("apply", files["model"], subject, "-o", outdir, "--save-noise-map"))
    entry = out["outputs"][0]
    assert Path(entry["output"]).name == "sub-01_desc-c2s_T1w.nii.gz"
    assert Path(entry["noise_map"]).name == "sub-01_desc-c2snoisemap_T1w.nii.gz"
    assert Path(entry["sidecar"]).name == "sub-01_desc-c2s_T1w.json"
    description = json.loads((tmp_path / "bids" / "derivatives" / "c2s" / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "c2s-denoise"


def test_dtype_keep_writes_the_input_type(files: dict, tmp_path: Path) -> None:
    kept = summary(invoke("apply", files["model16"], files["npy16"], "-o", tmp_path / "keep", "--dtype", "keep"))
    floats = summary(invoke("apply", files["model16"], files["npy16"], "-o", tmp_path / "float"))
    as_int = np.load(kept["outputs"][0]["output"])
    as_float = np.load(floats["outputs"][0]["output"])
    assert as_int.dtype == np.int16 and as_float.dtype == np.float32
    np.testing.assert_array_equal(as_int, np.rint(as_float).astype(np.int16))
    bad = invoke("apply", files["model16"], files["npy16"], "-o", tmp_path / "bad", "--dtype", "int8")
    assert bad.exit_code == 2 and "float32|keep" in bad.stderr.replace(" or ", "|")


def test_device_and_threads(files: dict, tmp_path: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    out = summary(invoke("apply", files["model"], files["nifti"], "-o", tmp_path, "--device", "cpu", "--threads", 1))
    assert out["n_files"] == 1 and torch.get_num_threads() == threads  # the count is restored
    if not torch.cuda.is_available():
        result = invoke("apply", files["model"], files["nifti"], "-o", tmp_path / "gpu", "--device", "cuda")
        assert result.exit_code == 1 and "CUDA is not available" in result.stderr
        assert not (tmp_path / "gpu").exists()
    assert invoke("apply", files["model"], files["nifti"], "-o", tmp_path / "t0", "--threads", 0).exit_code == 2


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA: nothing to fall back from")
def test_a_model_saved_with_a_gpu_device_denoises_on_this_cpu(files: dict, tmp_path: Path) -> None:
    model = C2SDenoiser.load(files["model"]).set_params(device="cuda")
    gpu_model = model.save(tmp_path / "gpu.c2s")
    assert C2SDenoiser.load(gpu_model).device == "cuda"  # as a model fitted on a GPU machine is saved
    out = summary(invoke("apply", gpu_model, files["nifti"], "-o", tmp_path / "out"))
    reference = summary(invoke("apply", files["model"], files["nifti"], "-o", tmp_path / "ref"))
    np.testing.assert_array_equal(
        _read(Path(out["outputs"][0]["output"])), _read(Path(reference["outputs"][0]["output"]))
    )
    with pytest.warns(UserWarning, match="CUDA is not available.*using the CPU"):
        C2SDenoiser.load(gpu_model).transform(files["noisy"])


def test_a_volume_model_denoises_a_single_image(files: dict, tmp_path: Path) -> None:
    """A model fitted on a volume (2.5-D, one neighbour each side) applies to one 2-D image: its own neighbour."""
    model = tmp_path / "volume.c2s"
    fitted = summary(invoke("fit", files["nifti"], "-o", model, "--sigma", SIGMA, *TINY))
    assert fitted["params"]["context_slices"] == "auto" and C2SDenoiser.load(model).context_slices_ == 1
    single = tmp_path / "single.npy"
    np.save(single, files["noisy"][1])
    out = summary(invoke("apply", model, single, "-o", tmp_path / "out"))
    assert np.load(out["outputs"][0]["output"]).shape == files["noisy"][1].shape
