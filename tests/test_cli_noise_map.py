"""``--noise-map FILE|auto`` of ``fit`` and ``apply``, and ``--save-noise-map`` writing the map used: noise that
varies across the image (issue 23), through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_cli, make_phantoms

from c2s_denoise import C2SDenoiser
from c2s_denoise.io import load_image

nib = pytest.importorskip("nibabel")

TINY = ["--max-iter", "6", "--width", "4", "--patch-size", "24", "--batch-size", "2", "--seed", "0"]
SIGMA = 0.05
AFFINE = np.diag([0.9, 0.9, 3.0, 1.0])


def summary(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _save_nifti(path: Path, volume: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    nib.save(nib.Nifti1Image(np.moveaxis(volume.astype(np.float32), 0, -1), affine), path)
    return path


def _read(path: Path | str) -> np.ndarray:
    return np.moveaxis(np.asarray(nib.load(path).get_fdata()), -1, 0)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A magnitude volume whose noise rises fourfold from left to right, its noise map (NIfTI), and a model."""
    root = tmp_path_factory.mktemp("noise_maps")
    clean = np.pad(make_phantoms(3, 32, seed=4), ((0, 0), (8, 8), (8, 8)))
    noise_map = SIGMA * np.broadcast_to(np.linspace(0.5, 2.0, clean.shape[2]), clean.shape).astype(np.float32)
    noisy = np.abs(clean + noise_map * np.random.default_rng(3).standard_normal(clean.shape))
    scan, map_file = _save_nifti(root / "scan.nii.gz", noisy), _save_nifti(root / "map.nii.gz", noise_map)
    model = root / "model.c2s"
    summary(invoke_cli("fit", scan, "-o", model, "--sigma", SIGMA, "--context-slices", "0", *TINY))
    return {"root": root, "scan": scan, "map": map_file, "model": model, "noise_map": noise_map}


def _expected(model_file: Path, scan: Path, sigma: object) -> np.ndarray:
    """What the estimator gives the scan as apply reads it, with ``sigma`` set on the fitted model."""
    model = C2SDenoiser.load(model_file).set_params(sigma=sigma)
    return model.transform([load_image(scan).data])[0]


def test_apply_with_a_map_file_denoises_as_the_estimator_and_writes_that_map(files: dict, tmp_path: Path) -> None:
    plain = summary(invoke_cli("apply", files["model"], files["scan"], "-o", tmp_path / "plain"))
    mapped = summary(
        invoke_cli(
            "apply", files["model"], files["scan"], "-o", tmp_path / "map", "--noise-map", files["map"],
            "--save-noise-map",
        )
    )  # fmt: skip
    entry = mapped["outputs"][0]
    output, without = _read(entry["output"]), _read(plain["outputs"][0]["output"])
    assert np.abs(output - without).max() > 0.1 * SIGMA  # the map changes the result
    np.testing.assert_allclose(output, _expected(files["model"], files["scan"], [files["noise_map"]]), atol=1e-6)
    np.testing.assert_allclose(_read(entry["noise_map"]), files["noise_map"], rtol=1e-6)  # the map used, as given
    assert np.allclose(nib.load(entry["noise_map"]).affine, AFFINE)
    assert entry["noise_map_source"] == str(files["map"].absolute())
    assert entry["sigma"] == pytest.approx(float(np.median(files["noise_map"])), rel=1e-6)
    assert json.loads(Path(entry["sidecar"]).read_text())["noise_map_source"] == entry["noise_map_source"]


def test_apply_auto_estimates_each_map_once_and_writes_it(files: dict, tmp_path: Path) -> None:
    out = summary(
        invoke_cli("apply", files["model"], files["scan"], "-o", tmp_path, "--noise-map", "auto", "--save-noise-map")
    )
    entry = out["outputs"][0]
    written = _read(entry["noise_map"])
    from c2s_denoise.physics.noise import estimate_noise_map

    model = C2SDenoiser.load(files["model"])
    n_coils = model.n_coils_ if model.noise_model_ == "ncchi" else 1
    estimate = estimate_noise_map(load_image(files["scan"]).data, noise_model=model.noise_model_, n_coils=n_coils)
    np.testing.assert_allclose(written, estimate, rtol=1e-6)
    assert written.std() > 0.05 * written.mean() and entry["noise_map_source"] == "auto"  # a map, not one level
    np.testing.assert_allclose(_read(entry["output"]), _expected(files["model"], files["scan"], "local"), atol=1e-6)


def test_fit_with_noise_maps(files: dict, tmp_path: Path) -> None:
    """A map file per input fits on the maps (sigma_ their median) and leaves the model's sigma as it was; auto
    fits with sigma="local", which apply then estimates (and writes) without being told."""
    model = tmp_path / "mapped.c2s"
    fitted = summary(invoke_cli("fit", files["scan"], "-o", model, "--noise-map", files["map"], *TINY))
    entry = fitted["inputs"][0]
    assert entry["noise_estimator"] == "map" and entry["noise_map_source"] == str(files["map"].absolute())
    assert fitted["sigma"] == [pytest.approx(float(np.median(files["noise_map"])), rel=1e-6)]
    assert C2SDenoiser.load(model).sigma == "auto" and fitted["params"]["sigma"] == "auto"

    local = tmp_path / "local.c2s"
    fitted = summary(invoke_cli("fit", files["scan"], "-o", local, "--noise-map", "auto", *TINY))
    assert fitted["inputs"][0]["noise_estimator"] == "local" and C2SDenoiser.load(local).sigma == "local"
    out = summary(invoke_cli("apply", local, files["scan"], "-o", tmp_path / "out", "--save-noise-map"))
    written = _read(out["outputs"][0]["noise_map"])
    assert out["outputs"][0]["noise_map_source"] == "auto" and written.std() > 0.05 * written.mean()


def _bad_maps(files: dict, folder: Path) -> dict[str, tuple[Path, str]]:
    """Map files that must be refused, with a piece of the error each must give."""
    good = files["noise_map"]
    shifted = AFFINE.copy()
    shifted[0, 3] = 1.0
    np.save(folder / "short.npy", good[:, :, :-4])
    np.save(folder / "zero.npy", np.where(np.eye(good.shape[1], dtype=bool), 0.0, good))
    np.save(folder / "negative.npy", -good)
    np.save(folder / "nan.npy", np.where(np.eye(good.shape[1], dtype=bool), np.nan, good))
    return {
        "shape": (folder / "short.npy", "does not match"),
        "affine": (_save_nifti(folder / "shifted.nii.gz", good, shifted), "affine differs"),
        "zero": (folder / "zero.npy", "value(s) <= 0"),
        "negative": (folder / "negative.npy", "value(s) <= 0"),
        "nan": (folder / "nan.npy", "NaN"),
        "missing": (folder / "missing.nii.gz", "not found"),
    }


def _one_error_line(result, *names: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(name in lines[0] for name in names), lines[0]
    return lines[0]


@pytest.mark.parametrize("case", ["shape", "affine", "zero", "negative", "nan", "missing"])
def test_a_bad_map_is_refused_in_one_line_before_anything_is_written(files: dict, tmp_path: Path, case: str) -> None:
    bad, problem = _bad_maps(files, tmp_path)[case]
    second = tmp_path / "second.nii.gz"
    second.write_bytes(files["scan"].read_bytes())
    outdir = tmp_path / "out"
    result = invoke_cli("apply", files["model"], files["scan"], second, "-o", outdir, "--noise-map", files["map"],
                        "--noise-map", bad)  # fmt: skip
    line = _one_error_line(result, bad.name, problem)
    if case in ("shape", "affine"):
        assert "second.nii.gz" in line  # both files named
    assert not outdir.exists()  # the first input's output was not written either
    model = tmp_path / "model.c2s"
    _one_error_line(invoke_cli("fit", files["scan"], "-o", model, "--noise-map", bad, *TINY), bad.name, problem)
    assert not model.exists()


def test_maps_are_refused_with_sigma_auto_and_files_or_a_wrong_count(files: dict, tmp_path: Path) -> None:
    model, outdir = tmp_path / "model.c2s", tmp_path / "out"
    with_sigma = invoke_cli("fit", files["scan"], "-o", model, "--noise-map", "auto", "--sigma", SIGMA, *TINY)
    _one_error_line(with_sigma, "--noise-map", "--sigma")
    mixed = invoke_cli("apply", files["model"], files["scan"], "-o", outdir, "--noise-map", "auto", "--noise-map",
                       files["map"])  # fmt: skip
    _one_error_line(mixed, "--noise-map auto")
    counted = invoke_cli("apply", files["model"], files["scan"], "-o", outdir, "--noise-map", files["map"],
                         "--noise-map", files["map"])  # fmt: skip
    _one_error_line(counted, "2 map files for 1 inputs")
    assert not model.exists() and not outdir.exists()
