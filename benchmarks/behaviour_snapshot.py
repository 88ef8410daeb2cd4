"""Bitwise behaviour of the estimator across a refactor: fit six model kinds with one seed, compare two commits.

``python benchmarks/behaviour_snapshot.py OUT.npz`` fits, with ``random_state=0`` and one torch
thread, a slice model (Gaussian), a magnitude model (Rician, the stabilised path, ``sigma`` and
``n_coils`` estimated), a complex model, a two-contrast model, a 3-D and a 2.5-D volume model; it
stores every weight, the fitted noise levels and settings, ``transform``'s output and the output of
the model saved to a model file and loaded again. Run it at two commits (``git worktree``), then
``python benchmarks/behaviour_snapshot.py --compare BEFORE.npz AFTER.npz``: a refactor that
changes no behaviour gives 0 differing arrays. Same machine, same torch: float arithmetic is not
bitwise portable across CPUs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import make_phantoms  # noqa: E402

from c2s_denoise import C2SDenoiser  # noqa: E402

TINY = dict(max_iter=25, width=8, patch_size=32, batch_size=4, random_state=0)


def _stacked(output) -> np.ndarray:
    return np.stack([output[k] for k in sorted(output)]) if isinstance(output, dict) else np.asarray(output)


def _record(out: dict[str, np.ndarray], name: str, model: C2SDenoiser, X) -> None:
    networks = getattr(model, "networks_", None) or {None: model.network_}  # older commits: network_ only
    for key, network in networks.items():
        for parameter, tensor in network.state_dict().items():
            out[f"{name}/weights/{key}/{parameter}"] = tensor.detach().cpu().float().numpy()
    out[f"{name}/transform"] = _stacked(model.transform(X))
    with tempfile.TemporaryDirectory() as folder:
        model.save(os.path.join(folder, "model.c2s"))
        out[f"{name}/transform_after_load"] = _stacked(C2SDenoiser.load(os.path.join(folder, "model.c2s")).transform(X))
    for attribute in ("sigma_", "n_iter_", "n_coils_", "context_slices_", "spatial_dims_"):
        if hasattr(model, attribute):
            out[f"{name}/{attribute}"] = np.asarray(getattr(model, attribute), dtype=float)


def snapshot() -> dict[str, np.ndarray]:
    """Weights and outputs of the six model kinds."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    clean = make_phantoms(6, 48, seed=1)
    out: dict[str, np.ndarray] = {}
    X = (clean + 0.1 * rng.standard_normal(clean.shape)).astype(np.float32)
    _record(out, "slices", C2SDenoiser(sigma=0.1, **TINY).fit(X), X)
    noise = 0.08 * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))
    rician = np.pad(np.abs(clean + noise).astype(np.float32), ((0, 0), (16, 16), (16, 16)))
    _record(out, "rician", C2SDenoiser(noise_model="rician", context_slices=0, **TINY).fit(rician), rician)
    complex_images = (clean + 0.1 * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))).astype(
        np.complex64
    )
    _record(out, "complex", C2SDenoiser(sigma=0.1, **TINY).fit(complex_images), complex_images)
    two = (np.stack([clean, clean[::-1] * 0.7], axis=1) + 0.1 * rng.standard_normal((6, 2, 48, 48))).astype(np.float32)
    contrasts = C2SDenoiser(contrasts=("T1", "T2"), sigma=0.1, context_slices=0, **TINY)
    _record(out, "contrasts", contrasts.fit(two), two)
    volume = [(clean + 0.1 * rng.standard_normal(clean.shape)).astype(np.float32)]
    _record(out, "volume_3d", C2SDenoiser(sigma=0.1, spatial_dims=3, **{**TINY, "patch_size": 16}).fit(volume), volume)
    _record(out, "volume_2.5d", C2SDenoiser(sigma=0.1, **TINY).fit(volume), volume)
    return out


def compare(before: Path, after: Path) -> int:
    """Print and return how many arrays differ (names are compared too)."""
    a, b = dict(np.load(before)), dict(np.load(after))
    if sorted(a) != sorted(b):
        print("different arrays:", sorted(set(a) ^ set(b)))
        return len(set(a) ^ set(b))
    differ = [k for k in a if a[k].shape != b[k].shape or not np.array_equal(a[k], b[k], equal_nan=True)]
    print(f"{len(a)} arrays, {len(differ)} differ{': ' + ', '.join(differ[:10]) if differ else ''}")
    return len(differ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="OUT.npz, or BEFORE.npz AFTER.npz with --compare")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.compare:
        raise SystemExit(1 if compare(*args.paths) else 0)
    np.savez(args.paths[0], **snapshot())


if __name__ == "__main__":
    main()
