"""The safe model file (safetensors + JSON), pickles refused, interrupted fits, warm start and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from test_cli import REPO, invoke, summary

from c2s_denoise import C2SDenoiser
from c2s_denoise.estimator.model_file import FORMAT_NAME
from c2s_denoise.io import C2SInputError
from c2s_denoise.workflows import load_model, save_model

TINY = dict(width=4, depth=2, max_iter=3, batch_size=2, patch_size=8, device="cpu", random_state=0, n_coils=1)
CLI_TINY = ["--max-iter", "6", "--width", "4", "--patch-size", "16", "--batch-size", "2", "--seed", "0"]


def images(seed: int = 0, n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.5 + 0.2 * np.sin(np.arange(16) / 3.0)[None, None, :] + 0.05 * rng.standard_normal((n, 16, 16))


def document(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["c2s_denoise_model"])


class Exploit:
    """A pickle that runs code when loaded: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ----------------------------------------------------------------------------- the format
@pytest.mark.parametrize("kind", ["single", "contrasts", "complex"])
def test_save_load_round_trip_is_bitwise(kind: str, tmp_path: Path) -> None:
    X: object = images()
    params = dict(TINY)
    if kind == "contrasts":
        X = [np.stack([images(0), 2.0 * images(1)])]  # one volume (contrasts, D, H, W)
        params.update(contrasts=("T1", "T2"), target_contrasts=("T2",), context_slices=1, sigma={"T1": 0.05, "T2": 0.1})
    elif kind == "complex":
        X = images(0) + 1j * images(1)
    model = C2SDenoiser(**params).fit(X)
    path = model.save(tmp_path / "m.c2s")
    loaded = C2SDenoiser.load(path)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert loaded.get_params() == model.get_params()
    for name in ("sigma_", "scales_", "sigma_methods_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
        assert getattr(loaded, name).dtype == getattr(model, name).dtype
    assert (loaded.n_iter_, loaded.loss_curve_, loaded.noise_model_) == (
        model.n_iter_,
        model.loss_curve_,
        model.noise_model_,
    )
    assert loaded.complex_input_ is (kind == "complex") and loaded.interrupted_ is False
    saved = document(path)
    assert saved["format"] == FORMAT_NAME and saved["partial"] is False
    assert saved["torch_version"] == torch.__version__ and len(saved["tensors_sha256"]) == 64
    names = load_file(path)
    assert all(name.startswith("networks.0.") for name in names)
    if kind == "contrasts":
        assert loaded.target_contrasts_ == ("T2",) and list(loaded.networks_) == ["T2"]
        assert [n["contrast"] for n in saved["networks"]] == ["T2"]


def test_workflow_save_writes_the_safe_format_whatever_the_name(tmp_path: Path) -> None:
    model = C2SDenoiser(**TINY).fit(images())
    path = save_model(model, tmp_path / "model.joblib")
    assert document(path)["format"] == FORMAT_NAME
    np.testing.assert_array_equal(load_model(path).transform(images(2)), model.transform(images(2)))


def test_numpy_parameter_values_are_saved_as_json(tmp_path: Path) -> None:
    model = C2SDenoiser(**{**TINY, "width": np.int64(4), "image_shape": (np.int64(4), np.int64(16))})
    model.fit(images().reshape(3, -1)[:, :64])
    loaded = C2SDenoiser.load(model.save(tmp_path / "m.c2s"))
    assert loaded.width == 4 and loaded.image_shape == (4, 16) and loaded.n_features_in_ == 64
    np.testing.assert_array_equal(
        loaded.transform(images(1).reshape(3, -1)[:, :64]), model.transform(images(1).reshape(3, -1)[:, :64])
    )


def _rewrite(path: Path, target: Path, change) -> Path:
    """A copy of the model file with its tensors or JSON document changed by ``change(tensors, doc)``."""
    tensors, doc = load_file(path), document(path)
    change(tensors, doc)
    save_file(tensors, target, metadata={"c2s_denoise_model": json.dumps(doc)})
    return target


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t, d: t["networks.0.head.1.weight"].add_(1e-3), "do not match their checksum"),
        (lambda t, d: d["params"].update(width="wide"), "InvalidParameterError"),
        (lambda t, d: d["params"].update(evil=1), "unknown parameters ['evil']"),
        (lambda t, d: d["params"].update(sigma=[{"a": 1}]), "sigma holds a value of the wrong type"),
        (lambda t, d: d["fitted"].update(n_iter_="3"), "n_iter_ has the wrong type"),
        (lambda t, d: d["fitted"].pop("sigma_"), "missing fitted attributes"),
        (lambda t, d: d["fitted"]["sigma_"].update(dtype="object"), "sigma_ is not an array"),
        (lambda t, d: d.update(format="other"), "not a c2s-denoise model file"),
        (lambda t, d: d.update(format_version=99), "newer than this c2s-denoise"),
        (lambda t, d: d["networks"][0]["config"].update(width=4096), "do not fit its config"),
        (lambda t, d: [t.clear(), d["networks"].clear()], "no network"),
    ],
)
def test_invalid_model_files_are_clear_errors(change, problem: str, tmp_path: Path) -> None:
    path = C2SDenoiser(**TINY).fit(images()).save(tmp_path / "m.c2s")
    if "checksum" not in problem:  # keep the checksum right: the check under test comes after it
        original = change

        def change(tensors, doc):
            original(tensors, doc)
            from c2s_denoise.estimator.model_file import tensors_sha256

            doc["tensors_sha256"] = tensors_sha256(tensors)

    bad = _rewrite(path, tmp_path / "bad.c2s", change)
    with pytest.raises(C2SInputError) as info:
        C2SDenoiser.load(bad)
    assert str(bad) in str(info.value) and problem in str(info.value), str(info.value)


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    path = C2SDenoiser(**TINY).fit(images()).save(tmp_path / "m.c2s")
    torn = tmp_path / "torn.c2s"
    torn.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    for bad, problem in ((torn, "not a readable model file"), (foreign, "without c2s-denoise metadata")):
        with pytest.raises(C2SInputError, match=problem) as info:
            C2SDenoiser.load(bad)
        assert str(bad) in str(info.value)


# ----------------------------------------------------------------------------- pickles
def test_a_malicious_pickle_is_refused_by_load_model_and_apply(tmp_path: Path) -> None:
    marker = tmp_path / "owned"
    evil = tmp_path / "evil.joblib"
    joblib.dump(Exploit(marker), evil)
    with pytest.raises(C2SInputError, match="is a pickled model; pickles can run code when loaded"):
        load_model(evil)
    with pytest.raises(C2SInputError):
        C2SDenoiser.load(evil)
    scan = tmp_path / "scan.npy"
    np.save(scan, images())
    for command in (
        ["apply", evil, scan, "-o", tmp_path / "out"],
        ["fit", scan, "-o", tmp_path / "m.c2s", "--resume", evil],
    ):
        result = invoke(*command)
        assert result.exit_code == 1, result.output
        assert "--trust-pickle" in result.stderr and str(evil) in result.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_trusted_pickles_still_load(tmp_path: Path) -> None:
    model = C2SDenoiser(**TINY).fit(images())
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)  # the scikit-learn way keeps working, for trusted files
    loaded = load_model(path, trust_pickle=True)
    np.testing.assert_array_equal(loaded.transform(images(1)), model.transform(images(1)))
    scan = tmp_path / "scan.npy"
    np.save(scan, images(1))
    assert invoke("apply", path, scan, "-o", tmp_path / "refused").exit_code == 1
    assert summary(invoke("apply", path, scan, "-o", tmp_path / "out", "--trust-pickle"))["n_files"] == 1


# ----------------------------------------------------------------------------- interrupted fits
def test_interrupted_cli_fit_saves_a_partial_model_and_exits_130(interrupt_training_at_step_3, tmp_path: Path) -> None:
    scan = tmp_path / "scan.npy"
    np.save(scan, images())
    out = tmp_path / "m.c2s"
    with pytest.warns(UserWarning, match="interrupted after 2 of 6"):
        result = invoke("fit", scan, "-o", out, *CLI_TINY)
    assert result.exit_code == 130, result.output
    fitted = json.loads(result.stdout)
    assert fitted["partial"] is True and fitted["n_iter"] == 2
    assert result.stderr.strip().splitlines()[-1].startswith("interrupted; saved the partial model to " + str(out))
    assert document(out)["partial"] is True
    model = C2SDenoiser.load(out)
    assert model.interrupted_ is True and model.n_iter_ == 2
    resumed = summary(invoke("fit", scan, "-o", tmp_path / "done.c2s", "--resume", out))
    assert resumed["partial"] is False and resumed["n_iter"] == 2 + 6


def test_sigterm_during_fit_saves_a_partial_model(tmp_path: Path) -> None:
    scan = tmp_path / "scan.npy"
    np.save(scan, images(n=4))
    out = tmp_path / "m.c2s"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    args = ["fit", scan, "-o", out, "-v", *CLI_TINY[2:], "--max-iter", "100000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "c2s_denoise", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stderr is not None
    seen, deadline = b"", time.monotonic() + 120
    while b"C2S fit" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += os.read(proc.stderr.fileno(), 4096)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (seen + stderr).decode(errors="replace")
    assert json.loads(stdout)["partial"] is True
    assert str(out) in stderr.decode() and C2SDenoiser.load(out).interrupted_


# ----------------------------------------------------------------------------- warm start
def test_warm_start_continues_from_the_fitted_weights() -> None:
    X = images()
    model = C2SDenoiser(**TINY).fit(X)
    before = {k: v.clone() for k, v in model.network_.state_dict().items()}
    curve = list(model.loss_curve_)
    model.set_params(warm_start=True, max_iter=1, learning_rate=1e-9).fit(images(5))
    assert model.n_iter_ == TINY["max_iter"] + 1 and model.loss_curve_[:-1] == curve
    after = model.network_.state_dict()
    for name, tensor in before.items():  # a tiny step from the saved weights, not fresh random ones
        torch.testing.assert_close(after[name], tensor, atol=1e-5, rtol=0)
    fresh = C2SDenoiser(**{**TINY, "random_state": 1}).fit(X).network_.state_dict()
    assert not torch.allclose(fresh["head.1.weight"], before["head.1.weight"])


def test_warm_start_refuses_a_network_that_cannot_match() -> None:
    model = C2SDenoiser(**TINY).fit(images()).set_params(warm_start=True)
    with pytest.raises(ValueError, match="warm_start: the model was fitted on real images but X is complex"):
        model.fit(images() + 0j)
    with pytest.raises(ValueError, match="warm_start: the fitted network"):
        model.set_params(width=8).fit(images())
    with pytest.raises(ValueError, match="warm_start: the model was fitted with contrasts None"):
        model.set_params(width=4, contrasts=("A", "B")).fit(np.stack([images(), images(1)], axis=1))


def test_cli_resume_round_trip(tmp_path: Path) -> None:
    scan = tmp_path / "scan.npy"
    np.save(scan, images())
    first = tmp_path / "first.c2s"
    assert summary(invoke("fit", scan, "-o", first, *CLI_TINY))["n_iter"] == 6
    second = tmp_path / "second.c2s"
    resumed = summary(invoke("fit", scan, "-o", second, "--resume", first, "--max-iter", "4"))
    assert resumed["n_iter"] == 10 and resumed["params"]["width"] == 4 and resumed["params"]["warm_start"] is True
    model = C2SDenoiser.load(second)
    assert model.n_iter_ == 10 and len(model.loss_curve_) == 10
    assert model.loss_curve_[:6] == C2SDenoiser.load(first).loss_curve_
