"""Multi-contrast command line: ``--contrast NAME=PATH``, ``--group-by-study``, ``--context-slices``.

Models are tiny (width 4, 5 steps per contrast, 8x8 patches of 16x16 images) so that the
whole file runs in well under a minute on two CPU cores.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from _mri_files import known_volume, write_fastmri
from test_cli import invoke, summary

from c2s_denoise import C2SDenoiser
from c2s_denoise.io import TEMP_PREFIX
from c2s_denoise.workflows import ContrastError, file_sha256, group_m4raw_files

TINY = ["--max-iter", "5", "--width", "4", "--patch-size", "8", "--batch-size", "2", "--seed", "0"]
SIGMAS = {"T1": 0.05, "T2": 0.08}
SHAPE = (3, 16, 16)


def contrast_options(files: dict[str, list[Path]], order: tuple[str, ...] = ("T1", "T2")) -> list[str]:
    """``--contrast NAME=PATH`` for every subject, subject by subject, contrasts in ``order``."""
    options = []
    for index in range(len(files[order[0]])):
        for name in order:
            options += ["--contrast", f"{name}={files[name][index]}"]
    return options


def assert_contrast_error(result, *fragments: str) -> None:
    """Exit status 2 with one ``error:`` line naming the problem (no usage box, no traceback)."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, message
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in message, message
    assert result.stdout == ""


def noisy_pair(seed: int, shape: tuple[int, int, int] = SHAPE) -> dict[str, np.ndarray]:
    """Co-registered "T1" and "T2" volumes (the T2 has the inverted contrast), with noise."""
    rng = np.random.default_rng(seed)
    clean = known_volume(*shape, seed=seed)
    t1 = clean + SIGMAS["T1"] * rng.standard_normal(shape)
    t2 = (1.2 - clean) + SIGMAS["T2"] * rng.standard_normal(shape)
    return {"T1": t1.astype(np.float32), "T2": t2.astype(np.float32)}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Two subjects x two contrasts of small .npy volumes."""
    root = tmp_path_factory.mktemp("contrasts")
    out: dict[str, list[Path]] = {"T1": [], "T2": []}
    for subject in (1, 2):
        for name, volume in noisy_pair(subject).items():
            path = root / f"sub{subject}_{name.lower()}.npy"
            np.save(path, volume)
            out[name].append(path)
    return out


@pytest.fixture(scope="module")
def model(files: dict[str, list[Path]]) -> Path:
    path = files["T1"][0].parent / "models" / "two.c2s"
    sigma = [f"--sigma={name}={value}" for name, value in SIGMAS.items()]
    fitted = summary(invoke("fit", *contrast_options(files), "-o", path, *sigma, *TINY))
    assert fitted["contrasts"] == ["T1", "T2"] and fitted["target_contrasts"] == ["T1", "T2"]
    assert fitted["n_subjects"] == 2
    assert [(Path(i["file"]).name, i["contrast"], i["subject"]) for i in fitted["inputs"]] == [
        ("sub1_t1.npy", "T1", 0),
        ("sub1_t2.npy", "T2", 0),
        ("sub2_t1.npy", "T1", 1),
        ("sub2_t2.npy", "T2", 1),
    ]
    assert all(i["shape"] == list(SHAPE) for i in fitted["inputs"])
    assert fitted["sigma"] == [0.05, 0.08, 0.05, 0.08] == [i["sigma"] for i in fitted["inputs"]]
    assert fitted["n_slices"] == 2 * SHAPE[0]  # each subject's slices counted once
    assert fitted["params"]["sigma"] == SIGMAS
    assert fitted["model_sha256"] == file_sha256(path)
    estimator = C2SDenoiser.load(path)
    assert estimator.contrasts_ == ("T1", "T2") and set(estimator.networks_) == {"T1", "T2"}
    return path


def assert_denoised(source: Path, output: Path) -> None:
    noisy, denoised = np.load(source), np.load(output)
    assert denoised.shape == noisy.shape and denoised.dtype == noisy.dtype
    assert np.all(np.isfinite(denoised))
    assert np.abs(denoised - noisy).max() > 1e-3


# ----------------------------------------------------------------------------- round trips
def test_two_contrast_round_trip(files: dict[str, list[Path]], model: Path, tmp_path: Path) -> None:
    out = tmp_path / "denoised"
    # the options' order differs from the fit's: names matter, not order
    applied = summary(invoke("apply", model, *contrast_options(files, ("T2", "T1")), "-o", out))
    assert applied["contrasts"] == ["T1", "T2"] and applied["n_subjects"] == 2
    assert applied["n_files"] == 4 and applied["model_sha256"] == file_sha256(model)
    assert [(Path(o["input"]).name, Path(o["output"]).name, o["contrast"]) for o in applied["outputs"]] == [
        ("sub1_t1.npy", "sub1_t1.npy", "T1"),
        ("sub1_t2.npy", "sub1_t2.npy", "T2"),
        ("sub2_t1.npy", "sub2_t1.npy", "T1"),
        ("sub2_t2.npy", "sub2_t2.npy", "T2"),
    ]
    assert [o["sigma"] for o in applied["outputs"]] == [0.05, 0.08, 0.05, 0.08]
    for entry in applied["outputs"]:
        assert entry["shape"] == list(SHAPE) and Path(entry["output"]).parent == out
        assert_denoised(Path(entry["input"]), Path(entry["output"]))
    assert sorted(p.name for p in out.iterdir()) == ["sub1_t1.npy", "sub1_t2.npy", "sub2_t1.npy", "sub2_t2.npy"]


def test_parallel_apply_matches_sequential(files: dict[str, list[Path]], model: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    summary(invoke("apply", model, *contrast_options(files), "-o", one))
    applied = summary(invoke("apply", model, *contrast_options(files), "-o", two, "--n-jobs", 2))
    assert [Path(o["output"]).name for o in applied["outputs"]] == [
        "sub1_t1.npy",
        "sub1_t2.npy",
        "sub2_t1.npy",
        "sub2_t2.npy",
    ]
    for path in one.iterdir():
        np.testing.assert_allclose(np.load(two / path.name), np.load(path), rtol=1e-5, atol=1e-6)
    assert [p for p in two.iterdir() if p.name.startswith(TEMP_PREFIX)] == []


@pytest.mark.parametrize("with_contrasts", [False, True], ids=["single", "two-contrasts"])
def test_context_slices_nifti_round_trip(with_contrasts: bool, tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel", reason="nibabel (the 'nifti' extra) is not installed")
    affine = np.array([[0.9, 0, 0, -7.0], [0, 0.9, 0, -7.0], [0, 0, 3.0, 12.0], [0, 0, 0, 1]])
    paths = {}
    for name, volume in noisy_pair(3, (4, 16, 16)).items():
        paths[name] = tmp_path / f"scan_{name}.nii.gz"
        nib.save(nib.Nifti1Image(np.moveaxis(volume, 0, -1), affine), paths[name])  # stored (16, 16, 4)
    inputs = [f"--contrast={name}={path}" for name, path in paths.items()] if with_contrasts else [paths["T1"]]
    model_path = tmp_path / "ctx.c2s"
    fitted = summary(invoke("fit", *inputs, "-o", model_path, "--context-slices", 1, "--sigma", 0.06, *TINY))
    assert fitted["params"]["context_slices"] == 1
    assert C2SDenoiser.load(model_path).context_slices == 1
    out = tmp_path / "out"
    applied = summary(invoke("apply", model_path, *inputs, "-o", out))  # apply uses the model's context_slices
    assert applied["n_files"] == (2 if with_contrasts else 1)
    for entry in applied["outputs"]:
        source, written = nib.load(entry["input"]), nib.load(entry["output"])
        assert written.shape == source.shape == (16, 16, 4)
        np.testing.assert_allclose(written.affine, affine)
        data = np.asarray(written.dataobj)
        assert np.all(np.isfinite(data)) and np.abs(data - np.asarray(source.dataobj)).max() > 1e-3
        if with_contrasts:
            assert Path(entry["output"]).name == f"scan_{entry['contrast']}.nii.gz"


def test_context_slices_needs_enough_slices(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", noisy_pair(4, (1, 16, 16))["T1"])
    result = invoke("fit", tmp_path / "flat.npy", "-o", tmp_path / "m.c2s", "--context-slices", 2, *TINY)
    assert result.exit_code == 1, result.output
    assert "flat.npy: has 1 slice(s) but --context-slices 2 needs volumes of at least 4 slices" in result.stderr
    assert not (tmp_path / "m.c2s").exists()


def test_group_by_study_m4raw_round_trip(tmp_path: Path) -> None:
    data = tmp_path / "m4raw"
    data.mkdir()
    for seed, study in enumerate(("2022061003", "2022061004")):
        for name, volume in noisy_pair(10 + seed, (2, 16, 16)).items():
            write_fastmri(data / f"{study}_{name}01.h5", np.abs(volume), coils=2)
    inputs = sorted(data.iterdir())
    model_path = tmp_path / "m4raw.c2s"
    fitted = summary(
        invoke(
            "fit",
            *inputs,
            "--group-by-study",
            "--contrasts",
            "T2,T1",
            "--target-contrasts",
            "T1",
            "-o",
            model_path,
            "--sigma",
            "auto",
            *TINY,
        )
    )
    assert fitted["contrasts"] == ["T2", "T1"] and fitted["target_contrasts"] == ["T1"]
    assert [Path(i["file"]).name for i in fitted["inputs"]] == [
        "2022061003_T201.h5",
        "2022061003_T101.h5",
        "2022061004_T201.h5",
        "2022061004_T101.h5",
    ]
    out = tmp_path / "out"
    applied = summary(invoke("apply", model_path, *inputs, "--group-by-study", "-o", out))  # sorted: T1, T2
    assert applied["contrasts"] == ["T2", "T1"] and applied["target_contrasts"] == ["T1"]
    # only the target contrast is written; T2 is a conditioning input
    assert [Path(o["output"]).name for o in applied["outputs"]] == ["2022061003_T101.h5", "2022061004_T101.h5"]
    assert sorted(p.name for p in out.iterdir()) == ["2022061003_T101.h5", "2022061004_T101.h5"]
    for entry in applied["outputs"]:
        with h5py.File(entry["output"], "r") as handle:
            denoised = handle["reconstruction"][()]
            assert handle.attrs["c2s_contrast"] == "T1"
            assert handle.attrs["c2s_source_file"] == Path(entry["input"]).name
            assert handle.attrs["c2s_model_sha256"] == file_sha256(model_path)
        assert denoised.shape == (2, 16, 16) and np.all(np.isfinite(denoised))


def test_group_m4raw_files(tmp_path: Path) -> None:
    names = ["2_T101.h5", "1_FLAIR02.h5", "1_T102.h5", "2_FLAIR01.h5", "1_T101.h5", "1_FLAIR01.h5"]
    grouped = group_m4raw_files([tmp_path / n for n in names])
    assert {k: [p.name for p in v] for k, v in grouped.items()} == {
        "FLAIR": ["1_FLAIR01.h5", "1_FLAIR02.h5", "2_FLAIR01.h5"],
        "T1": ["1_T101.h5", "1_T102.h5", "2_T101.h5"],
    }
    assert list(group_m4raw_files([tmp_path / n for n in names], ["T1", "FLAIR"])) == ["T1", "FLAIR"]
    with pytest.raises(ContrastError, match="contrast 'T2' is missing for study 1 repetition 01"):
        group_m4raw_files([tmp_path / n for n in names], ["T1", "T2", "FLAIR"])
    with pytest.raises(ContrastError, match="contrast 'T1' of study 2 repetition 01 is also given"):
        group_m4raw_files([tmp_path / "2_T101.h5", tmp_path / "x" / "2_T101.npy"])


# ----------------------------------------------------------------------------- contrast errors: exit 2
def test_unequal_numbers_of_files(files: dict[str, list[Path]], tmp_path: Path) -> None:
    options = [*contrast_options(files), "--contrast", f"T1={files['T1'][0]}"]  # a third T1
    result = invoke("fit", *options, "-o", tmp_path / "m.c2s", *TINY)
    assert_contrast_error(result, "contrast 'T2' has 2 file(s) but contrast 'T1' has 3")
    assert list(tmp_path.iterdir()) == []


def test_mismatched_shapes_at_fit(files: dict[str, list[Path]], tmp_path: Path) -> None:
    odd = tmp_path / "odd_t2.npy"
    np.save(odd, np.ones((3, 16, 12), np.float32))
    result = invoke("fit", "--contrast", f"T1={files['T1'][0]}", "--contrast", f"T2={odd}", "-o", tmp_path / "m.c2s")
    assert_contrast_error(result, f"{odd}: contrast 'T2' has shape (3, 16, 12)", "contrast 'T1'")
    assert not (tmp_path / "m.c2s").exists()


def test_mismatched_shapes_at_apply_write_nothing(files: dict[str, list[Path]], model: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd_t2.npy"
    np.save(odd, np.ones((2, 16, 16), np.float32))
    bad = {"T1": files["T1"], "T2": [files["T2"][0], odd]}  # the second subject is wrong, the first is fine
    out = tmp_path / "out"
    result = invoke("apply", model, *contrast_options(bad), "-o", out)
    assert_contrast_error(result, f"{odd}: contrast 'T2' has shape (2, 16, 16)")
    assert not out.exists()


def test_missing_contrast_at_apply(files: dict[str, list[Path]], model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("apply", model, "--contrast", f"T1={files['T1'][0]}", "-o", out)
    assert_contrast_error(result, "contrast 'T2' is missing", "(T1, T2)")
    assert not out.exists()


def test_unknown_contrast_at_apply(files: dict[str, list[Path]], model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = [*contrast_options({k: v[:1] for k, v in files.items()}), "--contrast", f"FLAIR={files['T2'][0]}"]
    result = invoke("apply", model, *options, "-o", out)
    assert_contrast_error(result, "contrast 'FLAIR' is not one of the model's contrasts (T1, T2)")
    assert not out.exists()


def test_inputs_that_do_not_fit_the_model(files: dict[str, list[Path]], model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("apply", model, files["T1"][0], "-o", out)  # positional files for a multi-contrast model
    assert_contrast_error(result, "fitted on contrasts T1, T2", "--contrast NAME=PATH")
    single = tmp_path / "single.c2s"
    summary(invoke("fit", files["T1"][0], "-o", single, *TINY))
    result = invoke("apply", single, "--contrast", f"T1={files['T1'][0]}", "-o", out)
    assert_contrast_error(result, "fitted on single-contrast files")
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--target-contrasts", "T1,FLAIR"], "target contrast 'FLAIR' is not one of the contrasts (T1, T2)"),
        (["--sigma", "T1=0.05"], "sigma has no entry for contrast 'T2'"),
        (["--sigma", "T1=0.05", "--sigma", "PD=0.1"], "sigma has an entry for contrast 'PD'"),
    ],
)
def test_contrast_options_that_name_no_input(extra: list[str], problem: str, files, tmp_path: Path) -> None:
    result = invoke("fit", *contrast_options(files), "-o", tmp_path / "m.c2s", *extra, *TINY)
    assert_contrast_error(result, problem)
    assert list(tmp_path.iterdir()) == []


def test_target_contrasts_need_contrasts(files: dict[str, list[Path]], tmp_path: Path) -> None:
    result = invoke("fit", files["T1"][0], "-o", tmp_path / "m.c2s", "--target-contrasts", "T1", *TINY)
    assert_contrast_error(result, "--target-contrasts needs --contrast NAME=PATH")


def test_group_by_study_errors(tmp_path: Path) -> None:
    for name in ("7_T101.npy", "7_T201.npy", "8_T101.npy"):
        np.save(tmp_path / name, np.ones((2, 16, 16), np.float32))
    inputs = sorted(tmp_path.glob("*.npy"))
    result = invoke("fit", *inputs, "--group-by-study", "-o", tmp_path / "m.c2s", *TINY)
    assert_contrast_error(result, "contrast 'T2' is missing for study 8 repetition 01")
    result = invoke("fit", *inputs[:2], "--group-by-study", "--contrasts", "T1", "-o", tmp_path / "m.c2s")
    assert_contrast_error(result, "7_T201.npy: contrast 'T2' is not one of the contrasts asked for (T1)")
    np.save(tmp_path / "scan.npy", np.ones((2, 16, 16), np.float32))
    result = invoke("fit", tmp_path / "scan.npy", "--group-by-study", "-o", tmp_path / "m.c2s")
    assert_contrast_error(result, "scan.npy: grouping by study needs M4Raw-style names")
    assert not (tmp_path / "m.c2s").exists()


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["fit", "-o", "m.c2s"], "give the files as arguments, or with --contrast"),
        (["fit", "--contrast", "T1", "-o", "m.c2s"], "expected NAME=PATH"),
        (["fit", "--contrast", "=x.npy", "-o", "m.c2s"], "expected NAME=PATH"),
        (["fit", "x.npy", "--contrast", "T1=y.npy", "-o", "m.c2s"], "either as arguments or with --contrast"),
        (["fit", "x.npy", "--contrasts", "T1,T2", "-o", "m.c2s"], "only with --group-by-study"),
        (["fit", "--contrast", "T1=x.npy", "--sigma", "0.1", "--sigma", "T1=0.1", "-o", "m.c2s"], "not both"),
        (["fit", "--contrast", "T1=x.npy", "--sigma", "T1=loud", "-o", "m.c2s"], "got 'loud'"),
        (["fit", "x.npy", "--context-slices", "-1", "-o", "m.c2s"], "--context-slices"),
        (["apply", "m.c2s", "-o", "out"], "give the files as arguments, or with --contrast"),
        (["apply", "m.c2s", "--group-by-study", "-o", "out"], "--group-by-study needs the files as arguments"),
    ],
)
def test_usage_errors_exit_2(args: list[str], problem: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert problem in " ".join(re.sub("[\u2500-\u257f]", " ", result.stderr).split())  # without the box
