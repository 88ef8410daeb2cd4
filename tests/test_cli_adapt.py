"""``apply --adapt STEPS``: a copy of the model is trained on each file's own noisy images before it
is denoised (issue 20, models that travel); the model file stays as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_cli, make_phantoms

from c2s_denoise import C2SDenoiser
from c2s_denoise.io import load_image
from c2s_denoise.workflows.model_files import file_sha256

nib = pytest.importorskip("nibabel")

TINY = ["--max-iter", "6", "--width", "4", "--patch-size", "24", "--batch-size", "2", "--seed", "0"]
SIGMA = 0.05


def summary(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _save_nifti(path: Path, volume: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(np.moveaxis(volume.astype(np.float32), 0, -1), np.eye(4)), path)
    return path


def _read(path: Path | str) -> np.ndarray:
    return np.moveaxis(np.asarray(nib.load(path).get_fdata()), -1, 0)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A model fitted on one phantom volume, and another volume to denoise."""
    root = tmp_path_factory.mktemp("adapt")
    rng = np.random.default_rng(5)
    fitted_on = _save_nifti(root / "a.nii.gz", make_phantoms(3, 40, seed=6) + SIGMA * rng.standard_normal((3, 40, 40)))
    scan = _save_nifti(root / "b.nii.gz", make_phantoms(3, 40, seed=7) + SIGMA * rng.standard_normal((3, 40, 40)))
    model = root / "model.c2s"
    summary(invoke_cli("fit", fitted_on, "-o", model, "--sigma", SIGMA, "--context-slices", "0", *TINY))
    return {"scan": scan, "model": model}


def test_adapt_denoises_with_a_model_trained_on_the_file_and_leaves_the_model_file(files: dict, tmp_path: Path) -> None:
    before = file_sha256(files["model"])
    plain = summary(invoke_cli("apply", files["model"], files["scan"], "-o", tmp_path / "plain"))
    adapted = summary(invoke_cli("apply", files["model"], files["scan"], "-o", tmp_path / "adapted", "--adapt", 5))
    entry = adapted["outputs"][0]
    assert entry["adapted_steps"] == 5 and entry["adapt_seconds"] > 0
    assert "adapted_steps" not in plain["outputs"][0]
    assert json.loads(Path(entry["sidecar"]).read_text())["adapted_steps"] == 5
    assert file_sha256(files["model"]) == before  # the model file is not changed
    # the output is what the estimator gives after the same warm start on the file as apply reads it
    model = C2SDenoiser.load(files["model"])
    image = load_image(files["scan"]).data
    expected = model.set_params(warm_start=True, max_iter=5).fit([image]).transform([image])[0]
    output = _read(entry["output"])
    np.testing.assert_allclose(output, expected, atol=1e-5)
    assert np.abs(output - _read(plain["outputs"][0]["output"])).max() > 1e-3  # adaptation changed the result


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--adapt", "-1"], "--adapt"),
        (["--adapt", "3", "--noise-map", "auto"], "--adapt 3 cannot be combined with --noise-map"),
    ],
)
def test_bad_adapt_is_refused_before_anything_is_written(files: dict, tmp_path: Path, extra, message) -> None:
    outdir = tmp_path / "out"
    result = invoke_cli("apply", files["model"], files["scan"], "-o", outdir, *extra)
    assert result.exit_code != 0
    assert message in (result.stderr or "") + result.stdout
    assert not outdir.exists() or not any(outdir.iterdir())


def test_the_library_refuses_a_negative_or_fractional_adapt(files: dict, tmp_path: Path) -> None:
    from c2s_denoise.io import C2SInputError
    from c2s_denoise.workflows import apply_files

    for bad in (-2, 1.5, True):
        with pytest.raises(C2SInputError, match="adapt="):
            apply_files(files["model"], [files["scan"]], tmp_path / "out", adapt=bad)
    assert not (tmp_path / "out").exists()
