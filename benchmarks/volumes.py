"""Volumes: C2S 2-D, 2.5-D and 3-D against BM4D and slice-by-slice BM3D on MNI152 T1 volumes.

Usage::

    python benchmarks/volumes.py --spacing 2 --minutes 2 5 10            # the main table (Gaussian 25/255)
    python benchmarks/volumes.py --spacing 1 --minutes 5 --methods bm4d c2s-2d c2s-3d
    python benchmarks/volumes.py --spacing 4 --thickness 4 --noise rician --minutes 5
    python benchmarks/volumes.py --noise rician --coils 8 --default-fit --methods c2s-2.5d bm4d-vst-floor
    python benchmarks/volumes.py --report                                # .jsonl -> .md tables + .png curves

Data (:func:`bench_data.volumes.load_mni152_volumes`): the MNI152 T1 template resampled to axial
slices ``--spacing`` mm apart and ``--thickness`` mm thick, cut along z into four blocks,
alternately training and test, cropped to the brain's bounding box. Noise: Gaussian, or
magnitude noise of ``--coils`` coils (``--noise rician``: Rician for one coil, the noncentral chi
of a root-sum-of-squares for more), sigma = level/255 per real component (seeds 1 train / 2 test).
Rows:

- ``bm4d``: BM4D given the true sigma (magnitude rows: then the magnitude bias removed);
  ``bm4d-vst`` (magnitude): BM4D on the variance-stabilised volume with the exact unbiased
  inverse; ``bm4d-vst-floor``: the same with the floor shrinkage that C2S applies (its default, in air only); ``-est``:
  given the sigma C2S estimates itself (``C2SDenoiser().noise_level``: wavelet MAD for Gaussian
  noise, background/foreground fit for magnitude noise; the peers get the true number of coils);
  ``bm3d``: BM3D slice by slice, true sigma.
- ``c2s-2d``, ``c2s-2.5d`` (``context_slices=1``), ``c2s-3d`` (``spatial_dims=3``): fitted on the
  training volumes with ``sigma="auto"`` (and ``n_coils="auto"``) for each budget (``--minutes``,
  each budget its own fit; ``--default-fit``: the estimator's own ``max_iter``), then applied to
  the test volumes. ``--configs`` overrides the parameters of a variant (JSON ``{"c2s-3d": {...}}``);
  ``--label`` names such a row.

Budgets and timings are in **minutes on 2 unloaded cores**, not the wall time of this run, because
our 2-core machines are shared: wall time, and even CPU time (hyper-threads, caches), measure
the other jobs. The unit is the training step of the 2-D default network (8 patches of 48x48),
which runs at ``REFERENCE_STEPS_PER_SECOND`` = 37.48 steps/s on 2 unloaded cores
(``benchmarks/results/throughput_cpu.md``). Next to each row the CPU time of that reference
step is measured (a 45-step fit minus a 5-step fit of the 2-D default on the same data), and so
is the step of the row's configuration: their ratio is the configuration's cost in reference
steps, nearly independent of the load since both are measured together. A budget of ``m``
minutes is ``m * 60 * 37.48 / ratio`` steps (``max_iter``: a row is reproducible in steps);
inference and BM4D/BM3D CPU times are converted with the same unit (``*_2cores_s``). The wall
seconds of this run are reported too.

Scores (``scoring.metrics``, averaged over the test slices): brain-mask PSNR, whole-slice PSNR
and SSIM of the clipped outputs; seconds of training (``fit_time_``) and of inference. Each run
appends one JSON line per row to ``benchmarks/results/volumes.jsonl`` with the command, machine
and date; ``--report`` writes ``volumes.md`` and one quality-versus-training-time plot per case.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench_data import add_noise
from bench_data.volumes import load_mni152_volumes
from c2s_denoise import C2SDenoiser
from classical import FLOOR_SHRINKAGE, bm3d_slices, bm4d_volume
from report import command, machine
from scoring import metrics
from volumes_report import write_report

#: Training steps per second of the 2-D default network on 2 unloaded cores (throughput_cpu.md, 2026-11-25).
REFERENCE_STEPS_PER_SECOND = 37.48
REFERENCE = {"spatial_dims": 2}
RESULTS = Path(__file__).parent / "results"
JSONL = RESULTS / "volumes.jsonl"
CLASSICAL = ("bm4d", "bm4d-est", "bm4d-vst", "bm4d-vst-est", "bm4d-vst-floor", "bm4d-vst-floor-est", "bm3d")
C2S_VARIANTS = {
    "c2s-2d": {"spatial_dims": 2, "context_slices": 0},
    "c2s-2.5d": {"spatial_dims": 2, "context_slices": 1},
    "c2s-3d": {"spatial_dims": 3},
}


def load_case(spacing: int, thickness: int, noise: str, level: int, coils: int = 1) -> dict:
    """Clean and noisy training/test volumes of one benchmark case (``coils``: of magnitude noise)."""
    from c2s_denoise.physics.simulate import magnitude_noise

    split = load_mni152_volumes(spacing, thickness)
    sigma = level / 255

    def noisy(volume: np.ndarray, seed: int) -> np.ndarray:
        if noise == "rician" and coils > 1:
            return magnitude_noise(volume, sigma, n_coils=coils, seed=seed)
        return add_noise(volume, sigma, noise, seed=seed)

    return {
        "sigma": sigma,
        "noise": noise,
        "coils": None if noise == "gaussian" else coils,
        "clean": split.test,
        "mask": split.test_mask,
        "train": [noisy(v, 1 + 10 * i) for i, v in enumerate(split.train)],
        "test": [noisy(v, 2 + 10 * i) for i, v in enumerate(split.test)],
        "source": split.source,
    }


def score(outputs: list[np.ndarray], case: dict) -> dict:
    """Metrics over all test slices, rounded; the air's (zero-signal voxels') mean and spread in units of sigma."""
    output, clean = np.concatenate(outputs), np.concatenate(case["clean"])
    result = metrics(output, clean, np.concatenate(case["mask"]))
    air = clean == 0
    if air.any():
        result.update(
            air_mean=float(output[air].mean() / case["sigma"]), air_spread=float(output[air].std() / case["sigma"])
        )
    return {key: round(value, 4) for key, value in result.items()}


def run_classical(method: str, case: dict) -> dict:
    """One classical row: the denoised test volumes scored, with the sigma used and the seconds."""
    if method.endswith("-est"):
        estimator = C2SDenoiser()
        sigmas = [estimator.noise_level(volume) for volume in case["test"]]
    else:
        sigmas = [case["sigma"]] * len(case["test"])
    if method == "bm3d":
        denoise = bm3d_slices
    else:
        floor = FLOOR_SHRINKAGE if method.startswith("bm4d-vst-floor") else 0.0
        denoise = functools.partial(bm4d_volume, vst=method.startswith("bm4d-vst"), floor_shrinkage=floor)
    start, cpu = time.perf_counter(), time.process_time()
    outputs = [denoise(volume, sigma, n_coils=case["coils"]) for volume, sigma in zip(case["test"], sigmas)]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    unit = cpu_seconds_per_step(REFERENCE, case)
    return {
        **score(outputs, case),
        "sigma_used": [round(s * 255, 2) for s in sigmas],
        "infer_s": round(wall, 1),
        "infer_2cores_s": round(cpu / unit / REFERENCE_STEPS_PER_SECOND, 1),
        "reference_step_cpu_s": round(unit, 4),
    }


def cpu_seconds_per_step(params: dict, case: dict, steps: tuple[int, int] = (5, 45)) -> float:
    """CPU-seconds of one training step of ``params`` on the training volumes (difference of two short fits).

    A first 2-step fit is not counted: it pays the one-off set-up of the convolution kernels.
    """
    used = []
    for n in (2, *steps):
        cpu = time.process_time()
        C2SDenoiser(**{"random_state": 0, **params, "max_iter": n}).fit(case["train"])
        used.append(time.process_time() - cpu)
    return max(1e-6, (used[2] - used[1]) / (steps[1] - steps[0]))


def step_cost(params: dict, case: dict) -> tuple[float, float]:
    """``(ratio, unit)``: CPU time of a step of ``params`` in reference steps, and the reference step's CPU-seconds."""
    unit = cpu_seconds_per_step(REFERENCE, case)
    return cpu_seconds_per_step(params, case) / unit, unit


def run_c2s(params: dict, minutes: float | None, case: dict, ratio: float | None = None) -> dict:
    """One C2S row: fit on the training volumes for ``minutes`` on 2 unloaded cores (in steps; ``None``:
    the estimator's default ``max_iter``), apply to the test volumes."""
    measured_ratio, unit = step_cost(params, case)
    ratio = ratio or measured_ratio
    budget = {} if minutes is None else {"max_iter": max(1, int(minutes * 60 * REFERENCE_STEPS_PER_SECOND / ratio))}
    model = C2SDenoiser(**{"random_state": 0, **params, **budget})
    cpu = time.process_time()
    model.fit(case["train"])
    fit_cpu = time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    outputs = model.transform(case["test"])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        **score(outputs, case),
        "steps": model.n_iter_,
        "step_cost": round(ratio, 3),
        "train_2cores_min": round(model.n_iter_ * ratio / REFERENCE_STEPS_PER_SECOND / 60, 2),
        "infer_2cores_s": round(cpu / unit / REFERENCE_STEPS_PER_SECOND, 1),
        "fit_s": round(model.fit_time_, 1),
        "fit_cpu_s": round(fit_cpu, 1),
        "reference_step_cpu_s": round(unit, 4),
        "infer_s": round(wall, 1),
        "sigma_used": [round(float(s) * 255, 2) for s in model.sigma_],
        "n_coils_used": None if case["coils"] is None else round(float(model.n_coils_), 2),
        "final_loss": round(float(np.mean(model.loss_curve_[-100:])), 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=int, default=2)
    parser.add_argument("--thickness", type=int, default=None)
    parser.add_argument("--noise", choices=("gaussian", "rician"), default="gaussian")
    parser.add_argument("--level", type=int, default=25)
    parser.add_argument("--coils", type=int, default=1, help="coils of the magnitude noise (--noise rician)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    parser.add_argument("--default-fit", action="store_true", help="C2S rows with the default max_iter, not --minutes")
    parser.add_argument("--methods", nargs="+", default=[*CLASSICAL, *C2S_VARIANTS])
    parser.add_argument("--configs", default="{}", help='JSON {"c2s-3d": {parameter: value}} overrides')
    parser.add_argument("--label", default="", help="suffix of the C2S rows' names (for --configs probes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (budgets are CPU time)")
    parser.add_argument("--step-cost", type=float, default=None, help="cost of a C2S step in reference steps")
    parser.add_argument("--report", action="store_true", help="write volumes.md and the plots from volumes.jsonl")
    args = parser.parse_args()
    if args.report:
        write_report(JSONL, RESULTS)
        return
    torch.set_num_threads(args.threads)
    thickness = args.thickness or 1
    case = load_case(args.spacing, thickness, args.noise, args.level, args.coils)
    overrides = json.loads(args.configs)
    coils = f"-{args.coils}coils" if args.noise == "rician" and args.coils > 1 else ""
    header = {
        "case": f"{args.spacing}mm-{thickness}thick-{args.noise}{args.level}{coils}",
        "source": case["source"],
        "command": command(),
        "machine": machine() + " (shared with other jobs: budgets and *_2cores times in reference steps)",
        "date": datetime.date.today().isoformat(),
    }
    for method in args.methods:
        if method in CLASSICAL:
            rows = [({}, None, lambda m=method: run_classical(m, case))]
        else:
            params = {**C2S_VARIANTS[method], **overrides.get(method, {})}
            rows = [
                (params, minutes, lambda p=params, m=minutes: run_c2s(p, m, case, args.step_cost))
                for minutes in ([None] if args.default_fit else args.minutes)
            ]
        for params, minutes, run in rows:
            record = {**header, "method": method + args.label, "params": params, "minutes": minutes, **run()}
            print(json.dumps(record), flush=True)
            with JSONL.open("a") as handle:
                handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
