"""Only the command line names flags: the parameters a library message names become flags.

The library writes ``overwrite=True``, ``combine='rss'``, ``spatial_dims=2`` or ``sigma=...``;
``c2s-denoise`` prints ``--overwrite``, ``--combine rss``, ``--dims 2`` and ``--sigma``. Also: the
read options, declared once, reach the workflows as one ``ReadOptions``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer.main
from test_cli import TINY, invoke

from c2s_denoise import workflows
from c2s_denoise.cli import app
from c2s_denoise.cli.flags import ALIASES, as_flags, flag_table
from c2s_denoise.io import C2SInputError, ReadOptions


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("output exists; pass overwrite=True to replace it", "output exists; pass --overwrite to replace it"),
        ("pass trust_pickle=True only for files you trust", "pass --trust-pickle only for files you trust"),
        ("use combine='rss', the default with contrasts", "use --combine rss, the default with contrasts"),
        ('read all as magnitude with combine="complex"', "read all as magnitude with --combine complex"),
        ("or fit slice by slice with spatial_dims=2", "or fit slice by slice with --dims 2"),
        ("a 3-D network (spatial_dims=3) learns from voxels", "a 3-D network (--dims 3) learns from voxels"),
        ("use context_slices=0.", "use --context-slices 0."),
        ("use device='cuda' under torchrun", "use --device cuda under torchrun"),
        ("name one with npz_key=...", "name one with --npz-key"),
        (
            "give the files by contrast (contrasts=..., or group_by_study=True)",
            "give the files by contrast (--contrast NAME=PATH, or --group-by-study)",
        ),
        ("check sigma=..., tau_max=... and learning_rate=...", "check --sigma, --tau-max and --learning-rate"),
        ("save_complex=True needs complex images", "--save-complex needs complex images"),
        ("the seed random_state=3", "the seed --seed 3"),
        ("NIfTI slice_axis=-1, dataset='kspace'", "NIfTI --slice-axis -1, --h5-dataset kspace"),
        ("with contrasts='T1,T2'", "with --contrasts T1,T2"),
        ("sigma='local' estimates a noise map per pixel", "--noise-map auto estimates a noise map per pixel"),
        ("or sigma=0.05", "or --sigma 0.05"),
    ],
)
def test_parameters_become_flags(message: str, expected: str) -> None:
    assert as_flags(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        "sigma has no entry for contrast 'T2'",  # a parameter's name alone is a word
        "the noise level sigma = 0.05 is too high",  # not name=value
        "depth=3 needs volumes of at least 4 slices",  # not an option
        "overwrite=False keeps the file",  # a flag takes no other value
        "verbose=2",  # a counter, not an option with a value
        "sigma=True",  # an option with a value, given none
        "n_coils=N if the images are root-sum-of-squares",  # not a value
        "/data/overwrite=True.npy: output exists",  # inside a path
        "x.overwrite=True and foo_overwrite=True",  # inside another name
        "--overwrite and --combine rss",  # flags already
        "",
    ],
)
def test_other_text_is_untouched(message: str) -> None:
    assert as_flags(message) == message


def test_the_flags_are_the_applications() -> None:
    """Every option's Python name maps to its first long name; the aliases to their option's."""
    table = flag_table()
    for command in typer.main.get_command(app).commands.values():  # type: ignore[attr-defined]
        for param in command.params:
            if param.param_type_name == "option":
                assert table[param.name] == next(o for o in param.opts if o.startswith("--")), param.name
    assert {name: table[name] for name in ALIASES} == {
        "spatial_dims": "--dims",
        "random_state": "--seed",
        "dataset": "--h5-dataset",
        "references": "--reference",
        "out_dir": "--out",
    }


# ----------------------------------------------------------------------------- end to end
@pytest.fixture()
def image(tmp_path: Path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).random((32, 32)).astype(np.float32))
    return path


def test_existing_output_names_the_flag(image: Path, tmp_path: Path) -> None:
    target = tmp_path / "m.c2s"
    target.write_bytes(b"old model")
    result = invoke("fit", image, "-o", target, *TINY)
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert message.startswith(f"error: {target}: ") and "\n" not in message, message
    assert "--overwrite" in message and "overwrite=" not in message, message
    assert target.read_bytes() == b"old model"


def test_every_error_line_names_flags(image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def known(*args, **kwargs):
        raise C2SInputError(image, "pass overwrite=True, or use combine='rss' with spatial_dims=2")

    def stray(*args, **kwargs):
        raise RuntimeError("device='cuda' is not available")

    monkeypatch.setattr(workflows, "apply_files", known)
    result = invoke("apply", tmp_path / "m.c2s", image, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {image}: pass --overwrite, or use --combine rss with --dims 2"
    monkeypatch.setattr(workflows, "estimate_noise_files", stray)
    result = invoke("estimate-noise", image)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: RuntimeError: --device cuda is not available (run with -v")


def test_read_options_reach_the_workflows(image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declared once for every command that reads files; ``evaluate`` reads magnitude images (no --combine)."""
    seen: dict[str, ReadOptions] = {}

    def record(name: str):
        def workflow(*args, read_options: ReadOptions, **kwargs):
            seen[name] = read_options
            return {"results": [], "mean_psnr": None, "mean_ssim": None}

        return workflow

    for name in ("apply_files", "evaluate_files", "estimate_noise_files"):
        monkeypatch.setattr(workflows, name, record(name))
    read = ["--crop", "16x8", "--slice-axis", "0", "--npz-key", "image", "--h5-dataset", "kspace"]
    invoke("apply", tmp_path / "m.c2s", image, "-o", tmp_path / "out", *read, "--combine", "complex")
    invoke("evaluate", image, "-r", image, *read)
    invoke("estimate-noise", image, *read)
    given = {"crop": (16, 8), "slice_axis": 0, "npz_key": "image", "dataset": "kspace"}
    assert seen == {
        "apply_files": ReadOptions(**given, combine="complex"),
        "evaluate_files": ReadOptions(**given, combine="rss"),
        "estimate_noise_files": ReadOptions(**given),  # --combine auto
    }
    result = invoke("estimate-noise", image, "--combine", "sideways")
    assert result.exit_code == 2 and "unknown combine mode 'sideways'" in result.output
