"""DICOM in and out: pydicom's own MR test files, synthetic series built from them, the derived series, dcm2niix.

pydicom ships ``MR_small*.dcm`` (one 64x64 slice in several encodings) and ``dicomdirtests``
(16x16 MR slices of mixed series, radial slices of different orientations, CT objects without
pixel data). Evenly spaced series and an enhanced multi-frame object are built from
``MR_small.dcm`` in the test's folder.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom", reason="pydicom (the 'dicom' extra) is not installed")

from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from c2s_denoise.cli.commands import app  # noqa: E402
from c2s_denoise.io import (  # noqa: E402
    TEMP_PREFIX,
    C2SInputError,
    ReadOptions,
    check_input_path,
    load_image,
    probe_image,
    save_image,
)

MR_SMALL = Path(get_testdata_file("MR_small.dcm"))
DICOMDIR_TESTS = MR_SMALL.parent / "dicomdirtests"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
TINY = ["--max-iter", "3", "--width", "8", "--patch-size", "32", "--batch-size", "2", "--seed", "0"]

try:  # Click < 8.2 mixes stderr into stdout unless told not to
    runner = CliRunner(mix_stderr=False)
except TypeError:
    runner = CliRunner()


# ----------------------------------------------------------------------------- builders
def _directions(oblique: bool) -> tuple[np.ndarray, np.ndarray]:
    if not oblique:
        return np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    a, b = np.deg2rad(12.0), 0.2
    row = np.array([np.cos(a), np.sin(a), 0.0])
    col = np.array([-np.sin(a) * np.cos(b), np.cos(a) * np.cos(b), np.sin(b)])
    col -= row * (row @ col)
    return row, col / np.linalg.norm(col)


def make_series(
    folder: Path,
    n: int = 5,
    spacing: float = 2.0,
    *,
    oblique: bool = True,
    rescale: tuple[str, str] | None = None,
    gaps: list[float] | None = None,
    unsigned: bool = False,
) -> Path:
    """``n`` slices of MR_small (slice ``k`` along the normal holds pixels + 10 k), named and numbered out of order."""
    folder.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(MR_SMALL)
    series = generate_uid()
    row, col = _directions(oblique)
    along = np.concatenate([[0.0], np.cumsum(gaps)]) if gaps is not None else np.arange(n) * spacing
    shuffled = np.random.default_rng(0).permutation(n)
    for k in range(n):
        ds = copy.deepcopy(base)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, *col)]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in np.array([-83.9, -91.2, 6.64]) + along[k] * np.cross(row, col)]
        ds.InstanceNumber = int(shuffled[k]) + 1
        ds.SeriesDescription, ds.SeriesNumber, ds.SliceThickness = "T2 axial", 5, spacing
        pixels = base.pixel_array.astype(np.int32) + 10 * k
        if unsigned:
            ds.PixelRepresentation = 0
        ds.PixelData = pixels.astype(np.uint16 if unsigned else np.int16).tobytes()
        if rescale is not None:
            ds.RescaleSlope, ds.RescaleIntercept = rescale
        ds.save_as(folder / f"x{shuffled[k]:03d}.dcm")
    return folder


def make_enhanced(path: Path, n: int = 4, spacing: float = 1.5) -> tuple[Path, np.ndarray]:
    """An enhanced MR object of ``n`` frames stored out of spatial order, each with its own rescale.

    Returns the file and the expected volume (rescaled, sorted along the normal)."""
    ds = copy.deepcopy(pydicom.dcmread(MR_SMALL))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_MR
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M_SE", "NONE"]
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness"):
        delattr(ds, keyword)
    ds.NumberOfFrames = n
    measures, orientation, frame_type = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.3125, 0.3125], spacing
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    frame_type.FrameType = ["ORIGINAL", "PRIMARY", "M_SE", "NONE"]
    shared = Dataset()
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [measures], [orientation]
    shared.MRImageFrameTypeSequence = [frame_type]
    ds.SharedFunctionalGroupsSequence = [shared]
    place = np.random.default_rng(1).permutation(n)  # frame j lies at place[j] along the normal
    frames = np.stack([pydicom.dcmread(MR_SMALL).pixel_array + 7 * place[j] for j in range(n)]).astype(np.int16)
    per_frame, expected = [], np.zeros(frames.shape)
    for j in range(n):
        position, values, item = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [-83.9, -91.2, 6.64 + spacing * place[j]]
        values.RescaleSlope, values.RescaleIntercept, values.RescaleType = f"{0.5 + 0.25 * j}", f"{-10 * j}", "US"
        item.PlanePositionSequence, item.PixelValueTransformationSequence = [position], [values]
        per_frame.append(item)
        expected[place[j]] = frames[j] * (0.5 + 0.25 * j) - 10 * j
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = frames.tobytes()
    ds.save_as(path)
    return path, expected


def digest(path: Path) -> dict[str, str]:
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def temp_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(f"{TEMP_PREFIX}*"))


def quantum(path: Path) -> float:
    """The largest rescale slope of the files of an output (the step between stored values)."""
    slopes = []
    for file in sorted(path.iterdir()) if path.is_dir() else [path]:
        ds = pydicom.dcmread(file)
        groups = list(ds.get("PerFrameFunctionalGroupsSequence", [])) + list(
            ds.get("SharedFunctionalGroupsSequence", [])
        )
        slopes += [
            float(g.PixelValueTransformationSequence[0].RescaleSlope)
            for g in groups
            if "PixelValueTransformationSequence" in g
        ]
        slopes.append(float(ds.get("RescaleSlope") or 1))
    return max(slopes)


# ----------------------------------------------------------------------------- reading
@pytest.mark.filterwarnings("ignore:The pixel data is .* bytes long")  # MR_small_padded.dcm
@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_expb.dcm",
        "MR_small_RLE.dcm",
        "MR_small_padded.dcm",
    ],
)
def test_single_slices_load_in_every_uncompressed_and_rle_encoding(name: str) -> None:
    path = Path(get_testdata_file(name))
    ds = pydicom.dcmread(path)
    image = load_image(path)
    assert image.format == "dicom" and image.data.shape == (1, 64, 64) and image.data.dtype == np.float32
    expected = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    np.testing.assert_array_equal(image.data[0], expected)
    assert image.meta["voxel_size"] == (0.3125, 0.3125)
    assert (image.meta["bits_allocated"], image.meta["pixel_representation"]) == (16, 1)
    probe_image(path)


@pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"])
def test_compressed_slices_load_or_name_the_missing_decoder(name: str) -> None:
    path = Path(get_testdata_file(name))
    probe_image(path)  # the header is fine; only decoding needs a plugin
    try:
        reference = pydicom.dcmread(path).pixel_array
    except Exception:  # no decoder for this syntax here: the error says which syntax and what to install
        syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        with pytest.raises(C2SInputError) as caught:
            load_image(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert syntax.name in message and str(syntax) in message and "pip install" in message
    else:
        np.testing.assert_array_equal(load_image(path).data[0], reference)


def test_series_is_sorted_along_the_slice_normal(tmp_path: Path) -> None:
    folder = make_series(tmp_path / "scan", n=5, spacing=2.5, oblique=True)
    image = load_image(folder)
    base = pydicom.dcmread(MR_SMALL).pixel_array
    assert image.data.shape == (5, 64, 64) and image.source == folder
    for k in range(5):  # file names and InstanceNumber are shuffled; the position decides
        np.testing.assert_array_equal(image.data[k], base + 10 * k)
    row, col = _directions(True)
    along = np.asarray(image.meta["positions"]) @ np.cross(row, col)
    assert np.all(np.diff(along) > 0)
    assert image.meta["voxel_size"] == pytest.approx((2.5, 0.3125, 0.3125), abs=1e-3)
    assert len(image.meta["headers"]) == 5 and not image.meta["multiframe"]
    assert check_input_path(folder) == (folder, "dicom")


def test_rescale_slope_and_intercept_are_applied(tmp_path: Path) -> None:
    folder = make_series(tmp_path / "scan", n=3, rescale=("0.5", "-20"))
    image = load_image(folder)
    base = pydicom.dcmread(MR_SMALL).pixel_array
    for k in range(3):
        np.testing.assert_allclose(image.data[k], (base + 10 * k) * 0.5 - 20)


def test_files_are_found_by_their_marker_whatever_their_name(tmp_path: Path) -> None:
    folder = make_series(tmp_path / "scan", n=3, oblique=False)
    files = sorted(folder.iterdir())
    files[0].rename(folder / "IMAGE1")  # no suffix
    files[1].rename(folder / "slice.IMA")
    (folder / "notes.txt").write_text("not DICOM")
    (folder / "README").write_text("no marker either")
    shutil.copy(DICOMDIR_TESTS / "DICOMDIR", folder / "DICOMDIR")  # an index, skipped
    assert load_image(folder).data.shape == (3, 64, 64)
    assert check_input_path(folder / "IMAGE1") == (folder / "IMAGE1", "dicom")


def test_enhanced_multiframe_per_frame_rescale_and_round_trip(tmp_path: Path) -> None:
    path, expected = make_enhanced(tmp_path / "enhanced.dcm")
    image = load_image(path)
    assert image.meta["multiframe"] and image.data.shape == (4, 64, 64)
    np.testing.assert_allclose(image.data, expected, atol=1e-4)
    assert image.meta["voxel_size"] == pytest.approx((1.5, 0.3125, 0.3125))
    (tmp_path / "out").mkdir()
    result = image.data * 0.8 + 1.7
    out = save_image(tmp_path / "out" / "enhanced.dcm", result, image)
    assert out.is_file()
    written = pydicom.dcmread(out)
    source = pydicom.dcmread(path)
    assert int(written.NumberOfFrames) == 4 and written.SOPClassUID == ENHANCED_MR
    assert list(written.ImageType) == ["DERIVED", "SECONDARY", "M_SE", "NONE"]
    assert written.SharedFunctionalGroupsSequence[0].MRImageFrameTypeSequence[0].FrameType[0] == "DERIVED"
    for before, after in zip(
        source.PerFrameFunctionalGroupsSequence, written.PerFrameFunctionalGroupsSequence, strict=True
    ):
        assert (
            after.PlanePositionSequence[0].ImagePositionPatient == before.PlanePositionSequence[0].ImagePositionPatient
        )
    back = load_image(out)
    assert np.abs(back.data - result).max() <= quantum(out) / 2 + 1e-4


# ----------------------------------------------------------------------------- the derived series
def test_derived_series_round_trip(tmp_path: Path) -> None:
    folder = make_series(tmp_path / "scan", n=4, rescale=("0.5", "-20"))
    before = digest(folder)
    image = load_image(folder)
    result = image.data * 0.9 + 3.3
    (tmp_path / "out").mkdir()
    out = save_image(tmp_path / "out" / "scan", result, image, {"sigma": 12.5, "package_version": "test"})
    assert out == tmp_path / "out" / "scan" and out.is_dir()
    assert digest(folder) == before  # inputs are never modified
    assert temp_entries(tmp_path) == []
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["IM0001.dcm", "IM0002.dcm", "IM0003.dcm", "IM0004.dcm"]
    sources = {str(h.SOPInstanceUID): h for h in image.meta["headers"]}
    written = [pydicom.dcmread(f) for f in files]
    assert len({str(ds.SeriesInstanceUID) for ds in written}) == 1
    assert written[0].SeriesInstanceUID != image.meta["headers"][0].SeriesInstanceUID
    assert len({str(ds.SOPInstanceUID) for ds in written} | set(sources)) == 8  # all new, all distinct
    for k, ds in enumerate(written):
        src = sources[str(ds.SourceImageSequence[0].ReferencedSOPInstanceUID)]
        assert src is image.meta["headers"][k]  # file k is slice k of the volume, derived from its source
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "OTHER"]
        assert ds.SeriesDescription == "T2 axial (C2S denoised)" and ds.SeriesNumber == 1005
        assert "sigma=12.5" in ds.DerivationDescription
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyID", "FrameOfReferenceUID"):
            assert ds.get(keyword) == src.get(keyword), keyword
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness"):
            assert ds.get(keyword) == src.get(keyword), keyword
        assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (16, 16, 1)
        assert ds.pixel_array.dtype == np.int16
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (0.5, -20.0)  # the values fit: kept
    back = load_image(out)
    assert np.abs(back.data - result).max() <= 0.25 + 1e-4  # half the slope
    np.testing.assert_allclose(back.meta["positions"], image.meta["positions"], atol=1e-6)


def test_values_beyond_the_integer_range_get_a_new_slope(tmp_path: Path) -> None:
    image = load_image(make_series(tmp_path / "scan", n=3))
    result = image.data * 40.0  # up to ~86000: beyond int16 with slope 1
    out = save_image(tmp_path / "big", result, image)
    slope = quantum(out)
    assert slope > 1
    back = load_image(out)
    assert np.abs(back.data - result).max() <= slope / 2 + 1e-3 * slope
    assert back.data.max() == pytest.approx(result.max(), abs=slope)  # not clipped


def test_unsigned_pixels_below_zero_get_a_new_intercept(tmp_path: Path) -> None:
    image = load_image(make_series(tmp_path / "scan", n=3, unsigned=True))
    assert image.meta["pixel_representation"] == 0
    result = image.data - 500.0  # negative values in unsigned pixels
    out = save_image(tmp_path / "shifted", result, image)
    ds = pydicom.dcmread(sorted(out.iterdir())[0])
    assert ds.pixel_array.dtype == np.uint16 and float(ds.RescaleIntercept) <= result.min()
    assert np.abs(load_image(out).data - result).max() <= quantum(out) / 2 + 1e-6


def test_a_centre_crop_moves_the_image_position(tmp_path: Path) -> None:
    folder = make_series(tmp_path / "scan", n=3, oblique=True)
    full = load_image(folder)
    cropped = load_image(folder, ReadOptions(crop=(32, 40)))
    out = save_image(tmp_path / "cropped", cropped.data, cropped)
    back = load_image(out)
    assert back.data.shape == (3, 32, 40)
    np.testing.assert_allclose(back.data, full.data[:, 16:48, 12:52])
    row, col = np.asarray(full.meta["orientation"][:3]), np.asarray(full.meta["orientation"][3:])
    moved = np.asarray(full.meta["positions"]) + 12 * 0.3125 * row + 16 * 0.3125 * col  # pixel (16, 12) of the input
    np.testing.assert_allclose(back.meta["positions"], moved, atol=1e-3)


def test_outputs_are_atomic_and_never_clobbered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_series(tmp_path / "scan", n=4)
    image = load_image(folder)
    with pytest.raises(C2SInputError, match="output would overwrite an input"):
        save_image(folder, image.data, image, overwrite=True)
    out = save_image(tmp_path / "out", image.data, image)
    first = digest(out)
    with pytest.raises(C2SInputError, match=r"out: output exists; pass overwrite=True"):
        save_image(out, image.data, image)
    assert digest(out) == first
    save_image(out, image.data + 1, image, overwrite=True)
    assert digest(out) != first and len(list(out.iterdir())) == 4
    (out / "notes.txt").write_text("mine")
    with pytest.raises(C2SInputError, match="not DICOM; it is never replaced"):
        save_image(out, image.data, image, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"

    calls = []
    original = pydicom.dataset.Dataset.save_as

    def failing(self, filename, *args, **kwargs):  # the third file fails half-way through the series
        calls.append(filename)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(self, filename, *args, **kwargs)

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", failing)
    with pytest.raises(OSError, match="disk full"):
        save_image(tmp_path / "failed", image.data, image)
    assert not (tmp_path / "failed").exists() and temp_entries(tmp_path) == []


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed (apt-get install dcm2niix)")
def test_dcm2niix_gives_the_same_affine_for_input_and_output(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel", reason="nibabel (the 'nifti' extra) is not installed")
    folder = make_series(tmp_path / "scan", n=6, spacing=1.8, oblique=True)
    image = load_image(folder)
    out = save_image(tmp_path / "denoised", image.data * 0.7 + 5, image)
    converted = []
    for series in (folder, out):
        target = tmp_path / f"{series.name}_nii"
        target.mkdir()
        proc = subprocess.run(
            ["dcm2niix", "-z", "n", "-b", "n", "-f", "%s", "-o", str(target), str(series)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (nifti,) = sorted(target.glob("*.nii"))
        converted.append(nib.load(nifti))
    assert converted[0].shape == converted[1].shape == (64, 64, 6)
    np.testing.assert_allclose(converted[1].affine, converted[0].affine, atol=1e-4)


# ----------------------------------------------------------------------------- bad inputs
def _bad_inputs(root: Path) -> dict[str, tuple[Path, str]]:
    """Each bad input (folder or file) and the problem its error names."""
    uneven = make_series(root / "uneven", n=4, gaps=[2.0, 2.0, 2.5])
    no_pixels = root / "no_pixels"
    no_pixels.mkdir()
    ds = pydicom.dcmread(MR_SMALL)
    del ds.PixelData
    ds.save_as(no_pixels / "slice.dcm")
    empty = root / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no DICOM here")
    return {
        "mixed series": (DICOMDIR_TESTS / "98892003" / "MR2", r"holds 3 DICOM series.*\.136 \(3 files\)"),
        "missing pixel data": (no_pixels, r"slice\.dcm: holds no pixel data"),
        "no pixel data (CT index)": (DICOMDIR_TESTS / "TINY_ALPHA/PT000000/ST000000/SE000000", "holds no pixel data"),
        "uneven spacing": (uneven, r"not evenly spaced: 2\.5 mm between"),
        "orientations differ": (DICOMDIR_TESTS / "98892003" / "MR700", "slices have different orientations"),
        "empty folder": (empty, "no DICOM files in this folder"),
        "truncated": (Path(get_testdata_file("MR_truncated.dcm")), "pixel data cannot be decoded"),
        "compressed, no decoder": (Path(get_testdata_file("MR_small_jpeg_ls_lossless.dcm")), "no installed decoder"),
    }


BAD = ["mixed series", "missing pixel data", "no pixel data (CT index)", "uneven spacing", "orientations differ"]
BAD += ["empty folder", "truncated", "compressed, no decoder"]


def _skip_if_decodable(case: str) -> None:
    if case == "compressed, no decoder":
        try:
            _ = pydicom.dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm")).pixel_array
        except Exception:
            return
        pytest.skip("a JPEG-LS decoder is installed here")


@pytest.mark.parametrize("case", BAD)
def test_bad_inputs_raise_one_line_naming_the_input(case: str, tmp_path: Path) -> None:
    _skip_if_decodable(case)
    path, problem = _bad_inputs(tmp_path)[case]
    before = digest(path)
    with pytest.raises(C2SInputError) as caught:
        load_image(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    assert re.search(problem, message), message
    assert digest(path) == before


def test_pydicom_missing_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(C2SInputError, match=re.escape("""pip install "c2s-denoise[dicom]\"""")) as caught:
        load_image(MR_SMALL)
    assert str(MR_SMALL) in str(caught.value)


# ----------------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dicom_cli")
    scan = make_series(root / "scan", n=4)
    model = root / "model.c2s"
    result = runner.invoke(app, ["fit", str(scan), "-o", str(model), *TINY])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inputs"][0]["shape"] == [4, 64, 64]
    return scan, model


def test_cli_fits_on_a_dicom_folder_and_writes_a_derived_series(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    scan, model = fitted
    result = runner.invoke(app, ["apply", str(model), str(scan), "-o", str(tmp_path / "denoised")])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)["outputs"]
    out = Path(entry["output"])
    assert out == tmp_path / "denoised" / "scan" and entry["shape"] == [4, 64, 64]
    written = [pydicom.dcmread(f) for f in sorted(out.iterdir())]
    assert len(written) == 4 and all(ds.SeriesDescription.endswith("(C2S denoised)") for ds in written)
    assert all(ds.pixel_array.shape == (64, 64) for ds in written)


@pytest.mark.parametrize("case", BAD)
def test_cli_refuses_a_bad_dicom_input_before_writing(case: str, fitted: tuple[Path, Path], tmp_path: Path) -> None:
    _skip_if_decodable(case)
    scan, model = fitted
    path, problem = _bad_inputs(tmp_path)[case]
    out = tmp_path / "denoised"
    result = runner.invoke(app, ["apply", str(model), str(scan), str(path), "-o", str(out)])
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert "\n" not in message and message.startswith(f"error: {path}"), message
    assert re.search(problem, message), message
    assert not out.exists() or list(out.rglob("*")) == []  # nothing written, not even the good input's output


@pytest.mark.parametrize("series", ["MR2", "MR700"])
def test_every_file_of_pydicoms_dicomdir_mr_series_goes_in(series: str) -> None:
    """Each file of ``dicomdirtests/98892003/MR2`` (three series in one folder) and ``MR700`` (radial slices)
    loads as an image with its rescaled values; the folders themselves are refused with one line (tested above)."""
    folder = MR_SMALL.parent / "dicomdirtests" / "98892003" / series
    files = sorted(path for path in folder.iterdir() if path.is_file())
    assert len(files) == 7
    for path in files:
        image = load_image(path)
        ds = pydicom.dcmread(path)
        expected = ds.pixel_array * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
        assert image.format == "dicom" and image.data.shape == (1, *expected.shape)
        np.testing.assert_allclose(image.data[0], expected, rtol=1e-6)
