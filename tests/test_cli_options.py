"""Options from a user report: ``-v`` counts, ``estimate-noise --n-coils auto``, ``evaluate --ssim fastmri``.

Everything here runs without training a model (a few seconds on two CPU cores).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import typer.main
from test_cli import invoke, runner, summary

from c2s_denoise.cli import app
from c2s_denoise.metrics import ssim, ssim_fastmri
from c2s_denoise.physics.phantom import brain_phantom
from c2s_denoise.physics.simulate import magnitude_noise

COMMANDS_WITH_VERBOSE = ("fit", "apply", "evaluate", "estimate-noise", "demo")


@pytest.fixture
def image(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "image.npy"
    np.save(path, brain_phantom((48, 48), seed=0) + 0.05 * rng.standard_normal((48, 48)))
    return path


# ----------------------------------------------------------------------------- -v
@pytest.mark.parametrize("command", COMMANDS_WITH_VERBOSE)
def test_verbose_is_shown_as_a_flag(command: str) -> None:
    """``--help`` shows ``--verbose -v`` without a value (it said ``<int>``, and ``-v 1`` read 1 as a file)."""
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "--verbose" in line]
    assert len(rows) == 1, result.output
    assert "<int>" not in rows[0] and "INTEGER" not in rows[0] and "default: 0" not in rows[0], rows[0]
    (param,) = [p for p in typer.main.get_command(app).commands[command].params if p.name == "verbose"]
    assert param.count and param.opts == ["--verbose", "-v"]


@pytest.mark.parametrize("flags", [["-v"], ["-vv"], ["--verbose"], ["-v", "--verbose"]])
def test_verbose_counts(image: Path, flags: list[str]) -> None:
    """``-v``, ``-vv`` and ``--verbose`` take no value; any of them logs progress (INFO)."""
    logger = logging.getLogger("c2s_denoise")
    level = logger.level
    try:
        assert summary(invoke("estimate-noise", *flags, image))["n_files"] == 1
        assert logger.level == logging.INFO
        assert summary(invoke("estimate-noise", image))["n_files"] == 1
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(level)


def test_a_number_after_v_is_an_input(image: Path) -> None:
    """``-v`` is a flag: a number after it is the next argument (here a file that does not exist)."""
    result = invoke("estimate-noise", image, "-v", "1")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: 1: ")


# ----------------------------------------------------------------------------- estimate-noise --n-coils
@pytest.fixture(scope="module")
def rss8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root-sum-of-squares magnitude volume of 8 coils (noncentral chi noise, sigma 0.043)."""
    path = tmp_path_factory.mktemp("rss") / "rss8.npy"
    clean = brain_phantom((2, 128, 128), seed=0)
    np.save(path, magnitude_noise(clean, 0.043, n_coils=8, seed=1).astype(np.float32))
    return path


def test_estimate_noise_fits_the_coils(rss8: Path) -> None:
    """Unset ``--n-coils`` is ``auto``: the coils are fitted to the air, and sigma is right (one coil: 3.5x)."""
    result = invoke("estimate-noise", rss8)
    entry = summary(result)["results"][0]
    assert entry["n_coils_from"] == "auto"
    assert entry["n_coils"] == pytest.approx(8, rel=0.1)
    assert entry["auto"]["noise_model"] == "ncchi"
    assert entry["auto"]["sigma"] == pytest.approx(0.043, rel=0.1)
    assert entry["sigma_background"] == pytest.approx(0.043, rel=0.1)
    assert "coils" in result.stderr.splitlines()[0]
    assert summary(invoke("estimate-noise", rss8, "--n-coils", "auto"))["results"][0] == entry


def test_estimate_noise_given_coils(rss8: Path) -> None:
    """A given number is used as it is (and reported): one coil reads the 8-coil air as far noisier."""
    one = summary(invoke("estimate-noise", rss8, "--n-coils", "1"))["results"][0]
    assert one["n_coils"] == 1 and one["n_coils_from"] == "given"
    assert one["sigma_background"] > 3 * 0.043
    eight = summary(invoke("estimate-noise", rss8, "--n-coils", "8"))["results"][0]
    assert eight["n_coils"] == 8 and eight["auto"]["sigma"] == pytest.approx(0.043, rel=0.1)
    result = invoke("estimate-noise", rss8, "--n-coils", "many")
    assert result.exit_code == 2 and "expected a number of coils >= 1 or auto" in result.output


# ----------------------------------------------------------------------------- evaluate --ssim
def skimage_fastmri_ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """fastMRI's ``evaluate.ssim``: scikit-image per slice, ``data_range`` the volume's maximum, averaged."""
    skimage_metrics = pytest.importorskip("skimage.metrics")
    return float(
        np.mean(
            [
                skimage_metrics.structural_similarity(r, i, win_size=7, data_range=reference.max())
                for r, i in zip(reference, image, strict=True)
            ]
        )
    )


@pytest.mark.parametrize("shape", [(3, 40, 33), (1, 7, 9), (2, 64, 64)])
def test_ssim_fastmri_is_skimages(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    reference = rng.random(shape) + np.linspace(0, 2, shape[-1])
    image = reference + 0.2 * rng.standard_normal(shape)
    assert ssim_fastmri(image, reference) == pytest.approx(skimage_fastmri_ssim(image, reference), abs=1e-10)
    assert ssim_fastmri(image[0], reference[0]) == pytest.approx(skimage_fastmri_ssim(image[:1], reference[:1]))
    assert ssim_fastmri(reference, reference) == pytest.approx(1.0)


def test_ssim_fastmri_needs_seven_pixels() -> None:
    with pytest.raises(ValueError, match="at least 7 x 7"):
        ssim_fastmri(np.ones((6, 20)), np.ones((6, 20)))


def test_evaluate_ssim_option(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    reference = brain_phantom((2, 48, 48), seed=3) + 0.1
    denoised = reference + 0.03 * rng.standard_normal(reference.shape)
    np.save(tmp_path / "ref.npy", reference)
    np.save(tmp_path / "den.npy", denoised)
    default = summary(invoke("evaluate", tmp_path / "den.npy", "-r", tmp_path / "ref.npy"))
    assert default["ssim_convention"] == "gaussian"
    assert default["results"][0]["ssim"] == pytest.approx(ssim(denoised, reference))
    result = invoke("evaluate", tmp_path / "den.npy", "-r", tmp_path / "ref.npy", "--ssim", "fastmri")
    fastmri = summary(result)
    assert fastmri["ssim_convention"] == "fastmri"
    assert "SSIM (fastmri)" in result.stderr
    assert fastmri["results"][0]["ssim"] == pytest.approx(skimage_fastmri_ssim(denoised, reference), abs=1e-6)
    assert fastmri["results"][0]["psnr"] == default["results"][0]["psnr"]
    result = invoke("evaluate", tmp_path / "den.npy", "-r", tmp_path / "ref.npy", "--ssim", "uniform")
    assert result.exit_code == 2 and "expected gaussian or fastmri" in result.output
