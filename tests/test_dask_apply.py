"""``apply --scheduler``: the per-file work on a Dask cluster, byte for byte what the local path writes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from _mri_files import known_volume, write_fastmri
from conftest import make_phantoms
from dask import distributed  # installed by the dev extra
from typer.testing import CliRunner

from c2s_denoise import C2SDenoiser
from c2s_denoise.cli.commands import app

try:  # Click < 8.2 mixes stderr into stdout unless told not to
    runner = CliRunner(mix_stderr=False)
except TypeError:
    runner = CliRunner()


@pytest.fixture(scope="module")
def cluster():
    """A local Dask cluster of two worker processes with one thread each."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env={"OMP_NUM_THREADS": "1"}
    ) as local:
        yield local


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny model, three NumPy volumes and a fastMRI-style magnitude file to denoise."""
    root = tmp_path_factory.mktemp("dask")
    rng = np.random.default_rng(5)
    noisy = make_phantoms(3, 40, seed=6) + 0.1 * rng.standard_normal((3, 40, 40))
    inputs = root / "in"
    inputs.mkdir()
    for index, image in enumerate(noisy):
        np.save(inputs / f"scan{index}.npy", image[None].astype(np.float32))
    volume = known_volume(2, 32, 32, seed=7) + 0.05 * rng.standard_normal((2, 32, 32)).astype(np.float32)
    write_fastmri(inputs / "knee.h5", np.abs(volume), with_kspace=False, reconstruction={"reconstruction_rss": volume})
    model = root / "model.c2s"
    C2SDenoiser(sigma=0.1, max_iter=10, width=8, patch_size=24, batch_size=4, random_state=0).fit(noisy).save(model)
    return {"root": root, "model": model, "inputs": sorted(inputs.iterdir())}


def _apply(model: Path, inputs: list[Path], out: Path, *options: str) -> dict:
    result = runner.invoke(app, ["apply", str(model), *map(str, inputs), "-o", str(out), *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_apply_on_a_dask_cluster_writes_what_the_local_path_writes(
    files: dict[str, Path], cluster, tmp_path: Path
) -> None:
    local = _apply(files["model"], files["inputs"], tmp_path / "local")
    remote = _apply(files["model"], files["inputs"], tmp_path / "dask", "--scheduler", cluster.scheduler_address)
    names = sorted(path.name for path in files["inputs"])
    assert sorted(path.name for path in (tmp_path / "dask").iterdir()) == names  # nothing else, no temporary
    for name in names:
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    for summary in (local, remote):
        summary.pop("outdir")
        for entry in summary["outputs"]:
            entry["output"] = Path(entry["output"]).name
            entry.pop("seconds")
    assert remote == local  # same summary apart from the folder and the timings


def test_unreachable_scheduler_is_one_error_line_and_nothing_written(files: dict[str, Path], tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    out = tmp_path / "out"
    options = ["--scheduler", address, "--scheduler-timeout", "1"]
    result = runner.invoke(app, ["apply", str(files["model"]), *map(str, files["inputs"]), "-o", str(out), *options])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: cannot reach the Dask scheduler at {address} within 1 s (")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_scheduler_and_n_jobs_exclude_each_other(files: dict[str, Path], tmp_path: Path) -> None:
    options = ["--scheduler", "tcp://127.0.0.1:8786", "--n-jobs", "2"]
    result = runner.invoke(app, ["apply", str(files["model"]), str(files["inputs"][0]), "-o", str(tmp_path), *options])
    assert result.exit_code == 2
    assert "--n-jobs is for one machine" in result.stderr
