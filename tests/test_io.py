"""Readers, writers, atomic writes, PNG, phantom and metrics (no training: fast)."""

from __future__ import annotations

import json
import pickle
import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from _mri_files import ATTRS, HEADER, known_volume, truncate, write_fastmri

from c2s_denoise.io import (
    TEMP_PREFIX,
    C2SInputError,
    LoadedImage,
    ReadOptions,
    atomic_write,
    load_image,
    parse_m4raw_name,
    probe_image,
    save_image,
)
from c2s_denoise.io.fastmri import center_crop
from c2s_denoise.io.kspace import centered_ifft2
from c2s_denoise.io.png import encode_png, write_png
from c2s_denoise.metrics import psnr, ssim
from c2s_denoise.physics.phantom import brain_phantom


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


# ----------------------------------------------------------------------------- fastMRI / M4Raw
@pytest.mark.parametrize("coils", [None, 1, 4, 8])
def test_kspace_rss_matches_known_image(tmp_path: Path, coils: int | None) -> None:
    volume = known_volume(3, 24, 20)
    path = write_fastmri(tmp_path / "scan.h5", volume, coils=coils)
    image = load_image(path)
    assert image.format == "hdf5"
    assert image.meta["dataset"] == "kspace"
    assert image.data.shape == volume.shape
    assert image.data.dtype == np.float32
    np.testing.assert_allclose(image.data, volume, rtol=1e-4, atol=1e-5)


def test_centered_ifft_is_inverse_of_centered_fft() -> None:
    rng = np.random.default_rng(1)
    image = rng.standard_normal((5, 7)) + 1j * rng.standard_normal((5, 7))
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image), norm="ortho"))
    np.testing.assert_allclose(centered_ifft2(kspace), image, atol=1e-12)


def test_reconstruction_rss_is_preferred_over_kspace(tmp_path: Path) -> None:
    volume = known_volume(2, 16, 16)
    stored = 2.0 * volume + 1.0
    path = write_fastmri(tmp_path / "both.h5", volume, reconstruction={"reconstruction_rss": stored})
    image = load_image(path)
    assert image.meta["dataset"] == "reconstruction_rss"
    np.testing.assert_array_equal(image.data, stored)
    # The k-space can still be asked for by name.
    np.testing.assert_allclose(
        load_image(path, ReadOptions(dataset="kspace", combine="rss")).data, volume, rtol=1e-4, atol=1e-5
    )


def test_reconstruction_esc_without_kspace(tmp_path: Path) -> None:
    stored = known_volume(2, 16, 16)
    path = write_fastmri(tmp_path / "esc.h5", stored, with_kspace=False, reconstruction={"reconstruction_esc": stored})
    image = load_image(path)
    assert image.meta["dataset"] == "reconstruction_esc"
    np.testing.assert_array_equal(image.data, stored)


def test_center_crop(tmp_path: Path) -> None:
    volume = known_volume(1, 24, 20)
    path = write_fastmri(tmp_path / "crop.h5", volume, coils=2)
    image = load_image(path, ReadOptions(crop=(10, 8), combine="rss"))
    np.testing.assert_allclose(image.data, volume[:, 7:17, 6:14], rtol=1e-4, atol=1e-5)
    assert center_crop(np.zeros((3, 9, 9)), (3, 3)).shape == (3, 3, 3)
    with pytest.raises(C2SInputError, match="cannot centre-crop images of size 24x20 to 30x8"):
        load_image(path, ReadOptions(crop=(30, 8), combine="rss"))


def test_hdf5_output_keeps_header_and_attributes(tmp_path: Path) -> None:
    volume = known_volume(2, 16, 12)
    source = write_fastmri(tmp_path / "in.h5", volume, coils=3)
    image = load_image(source)
    out = tmp_path / "out" / "in.h5"
    out.parent.mkdir()
    provenance = {"package_version": "9.9", "model_sha256": "ab" * 32, "sigma": 0.01, "refinement": 0.2, "none": None}
    save_image(out, image.data * 0.5, image, provenance)
    with h5py.File(out, "r") as handle:
        np.testing.assert_allclose(handle["reconstruction"][()], image.data * 0.5)
        assert handle["reconstruction"].dtype == np.float32
        assert handle["ismrmrd_header"][()] == HEADER
        assert "kspace" not in handle
        for name, value in ATTRS.items():
            assert handle.attrs[name] == value
        assert handle.attrs["c2s_package_version"] == "9.9"
        assert handle.attrs["c2s_model_sha256"] == "ab" * 32
        assert handle.attrs["c2s_sigma"] == pytest.approx(0.01)
        assert handle.attrs["c2s_refinement"] == pytest.approx(0.2)
        assert "c2s_none" not in handle.attrs
        assert json.loads(handle.attrs["c2s_provenance"])["sigma"] == pytest.approx(0.01)
    # Our output reads back through the fastMRI reader, with the header kept once more.
    again = load_image(out)
    assert again.meta["dataset"] == "reconstruction"
    assert again.meta["header"] == HEADER


def test_m4raw_names(tmp_path: Path) -> None:
    parts = parse_m4raw_name("data/2022061003_T102.h5")
    assert (parts.study, parts.contrast, parts.repetition) == ("2022061003", "T1", 2)
    parts = parse_m4raw_name("2022100501_FLAIR03.h5")
    assert (parts.study, parts.contrast, parts.repetition) == ("2022100501", "FLAIR", 3)
    assert parse_m4raw_name("file1000001.h5") is None
    assert parse_m4raw_name("2022061003_T1.h5") is None
    path = write_fastmri(tmp_path / "2022061003_T203.h5", known_volume(1, 8, 8), coils=2)
    image = load_image(path)
    assert (image.study, image.contrast, image.repetition) == ("2022061003", "T2", 3)
    other = write_fastmri(tmp_path / "knee.h5", known_volume(1, 8, 8), coils=2)
    assert load_image(other).contrast is None


# ----------------------------------------------------------------------------- bad files
def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    volume = known_volume(1, 8, 8)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as handle:
        handle.create_dataset("mask", data=np.ones(8))
    truncated = truncate(write_fastmri(tmp_path / "truncated.h5", known_volume(4, 64, 64), coils=4), 0.4)
    not_h5 = tmp_path / "text.h5"
    not_h5.write_text("hello, not HDF5")
    rank2 = write_fastmri(tmp_path / "rank2.h5", volume, kspace=np.ones((8, 8), np.complex64))
    rank5 = write_fastmri(tmp_path / "rank5.h5", volume, kspace=np.ones((1, 2, 2, 8, 8), np.complex64))
    real_k = write_fastmri(tmp_path / "realk.h5", volume, kspace=np.ones((1, 8, 8), np.float32))
    unknown = tmp_path / "scan.dcm"
    unknown.write_bytes(b"DICM")
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((8, 8), np.nan))
    bad_npy = tmp_path / "bad.npy"
    bad_npy.write_bytes(b"\x93NUMPY garbage")
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    complex_npy = tmp_path / "complex.npy"
    np.save(complex_npy, np.ones((8, 8), np.complex64))
    four_d = tmp_path / "four_d.npy"
    np.save(four_d, np.ones((2, 2, 8, 8)))
    return {
        "missing": (tmp_path / "missing.h5", "file not found"),
        "folder": (tmp_path, "not a regular file"),
        "no data": (empty, "neither 'kspace' nor a reconstruction"),
        "truncated": (truncated, "HDF5"),
        "not hdf5": (not_h5, "not a readable HDF5 file"),
        "rank 2": (rank2, "kspace has rank 2"),
        "rank 5": (rank5, "kspace has rank 5"),
        "real kspace": (real_k, "non-complex"),
        "unknown": (unknown, "unknown file type"),
        "nan": (nan, "NaN or infinite"),
        "bad npy": (bad_npy, "not a readable npy file"),
        "pickled": (pickled, "not a readable npy file"),
        "complex": (complex_npy, "complex"),
        "4-D": (four_d, "4 dimensions"),
    }


def test_bad_inputs_raise_one_line_errors_naming_the_file(tmp_path: Path) -> None:
    for label, (path, problem) in _bad_files(tmp_path).items():
        with pytest.raises(C2SInputError) as info:
            load_image(path)
        message = str(info.value)
        assert str(path) in message, label
        assert problem in message, (label, message)
        assert "\n" not in message, label
        assert isinstance(info.value, ValueError)
        assert pickle.loads(pickle.dumps(info.value)).args == info.value.args


def test_probe_catches_structure_problems_without_reading_pixels(tmp_path: Path) -> None:
    bad = _bad_files(tmp_path)
    for label in ("missing", "no data", "not hdf5", "rank 2", "rank 5", "unknown"):
        path, problem = bad[label]
        with pytest.raises(C2SInputError, match=problem):
            probe_image(path)
    probe_image(write_fastmri(tmp_path / "good.h5", known_volume(1, 8, 8)))


# ----------------------------------------------------------------------------- NIfTI
def _affine() -> np.ndarray:
    # Oblique, sheared, anisotropic: every element matters.
    return np.array(
        [
            [0.9375, 0.0312, -0.0101, -120.25],
            [-0.0201, 1.1719, 0.0555, -98.5],
            [0.0105, -0.0403, 3.3, -64.125],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_round_trip_keeps_affine_and_layout(tmp_path: Path, suffix: str) -> None:
    nib = pytest.importorskip("nibabel", reason="nibabel (the 'nifti' extra) is not installed")
    stored = np.random.default_rng(0).integers(0, 1000, size=(12, 10, 5)).astype(np.int16)
    img = nib.Nifti1Image(stored, _affine())
    img.header.set_xyzt_units("mm")
    source = tmp_path / f"brain{suffix}"
    nib.save(img, source)
    original = nib.load(source)

    image = load_image(source)
    assert image.format == "nifti"
    assert image.data.shape == (5, 12, 10)  # slices along the last axis
    np.testing.assert_array_equal(image.data[2], stored[:, :, 2])

    out = tmp_path / "out" / f"brain{suffix}"
    out.parent.mkdir()
    save_image(out, image.data * 0.5, image, {"sigma": 1.0})
    written = nib.load(out)
    assert np.array_equal(written.affine, original.affine)
    assert written.shape == stored.shape
    np.testing.assert_array_equal(written.header.get_sform(coded=True)[1], original.header.get_sform(coded=True)[1])
    np.testing.assert_array_equal(written.header.get_qform(), original.header.get_qform())
    assert written.header.get_zooms() == original.header.get_zooms()
    assert written.header.get_data_dtype() == np.float32
    np.testing.assert_allclose(written.get_fdata(), stored * 0.5)


def test_nifti_slice_axis_and_2d(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel", reason="nibabel (the 'nifti' extra) is not installed")
    stored = np.arange(4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8)
    source = tmp_path / "vol.nii"
    nib.save(nib.Nifti1Image(stored, _affine()), source)
    image = load_image(source, ReadOptions(slice_axis=0))
    assert image.data.shape == (4, 6, 8)
    image = load_image(source, ReadOptions(slice_axis=1))
    assert image.data.shape == (6, 4, 8)
    np.testing.assert_array_equal(image.data[3], stored[:, 3, :])
    out = tmp_path / "o" / "vol.nii"
    out.parent.mkdir()
    save_image(out, image.data + 1, image)
    np.testing.assert_array_equal(nib.load(out).get_fdata(), stored + 1)

    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(stored[0], np.eye(4)), flat)
    image = load_image(flat)
    assert image.data.shape == (1, 6, 8)
    out = tmp_path / "o" / "flat.nii.gz"
    save_image(out, image.data, image)
    assert nib.load(out).shape == (6, 8)


def test_nifti_truncated(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel", reason="nibabel (the 'nifti' extra) is not installed")
    source = tmp_path / "cut.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((20, 20, 20)).astype(np.float32), np.eye(4)), source)
    truncate(source, 0.5)
    with pytest.raises(C2SInputError, match=r"cut\.nii\.gz: not a readable NIfTI file"):
        load_image(source)


# ----------------------------------------------------------------------------- NumPy
def test_npy_round_trip_keeps_2d_shape_and_dtype(tmp_path: Path) -> None:
    for dtype in (np.float32, np.float64):
        array = known_volume(1, 12, 10)[0].astype(dtype)
        source = tmp_path / f"img_{np.dtype(dtype).name}.npy"
        np.save(source, array)
        image = load_image(source)
        assert image.data.shape == (1, 12, 10)
        assert image.data.dtype == dtype
        out = tmp_path / "o" / source.name
        out.parent.mkdir(exist_ok=True)
        save_image(out, image.data, image)
        back = np.load(out)
        assert back.shape == (12, 10)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, array)
    ints = tmp_path / "ints.npy"
    np.save(ints, np.arange(16, dtype=np.uint16).reshape(4, 4))
    assert load_image(ints).data.dtype == np.float32


def test_npz_keys(tmp_path: Path) -> None:
    vol = known_volume(2, 8, 8)
    single = tmp_path / "single.npz"
    np.savez(single, anything=vol)
    assert load_image(single).meta["key"] == "anything"
    several = tmp_path / "several.npz"
    np.savez(several, mask=vol > 0, image=vol)
    image = load_image(several)
    assert image.meta["key"] == "image"
    np.testing.assert_array_equal(image.data, vol)
    assert load_image(several, ReadOptions(npz_key="mask")).meta["key"] == "mask"
    out = tmp_path / "o" / "several.npz"
    out.parent.mkdir()
    save_image(out, image.data, image)
    with np.load(out) as archive:
        assert archive.files == ["image"]
    ambiguous = tmp_path / "ambiguous.npz"
    np.savez(ambiguous, a=vol, b=vol)
    with pytest.raises(C2SInputError, match="ambiguous.npz: npz archive holds arrays a, b; name one"):
        load_image(ambiguous)
    with pytest.raises(C2SInputError, match="has no array 'c'"):
        load_image(ambiguous, ReadOptions(npz_key="c"))


def test_numpy_crop_writes_cropped_output(tmp_path: Path) -> None:
    source = tmp_path / "x.npy"
    np.save(source, known_volume(1, 12, 12)[0])
    image = load_image(source, ReadOptions(crop=(8, 6)))
    assert image.data.shape == (1, 8, 6)
    out = tmp_path / "o" / "x.npy"
    out.parent.mkdir()
    save_image(out, image.data, image)
    assert np.load(out).shape == (8, 6)


# ----------------------------------------------------------------------------- output safety
def test_save_refuses_existing_output_and_input_path(tmp_path: Path) -> None:
    source = tmp_path / "x.npy"
    np.save(source, np.ones((4, 4), np.float32))
    image = load_image(source)
    with pytest.raises(C2SInputError, match="output would overwrite an input file"):
        save_image(source, image.data, image, overwrite=True)
    assert np.array_equal(np.load(source), np.ones((4, 4)))
    out = tmp_path / "y.npy"
    out.write_bytes(b"keep me")
    with pytest.raises(C2SInputError, match=r"y\.npy: output exists; pass overwrite=True"):
        save_image(out, image.data, image)
    assert out.read_bytes() == b"keep me"
    save_image(out, image.data * 2, image, overwrite=True)
    assert np.array_equal(np.load(out), 2 * np.ones((4, 4)))
    with pytest.raises(C2SInputError, match="does not match the input format 'npy'"):
        save_image(tmp_path / "z.h5", image.data, image)
    with pytest.raises(ValueError, match="differs from the source shape"):
        save_image(tmp_path / "w.npy", image.data[:, :2], image)
    assert leftovers(tmp_path) == []


def test_atomic_write_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "result.h5"
    for exc in (RuntimeError("disk on fire"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with atomic_write(target) as tmp:
                assert tmp.parent == tmp_path
                assert tmp.name.startswith(TEMP_PREFIX) and tmp.name.endswith(".h5") and len(tmp.name) <= 32
                with h5py.File(tmp, "w") as handle:
                    handle.create_dataset("reconstruction", data=np.ones((2, 4, 4)))
                raise exc
        assert not target.exists()
        assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_file_on_error_and_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "model.joblib"
    target.write_bytes(b"old")
    with pytest.raises(C2SInputError, match="output exists"):
        with atomic_write(target):
            pass
    with pytest.raises(OSError):
        with atomic_write(target, overwrite=True) as tmp:
            tmp.write_bytes(b"half")
            raise OSError("no space left")
    assert target.read_bytes() == b"old"
    with atomic_write(target, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.joblib"]
    with pytest.raises(C2SInputError, match="output folder does not exist"):
        with atomic_write(tmp_path / "nope" / "x.npy"):
            pass


def test_atomic_write_does_not_clobber_a_file_that_appeared_meanwhile(tmp_path: Path) -> None:
    target = tmp_path / "race.npy"
    with pytest.raises(C2SInputError, match="output exists"):
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"mine")
            target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


def test_loaded_image_defaults() -> None:
    image = LoadedImage(np.zeros((1, 2, 2), np.float32), "npy")
    assert image.meta == {} and image.m4raw is None


# ----------------------------------------------------------------------------- PNG
def _decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks.setdefault(kind, b"")
        chunks[kind] += payload
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour, interlace) == (8, 0, 0)
    assert b"IEND" in chunks
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, width + 1)
    assert np.all(raw[:, 0] == 0)
    return raw[:, 1:]


def test_png_round_trip(tmp_path: Path) -> None:
    pixels = np.arange(35, dtype=np.uint8).reshape(5, 7) * 7
    np.testing.assert_array_equal(_decode_png(encode_png(pixels)), pixels)
    image = np.linspace(-1, 2, 12).reshape(3, 4)
    out = write_png(tmp_path / "fig.png", image, vmin=0.0, vmax=1.0, zoom=2)
    decoded = _decode_png(out.read_bytes())
    assert decoded.shape == (6, 8)
    assert decoded.min() == 0 and decoded.max() == 255
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2, 3), np.uint8))


# ----------------------------------------------------------------------------- phantom and metrics
def test_phantom_is_deterministic_brain_like() -> None:
    a = brain_phantom((64, 64))
    assert a.shape == (64, 64)
    assert np.array_equal(a, brain_phantom((64, 64)))
    assert not np.array_equal(a, brain_phantom((64, 64), seed=1))
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert a[0, 0] == 0.0 and a[32, 32] > 0.0  # background and head
    assert len(np.unique(np.round(a, 2))) > 20  # several tissues and partial volumes
    vol = brain_phantom((5, 32, 48))
    assert vol.shape == (5, 32, 48) and np.isfinite(vol).all()
    assert not np.array_equal(vol[0], vol[2])
    with pytest.raises(ValueError):
        brain_phantom((4,))


def test_psnr_and_ssim() -> None:
    ref = brain_phantom((2, 32, 32))
    assert psnr(ref, ref) == float("inf")
    assert ssim(ref, ref) == pytest.approx(1.0)
    noisy = ref + 0.1 * np.random.default_rng(0).standard_normal(ref.shape)
    expected = 10 * np.log10((ref.max() - ref.min()) ** 2 / np.mean((noisy - ref) ** 2))
    assert psnr(noisy, ref) == pytest.approx(expected)
    assert 0.0 < ssim(noisy, ref) < 0.9
    with pytest.raises(ValueError):
        psnr(ref, ref[:1])


def test_ssim_matches_scikit_image() -> None:
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is not installed (optional cross-check)")
    ref = brain_phantom((40, 36))
    noisy = ref + 0.1 * np.random.default_rng(2).standard_normal(ref.shape)
    expected = metrics.structural_similarity(
        noisy, ref, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=ref.max() - ref.min()
    )
    assert ssim(noisy, ref) == pytest.approx(expected, rel=1e-9)
