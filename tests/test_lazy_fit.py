"""Fitting on lazily read volumes (HDF5 datasets, memory maps) and ``fit --stream``: the same model, bounded memory."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import make_phantoms
from typer.testing import CliRunner

from c2s_denoise import C2SDenoiser
from c2s_denoise.cli.commands import app
from c2s_denoise.estimator._lazy_layouts import LazySlice, is_lazy
from c2s_denoise.physics.phantom import brain_phantom
from c2s_denoise.physics.simulate import simulate_multicoil

TINY = dict(max_iter=12, width=8, patch_size=24, batch_size=4, random_state=0)

try:  # Click < 8.2 mixes stderr into stdout unless told not to
    runner = CliRunner(mix_stderr=False)
except TypeError:
    runner = CliRunner()


def _weights(model: C2SDenoiser) -> list[torch.Tensor]:
    return list(model.network_.state_dict().values())


def _same_network(a: C2SDenoiser, b: C2SDenoiser) -> bool:
    return all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(b), strict=True))


@pytest.fixture(scope="module")
def volumes() -> list[np.ndarray]:
    clean = make_phantoms(5, 40, seed=8)
    noisy = (clean + 0.1 * np.random.default_rng(9).standard_normal(clean.shape)).astype(np.float32)
    return [noisy[:3], noisy[3:]]


@pytest.mark.parametrize(("sigma", "context_slices"), [(0.1, 1), ("auto", 0)])
def test_hdf5_datasets_and_memory_maps_train_the_same_network_as_arrays(
    volumes: list[np.ndarray], tmp_path: Path, sigma: object, context_slices: int
) -> None:
    in_memory = C2SDenoiser(sigma=sigma, context_slices=context_slices, **TINY).fit(volumes)
    np.save(tmp_path / "first.npy", volumes[0])
    with h5py.File(tmp_path / "volumes.h5", "w") as handle:
        handle["second"] = volumes[1]
    with h5py.File(tmp_path / "volumes.h5", "r") as handle:
        lazy = [np.load(tmp_path / "first.npy", mmap_mode="r"), handle["second"]]
        assert all(is_lazy(volume) for volume in lazy)
        streamed = C2SDenoiser(sigma=sigma, context_slices=context_slices, **TINY).fit(lazy)
    assert _same_network(in_memory, streamed)
    np.testing.assert_array_equal(streamed.sigma_, in_memory.sigma_)
    np.testing.assert_array_equal(streamed.scales_, in_memory.scales_)
    assert list(streamed.sigma_methods_) == list(in_memory.sigma_methods_)
    assert streamed.noise_model_ == in_memory.noise_model_


def test_magnitude_volumes_read_lazily_are_stabilised_as_arrays_are(volumes: list[np.ndarray], tmp_path: Path) -> None:
    """Rician volumes take the variance-stabilised path window by window: the same network as from arrays."""
    magnitude = [np.abs(volume) for volume in volumes]
    in_memory = C2SDenoiser(context_slices=1, n_coils=1, **TINY).fit(magnitude)
    assert in_memory.noise_model_ == "rician" and in_memory.magnitude_correction_ == "vst"
    with h5py.File(tmp_path / "magnitude.h5", "w") as handle:
        for index, volume in enumerate(magnitude):
            handle[f"v{index}"] = volume
    with h5py.File(tmp_path / "magnitude.h5", "r") as handle:
        streamed = C2SDenoiser(context_slices=1, n_coils=1, **TINY).fit([handle["v0"], handle["v1"]])
    assert _same_network(in_memory, streamed)
    unstabilised = C2SDenoiser(context_slices=1, n_coils=1, magnitude_correction="mean", **TINY).fit(magnitude)
    assert not _same_network(in_memory, unstabilised)  # the stabilisation reached the network's inputs


def test_complex_hdf5_datasets_train_the_same_network(volumes: list[np.ndarray], tmp_path: Path) -> None:
    complex_volumes = [(v + 1j * np.roll(v, 5, axis=-1)).astype(np.complex64) for v in volumes]
    in_memory = C2SDenoiser(sigma=0.1, **TINY).fit(complex_volumes)
    with h5py.File(tmp_path / "complex.h5", "w") as handle:
        for index, volume in enumerate(complex_volumes):
            handle[f"v{index}"] = volume
    with h5py.File(tmp_path / "complex.h5", "r") as handle:
        streamed = C2SDenoiser(sigma=0.1, **TINY).fit([handle["v0"], handle["v1"]])
    assert streamed.complex_input_ and _same_network(in_memory, streamed)


def test_lazy_slice_reads_only_the_patch_it_is_asked_for(volumes: list[np.ndarray]) -> None:
    class CountingVolume:
        """A volume that records every window read from it."""

        def __init__(self, array: np.ndarray) -> None:
            self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, []

        def __getitem__(self, key):
            self.reads.append(key)
            return self.array[key]

    volume = CountingVolume(volumes[0])
    assert is_lazy(volume)
    lazy = LazySlice(volume, 0, [(0, 0), (0, -1), (0, 1)], 2.0)  # slice 0 with its neighbours (-1 mirrored to 1)
    patch = lazy[:, 3:11, 5:9]
    assert lazy.shape == (3, 40, 40) and patch.shape == (3, 8, 4) and patch.dtype == torch.float32
    assert volume.reads == [(0, slice(3, 11), slice(5, 9)), (1, slice(3, 11), slice(5, 9))]  # slice 1 read once
    np.testing.assert_array_equal(patch[1].numpy(), (volumes[0][1, 3:11, 5:9] / 2.0).astype(np.float32))


def test_lazy_volumes_are_checked_like_arrays(volumes: list[np.ndarray], tmp_path: Path) -> None:
    bad = volumes[1].copy()
    bad[0, 2, 2] = np.nan
    with h5py.File(tmp_path / "bad.h5", "w") as handle:
        handle["bad"] = bad
    with h5py.File(tmp_path / "bad.h5", "r") as handle, pytest.raises(ValueError, match=r"X\[1\].*NaN"):
        C2SDenoiser(sigma=0.1, **TINY).fit([volumes[0], handle["bad"]])
    with pytest.raises(ValueError, match="mixes complex and real"):
        np.save(tmp_path / "c.npy", volumes[0].astype(np.complex64))
        C2SDenoiser(sigma=0.1, **TINY).fit([np.load(tmp_path / "c.npy", mmap_mode="r"), volumes[1]])


def test_cli_fit_stream_on_kspace_gives_the_same_model_and_leaves_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = []
    for index in range(2):
        scan = simulate_multicoil(brain_phantom((2, 48, 48), seed=index), n_coils=4, sigma=0.05, seed=20 + index)
        with h5py.File(tmp_path / f"k{index}.h5", "w") as handle:
            handle["kspace"] = scan.kspace.astype(np.complex64)
        files.append(str(tmp_path / f"k{index}.h5"))
    cache_folder = tmp_path / "tmp"
    cache_folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(cache_folder))
    options = ["--max-iter", "12", "--width", "8", "--patch-size", "24", "--batch-size", "4", "--seed", "0"]
    fitted = {}
    for name, extra in (("memory", []), ("stream", ["--stream"])):
        result = runner.invoke(app, ["fit", *files, "-o", str(tmp_path / f"{name}.c2s"), *options, *extra])
        assert result.exit_code == 0, result.output
        fitted[name] = json.loads(result.stdout)
    assert fitted["stream"]["inputs"] == fitted["memory"]["inputs"]  # complex images, shapes, noise level 1
    assert fitted["stream"]["sigma"] == fitted["memory"]["sigma"] == [1.0, 1.0]
    models = {name: C2SDenoiser.load(tmp_path / f"{name}.c2s") for name in fitted}
    assert _same_network(models["memory"], models["stream"])
    assert list(cache_folder.iterdir()) == []  # the cache is removed


def test_stream_keeps_no_volume_sized_array_in_memory(tmp_path: Path) -> None:
    from c2s_denoise.io.volume_cache import VolumeCache
    from c2s_denoise.workflows.fit import _prepare

    scan = simulate_multicoil(brain_phantom((2, 32, 32), seed=0), n_coils=4, sigma=0.05, seed=1)
    with h5py.File(tmp_path / "k.h5", "w") as handle:
        handle["kspace"] = scan.kspace.astype(np.complex64)
    with VolumeCache(tmp_path) as cache:
        prepared = _prepare([tmp_path / "k.h5"], tmp_path / "m.c2s", {}, None, False, None, None, False, 0, cache)
        (image,) = prepared[4]
        assert isinstance(image.data, h5py.Dataset) and image.meta["combine"] == "complex"
        arrays = [value for value in image.meta.values() if isinstance(value, np.ndarray)]
        assert all(array.size <= 4 * 4 for array in arrays)  # the coil covariance at most


def test_cli_fit_stream_refuses_contrasts(tmp_path: Path, volumes: list[np.ndarray]) -> None:
    np.save(tmp_path / "t1.npy", volumes[0])
    np.save(tmp_path / "t2.npy", volumes[0])
    args = ["fit", "--contrast", f"T1={tmp_path / 't1.npy'}", "--contrast", f"T2={tmp_path / 't2.npy'}"]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "m.c2s"), "--stream"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --stream trains single-contrast models; give the files without contrasts"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t1.npy", "t2.npy"]
