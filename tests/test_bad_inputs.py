"""Bad inputs across the API, the command line and the file formats (issue 10, "no lost work").

Every case checks the message (a regex naming the problem), the exit status (command line),
that no input changed (SHA-256 of every input file before and after, see ``unchanged_inputs``)
and that no partial or temporary file is left where outputs go. One tiny model is fitted
once for the module and reused; the fits that cases do run stop after two steps.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from _mri_files import HEADER, truncate, write_fastmri
from typer.testing import CliRunner

from c2s_denoise import C2SDenoiser
from c2s_denoise.cli.commands import app
from c2s_denoise.io import TEMP_PREFIX, C2SInputError, load_image
from c2s_denoise.workflows import fit_files, load_model
from c2s_denoise.workflows.recovery import ModelNotWrittenError

nib = pytest.importorskip("nibabel")

TINY = ["--max-iter", "2", "--width", "8", "--patch-size", "16", "--batch-size", "2", "--seed", "0", "--device", "cpu"]
TINY_PARAMS = {"max_iter": 2, "width": 8, "patch_size": 16, "batch_size": 2, "random_state": 0, "device": "cpu"}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# Root reads and writes files whatever their permission bits, so chmod cannot make a file unreadable for it.
ROOT_REASON = "running as root: permission bits do not stop root from reading or writing"

try:  # Click < 8.2 mixes stderr into stdout unless told not to
    runner = CliRunner(mix_stderr=False)
except TypeError:
    runner = CliRunner()


# ----------------------------------------------------------------------------- files
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _image(seed: int = 0, shape: tuple[int, ...] = (2, 16, 16)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.5 + 0.05 * rng.standard_normal(shape)).astype(np.float32)


def _write_inputs(folder: Path) -> dict[str, Path]:
    """Good and bad input files of every format, all in ``folder``."""
    f: dict[str, Path] = {}

    def npy(name: str, array: np.ndarray, **kwargs: object) -> None:
        f[name] = folder / f"{name}.npy"
        np.save(f[name], array, **kwargs)

    npy("good", _image(0))
    npy("good2", _image(1))
    npy("nan", np.where(np.eye(16, dtype=bool), np.nan, _image(2)[0]))
    npy("inf", np.where(np.eye(16, dtype=bool), np.inf, _image(3)[0]))
    npy("complex", _image(4).astype(np.complex64) * 1j)
    npy("object", np.array([_image(5)[0], "x"], dtype=object), allow_pickle=True)
    npy("strings", np.full((16, 16), "abc"))
    npy("empty", np.zeros((0, 16, 16), np.float32))
    npy("onedim", np.ones(16, np.float32))
    npy("fourd", np.ones((2, 2, 16, 16), np.float32))
    npy("tiny", np.ones((1, 1), np.float32))
    npy("big", _image(17, (1, 24, 24)))
    npy("truncated_npy", _image(6, (4, 32, 32)))
    truncate(f["truncated_npy"], 0.6)
    f["noarray_npz"] = folder / "noarray.npz"
    np.savez(f["noarray_npz"], a=_image(7), b=_image(8))

    f["good_h5"] = write_fastmri(folder / "good_h5.h5", _image(9), coils=2)
    f["corrupt_h5"] = folder / "corrupt.h5"
    f["corrupt_h5"].write_bytes(os.urandom(2048))
    f["truncated_h5"] = truncate(write_fastmri(folder / "truncated.h5", _image(10, (4, 32, 32)), coils=4), 0.3)
    f["nokeys_h5"] = folder / "nokeys.h5"
    with h5py.File(f["nokeys_h5"], "w") as handle:
        handle.create_dataset("ismrmrd_header", data=HEADER)
    raw = folder / "raw.bin"
    _image(11).tofile(raw)
    f["raw"] = raw
    f["external_h5"] = folder / "external.h5"
    with h5py.File(f["external_h5"], "w") as handle:
        handle.create_dataset(
            "reconstruction_rss", shape=(2, 16, 16), dtype="f4", external=[(str(raw), 0, h5py.h5f.UNLIMITED)]
        )
    f["source_h5"] = folder / "source.h5"
    with h5py.File(f["source_h5"], "w") as handle:
        handle.create_dataset("reconstruction_rss", data=_image(12))
    layout = h5py.VirtualLayout(shape=(2, 16, 16), dtype="f4")
    layout[:] = h5py.VirtualSource(str(f["source_h5"]), "reconstruction_rss", shape=(2, 16, 16))
    f["virtual_h5"] = folder / "virtual.h5"
    with h5py.File(f["virtual_h5"], "w") as handle:
        handle.create_virtual_dataset("reconstruction_rss", layout)
    f["link_h5"] = folder / "link.h5"
    with h5py.File(f["link_h5"], "w") as handle:
        handle["reconstruction_rss"] = h5py.ExternalLink(str(f["source_h5"]), "reconstruction_rss")

    def nii(name: str, array: np.ndarray) -> None:
        f[name] = folder / f"{name}.nii"
        nib.save(nib.Nifti1Image(array, np.eye(4)), str(f[name]))

    nii("good_nii", np.moveaxis(_image(13), 0, -1))
    nii("complex_nii", np.moveaxis(_image(14), 0, -1).astype(np.complex64))
    nii("nan_nii", np.full((16, 16, 2), np.nan, np.float32))
    nib.save(nib.Nifti1Image(np.moveaxis(_image(15, (4, 32, 32)), 0, -1), np.eye(4)), str(folder / "trunc.nii.gz"))
    f["truncated_nii"] = truncate(folder / "trunc.nii.gz", 0.5)
    f["text"] = folder / "notes.txt"
    f["text"].write_text("not an image\n")
    f["fake_npy"] = folder / "fake.npy"
    f["fake_npy"].write_text("not an array\n")
    f["folder"] = folder / "a_folder.npy"
    f["folder"].mkdir()
    f["missing"] = folder / "missing.npy"
    f["long"] = folder / ("L" * 240 + ".npy")  # a legal name, longer than its temporary name may be
    np.save(f["long"], _image(16))
    return f


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad")


@pytest.fixture(scope="module")
def files(root: Path) -> dict[str, Path]:
    folder = root / "inputs"
    folder.mkdir()
    return _write_inputs(folder)


@pytest.fixture(scope="module")
def hashes(files: dict[str, Path]) -> dict[Path, str]:
    folder = files["good"].parent
    return {p: _sha256(p) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(autouse=True)
def unchanged_inputs(request: pytest.FixtureRequest):
    """After every case: every input file has its SHA-256 of before, and no file was added next to them."""
    if "files" not in request.fixturenames:
        yield
        return
    before = request.getfixturevalue("hashes")  # taken once, before the module's first case
    folder = request.getfixturevalue("files")["good"].parent
    yield
    now = {p: _sha256(p) for p in folder.rglob("*") if p.is_file()}
    assert now == before


@pytest.fixture(scope="module")
def model(files: dict[str, Path], root: Path) -> Path:
    path = root / "model.c2s"
    result = runner.invoke(app, ["fit", str(files["good"]), "-o", str(path), "--sigma", "0.05", *TINY])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def fitted(files: dict[str, Path]) -> C2SDenoiser:
    return C2SDenoiser(sigma=0.05, **TINY_PARAMS).fit([_image(0)])


def leftovers(folder: Path) -> list[str]:
    """Files in an output folder after a failed run: temporary files and partial outputs alike."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_error(result, code: int, pattern: str) -> None:
    """Exit status ``code``, no traceback; status 1: exactly one line ``error: ...`` matching ``pattern``."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    assert "Traceback" not in result.output
    assert result.stdout == ""
    message = result.stderr.strip()
    if code == 1:
        assert "\n" not in message and message.startswith("error: "), message
    assert re.search(pattern, " ".join(message.split())), message


# ----------------------------------------------------------------------------- the estimator
RAGGED = [[[0.1, 0.2], [0.3]], [[0.1, 0.2], [0.3, 0.4]]]

API_FIT_CASES = [
    ("nan", [np.full((1, 16, 16), np.nan)], r"contains NaN"),
    ("inf", [np.where(np.eye(16, dtype=bool), np.inf, 0.5)[None]], r"contains infinity"),
    ("complex mixed with real", [_image(0), _image(1).astype(np.complex64)], r"mixes complex and real"),
    ("1-D", np.ones(16), r"Expected 2D array"),
    ("4-D item", [np.ones((1, 1, 16, 16))], r"must be an image \(H, W\) or a volume"),
    ("5-D item", [np.ones((1, 1, 1, 16, 16))], r"must be an image \(H, W\) or a volume"),
    ("empty list", [], r"X is empty"),
    ("empty array", [np.zeros((0, 16, 16))], r"0 sample|empty|zero-size"),
    ("zero-width image", [np.zeros((2, 16, 0))], r"zero-size|0 feature|empty"),
    ("string", "image.npy", r"could not convert string|string"),
    ("list of strings", ["a", "b"], r"could not convert string|string"),
    ("ragged lists", RAGGED, r"inhomogeneous|ragged"),
    ("dict without contrasts", {"T1": [_image(0)]}, r"dict|contrast"),
    ("None", None, r"Expected 2D array|None"),
    ("object array", [np.array([_image(0)[0], "x"], dtype=object)], r"sequence|object|convert"),
]


@pytest.mark.parametrize(("case", "X", "pattern"), API_FIT_CASES, ids=[c[0] for c in API_FIT_CASES])
def test_estimator_fit_refuses(case: str, X: object, pattern: str) -> None:
    arrays = [x for x in X if isinstance(x, np.ndarray) and x.dtype.kind in "fc"] if isinstance(X, list) else []
    snapshot = [x.copy() for x in arrays]
    with pytest.raises((ValueError, TypeError), match=pattern):
        C2SDenoiser(sigma=0.05, **TINY_PARAMS).fit(X)
    for before, after in zip(snapshot, arrays, strict=True):  # the caller's arrays are not modified
        np.testing.assert_array_equal(before, after)


API_TRANSFORM_CASES = [
    ("nan", [np.full((1, 16, 16), np.nan)], r"contains NaN"),
    ("inf", [np.full((1, 16, 16), -np.inf)], r"contains infinity"),
    ("1-D", np.ones(16), r"Expected 2D array"),
    ("5-D item", [np.ones((1, 1, 1, 16, 16))], r"must be an image \(H, W\) or a volume"),
    ("empty", [], r"X is empty"),
    ("complex to a magnitude model", [_image(0).astype(np.complex64)], r"fitted on real images but X is complex"),
    ("string", "x", r"could not convert string|string"),
    ("dict to a single-contrast model", {"T1": [_image(0)]}, r"dict|contrast"),
]


@pytest.mark.parametrize(("case", "X", "pattern"), API_TRANSFORM_CASES, ids=[c[0] for c in API_TRANSFORM_CASES])
def test_estimator_transform_refuses(case: str, X: object, pattern: str, fitted: C2SDenoiser) -> None:
    with pytest.raises((ValueError, TypeError), match=pattern):
        fitted.transform(X)


# ----------------------------------------------------------------------------- the file formats
FORMAT_CASES = [
    ("object", r"not a readable npy file.*(pickle|[Oo]bject)"),
    ("strings", r"non-numeric"),
    ("complex", r"complex; a magnitude"),
    ("nan", r"NaN or infinite"),
    ("empty", r"empty or too small"),
    ("onedim", r"1 dimensions"),
    ("fourd", r"4 dimensions"),
    ("tiny", r"empty or too small"),
    ("truncated_npy", r"not a readable npy file"),
    ("fake_npy", r"not a readable npy file"),
    ("noarray_npz", r"name one with npz_key="),
    ("complex_nii", r"NIfTI data are complex"),
    ("nan_nii", r"NaN or infinite"),
    ("truncated_nii", r"not a readable NIfTI file"),
    ("corrupt_h5", r"not a readable HDF5 file"),
    ("truncated_h5", r"not a readable HDF5 file"),
    ("nokeys_h5", r"neither 'kspace' nor a reconstruction"),
    ("external_h5", r"dataset 'reconstruction_rss' uses external storage in '.*raw\.bin'"),
    ("virtual_h5", r"dataset 'reconstruction_rss' is a virtual dataset"),
    ("link_h5", r"'reconstruction_rss' is an external link to .*source\.h5"),
    ("text", r"unknown file type"),
    ("folder", r"not a regular file"),
    ("missing", r"file not found"),
]


@pytest.mark.parametrize(("case", "pattern"), FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_file_formats_refuse(case: str, pattern: str, files: dict[str, Path]) -> None:
    with pytest.raises(C2SInputError, match=pattern) as caught:
        load_image(files[case])
    assert caught.value.path == str(files[case])  # the message names the file


# ----------------------------------------------------------------------------- the command line: reading
READ_CASES = [
    ("missing", r"file not found"),
    ("folder", r"not a regular file"),
    ("corrupt_h5", r"not a readable HDF5 file"),
    ("nokeys_h5", r"neither 'kspace' nor a reconstruction"),
    ("text", r"unknown file type"),
    ("object", r"not a readable npy file"),
    ("nan", r"NaN or infinite"),
    ("external_h5", r"uses external storage"),
    ("truncated_nii", r"not a readable NIfTI file"),
]


@pytest.mark.parametrize(("case", "pattern"), READ_CASES, ids=[c[0] for c in READ_CASES])
def test_fit_refuses_bad_input(case: str, pattern: str, files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("fit", files["good"], files[case], "-o", out / "m.c2s", *TINY)
    assert_error(result, 1, re.escape(str(files[case])) + ".*" + pattern)
    assert leftovers(out) == []


@pytest.mark.parametrize(("case", "pattern"), READ_CASES, ids=[c[0] for c in READ_CASES])
def test_estimate_noise_refuses_bad_input(case: str, pattern: str, files: dict[str, Path]) -> None:
    assert_error(invoke("estimate-noise", files["good"], files[case]), 1, re.escape(str(files[case])) + ".*" + pattern)


# apply: the bad file comes LAST, after good files whose outputs would be written first.
APPLY_CASES = [
    ("complex_nii", r"NIfTI data are complex"),
    ("nan", r"NaN or infinite"),
    ("nan_nii", r"NaN or infinite"),
    ("complex", r"complex; a magnitude"),
    ("object", r"not a readable npy file"),
    ("truncated_npy", r"not a readable npy file"),
    ("virtual_h5", r"virtual dataset"),
    ("link_h5", r"external link"),
    ("fourd", r"4 dimensions"),
    ("missing", r"file not found"),
]


@pytest.mark.parametrize(("case", "pattern"), APPLY_CASES, ids=[c[0] for c in APPLY_CASES])
def test_apply_checks_every_input_before_writing(
    case: str, pattern: str, files: dict[str, Path], model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = invoke("apply", model, files["good"], files["good2"], files["good_nii"], files[case], "-o", out)
    assert_error(result, 1, re.escape(str(files[case])) + ".*" + pattern)
    assert leftovers(out) == []  # not even the outputs of the good files before it


MODEL_CASES = [
    ("missing", r"model file not found"),
    ("folder", r"model path is not a regular file"),
    ("text", r"not a c2s-denoise model file"),
    ("good", r"not a c2s-denoise model file"),  # an .npy file given as the model
]


@pytest.mark.parametrize(("case", "pattern"), MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_apply_refuses_bad_model(case: str, pattern: str, files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert_error(invoke("apply", files[case], files["good"], "-o", out), 1, pattern)
    assert leftovers(out) == []


EVALUATE_CASES = [
    (["{missing}", "-r", "{good}"], r"missing\.npy: file not found"),
    (["{good}", "-r", "{missing}"], r"missing\.npy: file not found"),
    (["{good}", "-r", "{corrupt_h5}"], r"corrupt\.h5: not a readable HDF5 file"),
    (["{good}", "-r", "{big}"], r"good\.npy: shape .* differs"),
    (["{good}", "{good2}", "-r", "{good_h5}"], r"no reference with the same file name"),
    (["{text}", "-r", "{good}"], r"unknown file type"),
]


@pytest.mark.parametrize(("args", "pattern"), EVALUATE_CASES)
def test_evaluate_refuses(args: list[str], pattern: str, files: dict[str, Path]) -> None:
    words = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    assert_error(invoke("evaluate", *words), 1, pattern)


def test_unreadable_input(files: dict[str, Path], tmp_path: Path) -> None:
    if IS_ROOT:
        pytest.skip(ROOT_REASON)
    locked = tmp_path / "locked.npy"
    np.save(locked, _image(0))
    locked.chmod(0)
    try:
        for command in (["fit", locked, "-o", tmp_path / "out" / "m.c2s"], ["estimate-noise", locked]):
            assert_error(invoke(*command), 1, r"locked\.npy: file is not readable")
    finally:
        locked.chmod(0o644)
    assert leftovers(tmp_path / "out") == []


# ----------------------------------------------------------------------------- the command line: options
OPTION_CASES = [
    (["fit", "{good}", "-o", "{out}/m.c2s", "--sigma", "-1"], 2, r"sigma must be a positive number"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--sigma", "loud"], 2, r"expected a number"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--device", "nonsense"], 2, r"expected auto, cpu, cuda"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--crop", "12"], 2, r"expected HxW"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--crop", "64x64"], 1, r"cannot centre-crop"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--combine", "sideways"], 2, r"combine"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--max-iter", "-1"], 1, r"max_iter"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--sigma", "1e30"], 1, r"cannot fit: .*(diverged|non-finite)"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--sigma", "0.05", "--tau-max", "1e30"], 1, r"diverged|tau"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--context-slices", "5"], 1, r"--context-slices 5 needs volumes"),
    (["apply", "{model}", "{good}", "-o", "{out}", "--n-jobs", "0"], 2, r"must not be 0"),
    (["apply", "{model}", "{good}", "-o", "{out}", "--save-complex"], 1, r"--save-complex needs k-space"),
    (["estimate-noise", "{good}", "--noise-model", "bogus"], 2, r"expected auto, gaussian"),
    (["estimate-noise", "{good}", "--n-coils", "0"], 2, r"n-coils"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--n-coils", "many"], 2, r"expected a number of coils >= 1 or auto"),
    (["fit", "{good}", "-o", "{out}/m.c2s", "--n-coils", "0.5"], 2, r"must be >= 1"),
    (["demo", "--out", "{out}", "--device", "nonsense"], 2, r"expected auto, cpu, cuda"),
    (["demo", "--out", "{out}", "--max-iter", "-1"], 2, r"max-iter"),
    (["demo", "--out", "{out}", "--size", "8"], 2, r"must be at least 16"),
    (["demo", "--out", "{out}", "--seed", "-1"], 2, r"seed"),
    (["nonsense"], 2, r"No such command|nonsense"),
]


@pytest.mark.parametrize(("args", "code", "pattern"), OPTION_CASES)
def test_bad_option_values(
    args: list[str], code: int, pattern: str, files: dict[str, Path], model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    names = {**{k: str(v) for k, v in files.items()}, "out": str(out), "model": str(model)}
    words = [a.format(**names) for a in args]
    if words[0] == "fit":  # a tiny model; the case's own values come last and win
        words = [*words[:4], *TINY, *words[4:]]
    assert_error(invoke(*words), code, pattern)
    assert leftovers(out) == []


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_is_refused_before_reading(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("fit", files["good"], "-o", out / "m.c2s", "--max-iter", "2", "--device", "cuda:1")
    assert_error(result, 1, r"CUDA is not available")
    assert leftovers(out) == []


# ----------------------------------------------------------------------------- the command line: outputs
def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder where no file can be created: a read-only one, or for root a read-only file system."""
    if not IS_ROOT:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for candidate in (Path("/sys"), Path("/proc")):
        try:
            (candidate / ".c2s-write-test").touch()
        except OSError:
            return candidate
    pytest.skip(ROOT_REASON + "; and no read-only file system was found")


OUTPUT_CASES = [
    ("output folder is a file", "{good}/m.c2s", r"output folder is an existing file"),
    ("output exists", "{existing}", r"output exists; pass --overwrite"),
    ("output is an input", "{good}", r"output would overwrite an input file"),
    ("output is a folder", "{folder}", r"output path is an existing folder"),
    ("name too long", "{out}/" + "n" * 300 + ".joblib", r"is 307 bytes; this file system allows at most 255"),
    ("folder name too long", "{out}/" + "d" * 256 + "/m.c2s", r"is 256 bytes; this file system allows"),
    ("unwritable folder", "{unwritable}/m.c2s", r"output folder is not writable"),
]


@pytest.mark.parametrize(("case", "target", "pattern"), OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_fit_checks_the_output_before_training(
    case: str, target: str, pattern: str, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "existing.joblib"
    existing.write_bytes(b"old model")
    unwritable = _unwritable_folder(tmp_path) if case == "unwritable folder" else tmp_path
    path = target.format(good=files["good"], existing=existing, out=out, folder=files["folder"], unwritable=unwritable)

    def no_training(self, X, y=None):  # the check comes before any training
        raise AssertionError("training started")

    monkeypatch.setattr(C2SDenoiser, "fit", no_training)
    result = invoke("fit", files["good"], "-o", path, *TINY)
    assert_error(result, 1, pattern)
    assert leftovers(out) == ["existing.joblib"] and existing.read_bytes() == b"old model"


@pytest.mark.parametrize(
    ("case", "pattern"),
    [("outdir is a file", r"output folder is an existing file"), ("unwritable", r"output folder is not writable")],
)
def test_apply_checks_the_outdir_before_work(
    case: str, pattern: str, files: dict[str, Path], model: Path, tmp_path: Path
) -> None:
    outdir = files["good"] if case == "outdir is a file" else _unwritable_folder(tmp_path)
    assert_error(invoke("apply", model, files["good2"], "-o", outdir), 1, pattern)


def test_demo_checks_its_folder(files: dict[str, Path], tmp_path: Path) -> None:
    assert_error(invoke("demo", "--out", files["good"], "--max-iter", "1"), 1, r"output folder is an existing file")
    assert_error(invoke("demo", "--out", _unwritable_folder(tmp_path) / "demo"), 1, r"output folder is not writable")


def test_long_legal_name_is_written(files: dict[str, Path], model: Path, tmp_path: Path) -> None:
    """A 244-byte name is legal; its temporary name must not be longer than the file system allows."""
    out = tmp_path / "out"
    result = invoke("apply", model, files["long"], "-o", out)
    assert result.exit_code == 0, result.output
    assert leftovers(out) == [files["long"].name]
    fitted_path = out / ("M" * 245 + ".joblib")
    result = invoke("fit", files["good"], "-o", fitted_path, "--sigma", "0.05", *TINY)
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir() if p.name.startswith(TEMP_PREFIX)] == []


# ----------------------------------------------------------------------------- a write that fails after training
@pytest.fixture()
def made_out(tmp_path: Path) -> Path:
    """An existing, empty output folder."""
    out = tmp_path / "out"
    out.mkdir()
    return out


def _disk_full_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every atomic write into ``folder`` fail as on a full disk (writes elsewhere work)."""
    from c2s_denoise.io import atomic

    real = atomic._fsync_path

    def fsync(path: Path) -> None:
        if Path(path).parent == folder:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path)

    monkeypatch.setattr(atomic, "_fsync_path", fsync)


def test_disk_full_after_training_saves_the_model_elsewhere(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(tmp_path)
    _disk_full_in(out, monkeypatch)
    result = invoke("fit", files["good"], "-o", out / "m.c2s", "--sigma", "0.05", *TINY)
    pattern = rf"could not write {re.escape(str(out / 'm.c2s'))} \(No space left on device\); the trained model "
    assert_error(result, 1, pattern + r"was saved to (\S+c2s-model-\w+\.c2s)")
    saved = Path(re.search(r"saved to (\S+)$", result.stderr.strip()).group(1))
    assert saved.parent == tmp_path  # the current folder, since the intended one is full
    assert load_model(saved).n_iter_ == 2
    assert leftovers(out) == []


def test_failed_write_api_names_the_fallback(files: dict[str, Path], made_out: Path, monkeypatch) -> None:
    from c2s_denoise.workflows import recovery

    out = made_out

    real = recovery.save_model

    def save(model, path, *, overwrite=False):
        if Path(path) == out / "m.c2s":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(model, path, overwrite=overwrite)

    monkeypatch.setattr(recovery, "save_model", save)
    with pytest.raises(ModelNotWrittenError, match=r"Input/output error.*saved to .*m-recovered-\w+\.c2s") as e:
        fit_files([files["good"]], out / "m.c2s", params={"sigma": 0.05, **TINY_PARAMS})
    assert Path(e.value.saved_to).parent == out  # next to the intended file, when that folder works
    assert load_model(e.value.saved_to).n_iter_ == 2


def test_folder_removed_during_training_is_recreated(files: dict[str, Path], made_out: Path, monkeypatch) -> None:
    out, real_fit = made_out, C2SDenoiser.fit

    def fit_then_remove(self, X, y=None):
        fitted = real_fit(self, X, y)
        out.rmdir()
        return fitted

    monkeypatch.setattr(C2SDenoiser, "fit", fit_then_remove)
    result = invoke("fit", files["good"], "-o", out / "m.c2s", "--sigma", "0.05", *TINY)
    assert result.exit_code == 0, result.output
    assert leftovers(out) == ["m.c2s"]


# ----------------------------------------------------------------------------- no traceback, ever
def test_unexpected_errors_are_one_line(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from c2s_denoise import workflows

    def boom(*args, **kwargs):
        raise RuntimeError("invalid device string: 'x'\nsecond line")

    monkeypatch.setattr(workflows, "estimate_noise_files", boom)
    result = invoke("estimate-noise", files["good"])
    assert_error(result, 1, r"^error: RuntimeError: invalid device string: 'x' \(run with -v")
    verbose = invoke("estimate-noise", files["good"], "-v")
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr  # for bug reports
    assert verbose.stderr.strip().splitlines()[-1] == "error: RuntimeError: invalid device string: 'x'"


def test_main_turns_stray_exceptions_into_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from c2s_denoise.cli import commands as cli

    def crash(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(cli, "app", crash)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    assert capsys.readouterr().err.strip().startswith("error: MemoryError: out of memory")


def test_interrupt_exits_130(files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self, X, y=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(C2SDenoiser, "fit", interrupted)
    out = tmp_path / "out"
    result = invoke("fit", files["good"], "-o", out / "m.c2s", *TINY)
    assert result.exit_code == 130 and "Traceback" not in result.output
    assert leftovers(out) == []
