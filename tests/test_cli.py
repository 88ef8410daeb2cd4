"""The ``c2s-denoise`` command line: round trips, summaries, exit codes and bad input.

Models are tiny (width 8, 20 steps, 32x32 images) so the whole file runs in well
under a minute on two CPU cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import joblib
import numpy as np
import pytest
from _mri_files import HEADER, known_volume, truncate, write_fastmri
from typer.testing import CliRunner

from c2s_denoise import __version__
from c2s_denoise.cli.commands import app
from c2s_denoise.io import TEMP_PREFIX
from c2s_denoise.metrics import psnr
from c2s_denoise.workflows import file_sha256

REPO = Path(__file__).resolve().parents[1]
TINY = ["--max-iter", "20", "--width", "8", "--patch-size", "32", "--batch-size", "4", "--seed", "0"]
NOISE = 0.05

try:  # Click < 8.2 mixes stderr into stdout unless told not to
    runner = CliRunner(mix_stderr=False)
except TypeError:
    runner = CliRunner()


def invoke(*args: object):
    """Run the CLI. The HDF5 fixtures here hold k-space synthesised from noisy *magnitude* images (the
    noise is in the magnitude, not in the coils), so fit/apply read them as magnitude (``--combine
    rss``); the default complex path for k-space is tested in test_kspace_files.py."""
    words = [str(a) for a in args]
    if words and words[0] in ("fit", "apply") and "--combine" not in words and "--help" not in words:
        words += ["--combine", "rss"]
    return runner.invoke(app, words)


def summary(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def temp_files(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob(f"{TEMP_PREFIX}*")]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Noisy training files of different sizes and formats, with clean references."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    train, ref = root / "train", root / "ref"
    train.mkdir()
    ref.mkdir()
    clean_a = known_volume(2, 32, 32, seed=1)
    noisy_a = clean_a + NOISE * rng.standard_normal(clean_a.shape).astype(np.float32)
    write_fastmri(train / "a.h5", np.abs(noisy_a), coils=4)
    write_fastmri(ref / "a.h5", clean_a, with_kspace=False, reconstruction={"reconstruction_rss": clean_a})
    clean_b = known_volume(1, 40, 36, seed=2)[0]
    np.save(train / "b.npy", clean_b + NOISE * rng.standard_normal(clean_b.shape))
    np.save(ref / "b.npy", clean_b)
    return {"root": root, "train": train, "ref": ref, "a": train / "a.h5", "b": train / "b.npy"}


@pytest.fixture(scope="module")
def model(data: dict[str, Path]) -> Path:
    path = data["root"] / "model.c2s"
    result = invoke("fit", data["a"], data["b"], "-o", path, "--sigma", NOISE, *TINY)
    fitted = summary(result)
    assert fitted["model"] == str(path)
    assert [i["shape"] for i in fitted["inputs"]] == [[2, 32, 32], [1, 40, 36]]  # mixed sizes in one fit
    assert fitted["sigma"] == [NOISE, NOISE]
    assert fitted["n_iter"] == 20
    assert fitted["model_sha256"] == file_sha256(path)
    return path


# ----------------------------------------------------------------------------- round trips
def test_fit_apply_evaluate(data: dict[str, Path], model: Path, tmp_path: Path) -> None:
    out = tmp_path / "denoised"
    applied = summary(invoke("apply", model, data["a"], data["b"], "-o", out))
    assert [Path(o["output"]).name for o in applied["outputs"]] == ["a.h5", "b.npy"]
    assert applied["model_sha256"] == file_sha256(model)
    assert applied["package_version"] == __version__
    assert sorted(p.name for p in out.iterdir()) == ["a.h5", "b.npy"]
    assert np.load(out / "b.npy").shape == (40, 36)
    with h5py.File(out / "a.h5", "r") as handle:
        assert handle["reconstruction"].shape == (2, 32, 32)
        assert handle["ismrmrd_header"][()] == HEADER
        assert handle.attrs["acquisition"] == "CORPD_FBK"
        assert handle.attrs["c2s_model_sha256"] == file_sha256(model)
        assert handle.attrs["c2s_sigma"] == pytest.approx(NOISE)
        assert handle.attrs["c2s_refinement"] == 0.0
        assert handle.attrs["c2s_package_version"] == __version__

    scored = invoke("evaluate", out / "a.h5", out / "b.npy", "--reference", data["ref"])
    result = summary(scored)
    assert [Path(r["file"]).name for r in result["results"]] == ["a.h5", "b.npy"]
    assert [Path(r["reference"][0]).name for r in result["results"]] == ["a.h5", "b.npy"]
    for entry in result["results"]:
        assert np.isfinite(entry["psnr"]) and 0.0 < entry["ssim"] <= 1.0
    assert "PSNR/dB" in scored.stderr and "mean" in scored.stderr  # the table goes to stderr


def test_round_trip_in_a_real_subprocess(data: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def run(*args: object) -> dict:
        proc = subprocess.run(
            [sys.executable, "-m", "c2s_denoise", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    model_path = tmp_path / "models" / "m.c2s"  # the folder is created
    run("fit", data["b"], "-o", model_path, *TINY)
    run("apply", model_path, data["b"], "-o", tmp_path / "out")
    scored = run("evaluate", tmp_path / "out" / "b.npy", "-r", data["ref"] / "b.npy")
    assert np.isfinite(scored["mean_psnr"])
    proc = subprocess.run(
        [sys.executable, "-m", "c2s_denoise", "apply", model_path, data["b"], "-o", tmp_path / "out"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {tmp_path / 'out' / 'b.npy'}: output exists; pass --overwrite to replace it"
    assert proc.stdout == ""


def test_apply_in_parallel_and_overwrite(data: dict[str, Path], model: Path, tmp_path: Path) -> None:
    out = tmp_path / "par"
    applied = summary(invoke("apply", model, data["a"], data["b"], "-o", out, "--n-jobs", 2))
    assert [Path(o["input"]).name for o in applied["outputs"]] == ["a.h5", "b.npy"]
    first = np.load(out / "b.npy")
    again = summary(invoke("apply", model, data["b"], "-o", out, "--overwrite"))
    assert again["n_files"] == 1
    np.testing.assert_allclose(np.load(out / "b.npy"), first, rtol=1e-5, atol=1e-6)
    assert temp_files(out) == []


def test_evaluate_reference_average(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    clean = known_volume(1, 24, 24, seed=4)
    refs, den = tmp_path / "refs", tmp_path / "den"
    refs.mkdir()
    den.mkdir()
    repetitions = [clean + 0.05 * rng.standard_normal(clean.shape) for _ in range(3)]
    for index, rep in enumerate(repetitions, start=1):
        np.save(refs / f"2022061003_T1{index:02d}.npy", rep)
    np.save(refs / "2022061003_T201.npy", clean * 3)  # another contrast: not averaged in
    np.save(den / "2022061003_T101.npy", clean)
    result = summary(invoke("evaluate", den / "2022061003_T101.npy", "-r", refs, "--reference-average"))
    entry = result["results"][0]
    assert len(entry["reference"]) == 3
    assert entry["psnr"] == pytest.approx(psnr(clean, np.mean(repetitions, axis=0)))


def test_estimate_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    image = known_volume(1, 64, 64, seed=5)[0] + 0.1 * rng.standard_normal((64, 64))
    np.save(tmp_path / "n.npy", image)
    result = invoke("estimate-noise", tmp_path / "n.npy")
    entry = summary(result)["results"][0]
    assert entry["shape"] == [1, 64, 64]
    assert 0.07 < entry["sigma_wavelet"] < 0.13
    assert "sigma_rayleigh" in entry
    assert "sigma_wavelet" in result.stderr


def test_h5_dataset_option(tmp_path: Path) -> None:
    volume = known_volume(1, 32, 32) + 0.1 * np.random.default_rng(6).standard_normal((1, 32, 32)).astype(np.float32)
    path = write_fastmri(
        tmp_path / "both.h5", np.abs(volume), coils=2, reconstruction={"reconstruction_rss": 2 * np.abs(volume)}
    )
    default = summary(invoke("estimate-noise", path))["results"][0]["sigma_wavelet"]
    from_kspace = summary(invoke("estimate-noise", path, "--h5-dataset", "kspace"))["results"][0]["sigma_wavelet"]
    assert default == pytest.approx(2 * from_kspace, rel=0.05)
    result = invoke("estimate-noise", path, "--h5-dataset", "image")
    assert_known_error(result, path, "HDF5 file has no dataset 'image'")


def test_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = invoke("demo", "--out", out, "--max-iter", 3, "--size", 32)
    report = summary(result)
    assert set(report["files"]) == {"before_after.png", "noisy.npy", "clean.npy", "model.c2s"}
    png = (out / "before_after.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert report["settings"]["sigma"] == 0.08
    assert np.isfinite(report["psnr_noisy"]) and np.isfinite(report["psnr_denoised"])
    assert "PSNR noisy" in result.stderr
    np.testing.assert_allclose(np.load(out / "noisy.npy") - np.load(out / "clean.npy"), 0, atol=0.6)
    again = invoke("demo", "--out", out, "--max-iter", 3, "--size", 32)
    assert again.exit_code == 1
    assert "output exists; pass --overwrite" in again.stderr


# ----------------------------------------------------------------------------- version, help, usage
def test_version_and_help() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.stdout
    for command in ([], ["fit"], ["apply"], ["evaluate"], ["estimate-noise"], ["demo"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0, command
        assert "Usage" in result.stdout


def _python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120)


def test_importing_the_cli_does_not_import_torch() -> None:
    code = (
        "import sys, c2s_denoise, c2s_denoise.cli.commands, c2s_denoise.workflows\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'sklearn' not in sys.modules, 'sklearn was imported'\n"
        "from c2s_denoise import C2SDenoiser, estimate_sigma\n"  # the lazy names still work
        "assert 'torch' in sys.modules and C2SDenoiser.__name__ == 'C2SDenoiser' and callable(estimate_sigma)\n"
    )
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["fit", "--help"], ["apply", "--help"]])
def test_help_and_version_do_not_import_torch(args: list[str]) -> None:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['c2s-denoise', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('c2s_denoise', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout or __version__ in proc.stdout
    timed = _python("-X", "importtime", "-m", "c2s_denoise", *args)  # the real ``python -m c2s_denoise``
    assert timed.returncode == 0, timed.stderr
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in timed.stderr.splitlines() if "|" in line}
    assert "c2s_denoise" in imported and "torch" not in imported


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "x.npy"],  # missing -o
        ["fit", "x.npy", "-o", "m.c2s", "--sigma", "loud"],
        ["fit", "x.npy", "-o", "m.c2s", "--crop", "12"],
        ["apply", "m.c2s", "x.npy", "-o", "out", "--n-jobs", "0"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output


# ----------------------------------------------------------------------------- bad input
@pytest.fixture()
def bad(tmp_path: Path) -> dict[str, Path]:
    volume = known_volume(1, 16, 16)
    empty = tmp_path / "nodata.h5"
    with h5py.File(empty, "w") as handle:
        handle.create_dataset("ismrmrd_header", data=HEADER)
    not_ours = tmp_path / "other.joblib"
    joblib.dump({"weights": [1, 2, 3]}, not_ours)
    text_model = tmp_path / "text.joblib"
    text_model.write_text("not a pickle\n")
    good = tmp_path / "good.npy"
    np.save(good, volume[0])
    return {
        "missing": tmp_path / "missing.h5",
        "truncated": truncate(write_fastmri(tmp_path / "torn.h5", known_volume(4, 64, 64)), 0.3),
        "nodata": empty,
        "rank2": write_fastmri(tmp_path / "rank2.h5", volume, kspace=np.ones((16, 16), np.complex64)),
        "rank5": write_fastmri(tmp_path / "rank5.h5", volume, kspace=np.ones((1, 1, 2, 16, 16), np.complex64)),
        "not_ours": not_ours,
        "text_model": text_model,
        "good": good,
    }


FIT_CASES = {
    "missing": "file not found",
    "truncated": "not a readable HDF5 file",
    "nodata": "neither 'kspace' nor a reconstruction",
    "rank2": "kspace has rank 2",
    "rank5": "kspace has rank 5",
}


def assert_known_error(result, path: Path, problem: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.output
    assert message.startswith("error: ")
    assert str(path) in message and problem in message, message
    assert result.stdout == ""


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_fit_bad_input(case: str, bad: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "models"
    out.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke("fit", bad["good"], bad[case], "-o", out / "m.c2s", *TINY)
    assert_known_error(result, bad[case], FIT_CASES[case])
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_apply_bad_input_writes_nothing(case: str, bad: dict[str, Path], model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("apply", model, bad["good"], bad[case], "-o", out)
    assert_known_error(result, bad[case], FIT_CASES[case])
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("not_ours", "is a pickled model; pickles can run code when loaded: pass --trust-pickle"),
        ("text_model", "not a c2s-denoise model file"),
        ("missing", "model file not found"),
    ],
)
def test_apply_with_a_model_that_is_not_ours(case: str, problem: str, bad: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("apply", bad[case], bad["good"], "-o", out)
    assert_known_error(result, bad[case], problem)
    assert not out.exists()


def test_apply_refuses_existing_output_before_any_work(data: dict[str, Path], model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.npy").write_bytes(b"precious")
    result = invoke("apply", model, data["a"], data["b"], "-o", out)
    assert_known_error(result, out / "b.npy", "output exists; pass --overwrite to replace it")
    assert sorted(p.name for p in out.iterdir()) == ["b.npy"]  # a.h5 was not written either
    assert (out / "b.npy").read_bytes() == b"precious"


def test_output_is_never_an_input(data: dict[str, Path], model: Path) -> None:
    before = data["b"].read_bytes()
    result = invoke("apply", model, data["b"], "-o", data["train"], "--overwrite")
    assert_known_error(result, data["b"], "output would overwrite an input file")
    result = invoke("fit", data["b"], "-o", data["b"], "--overwrite", *TINY)
    assert_known_error(result, data["b"], "output would overwrite an input file")
    assert data["b"].read_bytes() == before
    assert temp_files(data["train"], model.parent) == []


def test_fit_refuses_existing_model(data: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "m.c2s"
    target.write_bytes(b"old model")
    result = invoke("fit", data["b"], "-o", target, *TINY)
    assert_known_error(result, target, "output exists; pass --overwrite to replace it")
    assert target.read_bytes() == b"old model"
    assert temp_files(tmp_path) == []
    result = invoke("fit", data["b"], "-o", target / "m.c2s", *TINY)
    assert_known_error(result, target, "output folder is an existing file")


def test_apply_duplicate_names_are_refused(data: dict[str, Path], model: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    copy = other / "b.npy"
    copy.write_bytes(data["b"].read_bytes())
    result = invoke("apply", model, data["b"], copy, "-o", tmp_path / "out")
    assert_known_error(result, tmp_path / "out" / "b.npy", "would both be written here")


def test_sigint_during_apply_leaves_only_whole_files(data: dict[str, Path], model: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(7)
    for index in range(12):
        np.save(inputs / f"s{index:02d}.npy", rng.random((6, 96, 96)).astype(np.float32))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "c2s_denoise", "apply", str(model), *map(str, sorted(inputs.iterdir())), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and any(not p.name.startswith(TEMP_PREFIX) for p in out.iterdir()):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), err
    assert temp_files(out) == []
    for path in out.iterdir():
        assert np.load(path).shape == (6, 96, 96)  # every output present is complete


@pytest.mark.parametrize(
    ("text", "seconds"), [("300", 300.0), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0), (" 2 min", 120.0)]
)
def test_max_time_reads_durations(text, seconds):
    from c2s_denoise.cli.options import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "soon", "5 days", ""])
def test_max_time_rejects_what_is_not_a_positive_duration(text, tmp_path):
    result = runner.invoke(app, ["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m.c2s"), "--max-time", text])
    assert result.exit_code == 2
    assert "positive duration" in result.output


def test_fit_takes_init_and_names_a_bad_value(data: dict[str, Path], tmp_path: Path) -> None:
    from c2s_denoise import C2SDenoiser

    result = invoke("fit", data["b"], "-o", tmp_path / "bad.c2s", *TINY, "--init", "nonsense")
    assert result.exit_code == 1 and "'init' parameter" in result.output and "nonsense" in result.output
    result = invoke("fit", data["b"], "-o", tmp_path / "m.c2s", *TINY, "--init", "random")
    assert result.exit_code == 0, result.output
    assert C2SDenoiser.load(tmp_path / "m.c2s").init == "random"
