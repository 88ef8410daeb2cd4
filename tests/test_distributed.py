"""Distributed training: ``torchrun`` with DistributedDataParallel (gloo on CPU), and failing ranks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_phantoms, psnr

from c2s_denoise import C2SDenoiser
from c2s_denoise.engine.distributed import rank, rank_seed, world_size

REPO = Path(__file__).resolve().parents[1]
TINY = [
    *("--max-iter", "20", "--width", "8", "--patch-size", "32", "--batch-size", "4", "--seed", "0", "--sigma", "0.1"),
    *("--context-slices", "0"),  # the files hold separate images, not slices of one volume
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two noisy training volumes (sigma = 0.1) and the clean images."""
    root = tmp_path_factory.mktemp("ddp")
    clean = make_phantoms(4, 48, seed=3)
    noisy = clean + 0.1 * np.random.default_rng(4).standard_normal(clean.shape)
    np.save(root / "a.npy", noisy[:2])
    np.save(root / "b.npy", noisy[2:])
    return {"root": root, "a": root / "a.npy", "b": root / "b.npy", "clean": clean, "noisy": noisy}


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _torchrun(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    command = [torchrun, "--nproc-per-node", "2", "-m", "c2s_denoise", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=cwd, timeout=300)


def _two_ranks(*args: object, cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run ``python *args`` as ranks 0 and 1 of one gloo group (what torchrun sets up), each process on its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ranks = []
    for index in range(2):
        env = {
            **_env(),
            "RANK": str(index),
            "LOCAL_RANK": str(index),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        command = [sys.executable, *map(str, args)]
        ranks.append(
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
        )
    finished = []
    for process in ranks:
        stdout, stderr = process.communicate(timeout=300)
        finished.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return finished


def _weights(model: C2SDenoiser) -> list[torch.Tensor]:
    return list(model.network_.state_dict().values())


def test_torchrun_trains_one_model_written_by_rank_0(files: dict[str, Path], tmp_path: Path) -> None:
    runs = []
    for name in ("first", "second"):
        out = tmp_path / name
        proc = _torchrun("fit", files["a"], files["b"], "-o", out / "model.c2s", *TINY, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)  # one summary: rank 0 reports, rank 1 prints nothing
        assert summary["model"] == str(out / "model.c2s") and summary["n_iter"] == 20
        assert sorted(p.name for p in out.iterdir()) == ["model.c2s"]  # no other file, no temporary left
        runs.append(C2SDenoiser.load(out / "model.c2s"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "second"]
    for first, second in zip(_weights(runs[0]), _weights(runs[1]), strict=True):  # same seed, same world size
        assert torch.equal(first, second)
    alone = C2SDenoiser(sigma=0.1, max_iter=20, width=8, patch_size=32, batch_size=4, random_state=0, context_slices=0)
    alone.fit([np.load(files["a"]), np.load(files["b"])])
    assert any(not torch.equal(a, b) for a, b in zip(_weights(runs[0]), _weights(alone)))  # 2 ranks: 2x patches
    noisy, clean = files["noisy"], files["clean"]
    assert psnr(clean, runs[0].transform(noisy)) > psnr(clean, noisy) + 1.0  # the model denoises


@pytest.mark.parametrize(
    ("mode", "rank_0_says"),
    [
        ("read", "error: rank(s) 1 of 2 failed while reading the inputs"),
        ("train", "error: distributed training stopped on rank 0 of 2 while training"),
    ],
)
def test_a_failing_rank_stops_every_rank(files: dict[str, Path], tmp_path: Path, mode: str, rank_0_says: str) -> None:
    model = tmp_path / "model.c2s"
    args = ["fit", files["a"], files["b"], "-o", model, *TINY]
    rank_0, rank_1 = _two_ranks(REPO / "tests" / "_rank_failure.py", mode, *args, cwd=tmp_path)
    for proc in (rank_0, rank_1):
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout == ""
        assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1, proc.stderr
        assert "Traceback" not in proc.stderr
    assert rank_0_says in rank_0.stderr
    rank_1_says = "missing.npy: file not found" if mode == "read" else "simulated failure of rank 1 in step 5"
    assert rank_1_says in rank_1.stderr
    assert list(tmp_path.iterdir()) == []  # no model, no temporary file


def _relative_difference(first: list[torch.Tensor], second: list[torch.Tensor]) -> float:
    flat = [torch.cat([tensor.flatten() for tensor in tensors]) for tensors in (first, second)]
    return float((flat[0] - flat[1]).norm() / flat[1].norm())


def _ddp_run(tmp_path: Path, dtype: str, *steps: int) -> dict:
    """Rank 0's results of ``_ddp_gradient.py`` on two ranks, checked to agree with rank 1's."""
    ranks = _two_ranks(REPO / "tests" / "_ddp_gradient.py", tmp_path / "out.pt", dtype, *steps, cwd=tmp_path)
    for proc in ranks:
        assert proc.returncode == 0, proc.stderr
    rank_0, rank_1 = (torch.load(tmp_path / f"out.pt.{index}") for index in range(2))
    assert rank_0["seed"] != rank_1["seed"]  # each rank draws its own patches
    for count in steps:
        for name in ("gradient", "weights", "ema"):
            for first, second in zip(rank_0[count][name], rank_1[count][name], strict=True):
                assert torch.equal(first, second)  # every rank holds the same weights
    rank_0["seeds"] = [rank_0["seed"], rank_1["seed"]]
    return rank_0


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_ddp_training_is_single_process_training_on_the_union_of_the_ranks_batches(tmp_path: Path, dtype: str) -> None:
    """2 ranks x batch 4 train as 1 process on the 8 patches (catches scaling bugs under DDP).

    One step: each rank's gradient is that of the mean loss over its 4 patches; the loss of the 8
    is the mean of the two means, so its gradient is the mean of the two single-process gradients,
    each computed here from the same generator seed as the rank's. A whole fit of 120 steps (AdamW,
    the warm-up/cosine schedule, clipping, the EMA, two windows of the divergence guard): one
    process trained on the union of the ranks' batches, each half drawn from that rank's
    generator, changes the weights and their EMA as the ranks do.
    """
    from _ddp_gradient import initial_weights, train, train_on_union

    torch_dtype = getattr(torch, dtype)
    ddp = _ddp_run(tmp_path, dtype, 1, 120)
    alone = [train(torch_dtype, 1, torch.Generator().manual_seed(seed))["gradient"] for seed in ddp["seeds"]]
    assert any(not torch.allclose(a, b) for a, b in zip(*alone))  # different patches, different gradients
    tolerance = 1e-5 if dtype == "float32" else 1e-2  # bfloat16: thread counts change the rounding
    assert _relative_difference(ddp[1]["gradient"], [(a + b) / 2 for a, b in zip(*alone)]) <= tolerance
    union = train_on_union(torch_dtype, 120, ddp["seeds"])
    for name in ("weights", "ema"):  # what training changed
        changes = [[after - before for after, before in zip(run[name], initial_weights())] for run in (ddp[120], union)]
        assert _relative_difference(*changes) <= 10 * tolerance  # Adam divides by small moments


def test_one_process_is_not_distributed() -> None:
    assert (rank(), world_size(), rank_seed(7)) == (0, 1, 7)


def test_an_indexed_gpu_under_torchrun_is_one_error_line_and_nothing_written(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--device cuda:1`` with several ranks would put them all on GPU 1: refused before anything runs."""
    from typer.testing import CliRunner

    from c2s_denoise.cli.commands import app

    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets; the guard acts before joining a group
    model = tmp_path / "model.c2s"
    result = CliRunner().invoke(app, ["fit", str(files["a"]), "-o", str(model), *TINY, "--device", "cuda:1"])
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "every rank on that one GPU" in errors[0] and "--device cuda" in errors[0], (
        result.output
    )
    assert not model.exists() and list(tmp_path.iterdir()) == []
