"""Volumes: C2S 2-D, 2.5-D and 3-D against BM4D and slice-by-slice BM3D on MNI152 T1 volumes.

Usage::

    python benchmarks/volumes.py --spacing 2 --minutes 2 5 10            # the main table (Gaussian 25/255)
    python benchmarks/volumes.py --spacing 1 --minutes 5 --methods bm4d c2s-2d c2s-3d
    python benchmarks/volumes.py --spacing 4 --thickness 4 --noise rician --minutes 5
    python benchmarks/volumes.py --report                                # .jsonl -> .md tables + .png curves

Data (:func:`bench_data.volumes.load_mni152_volumes`): the MNI152 T1 template resampled to axial
slices ``--spacing`` mm apart and ``--thickness`` mm thick, cut along z into four blocks,
alternately training and test, cropped to the brain's bounding box. Noise: Gaussian or Rician,
sigma = level/255 (seeds 1 train / 2 test). Rows:

- ``bm4d``: BM4D given the true sigma; ``bm4d-est``: given the sigma C2S estimates itself
  (``C2SDenoiser().noise_level``: wavelet MAD for Gaussian noise, background/foreground fit for
  Rician); ``bm3d``: BM3D slice by slice, true sigma. Rician rows get the magnitude bias removed.
- ``c2s-2d``, ``c2s-2.5d`` (``context_slices=1``), ``c2s-3d`` (``spatial_dims=3``): fitted on the
  training volumes with ``sigma="auto"`` for each budget (``--minutes``, each budget its own
  fit), then applied to the test volumes. ``--configs`` overrides the parameters of a variant
  (JSON ``{"c2s-3d": {...}}``); ``--label`` names such a row.

Budgets are CPU time, not wall time, because our 2-core machines are shared and a wall-clock
budget would measure the other jobs. A budget of ``m`` minutes on 2 cores is
``m * 60 * 2 * EFFICIENCY`` CPU-seconds of a one-thread process (``EFFICIENCY``: the speed-up
of 2 threads over 1, divided by 2): the CPU-seconds per step of each configuration are measured
first (``time.process_time`` over two short fits on the same data, their difference divided by
the difference in steps; or ``--cpu-per-step``), and the fit runs the steps that fill the budget
(``max_iter``), so a row is reproducible in steps. On a loaded machine the calibration can be
off by 2x (other processes on the same cores slow each step down), so every row also reports
the CPU-seconds its fit really took (``fit_cpu_s``), and the plots put each fit at those. Inference and BM4D/BM3D are reported in CPU-seconds / 2
(``cpu_s``, an ideal 2 cores) as well as the wall seconds measured.

Scores (``scoring.metrics``, averaged over the test slices): brain-mask PSNR, whole-slice PSNR
and SSIM of the clipped outputs; seconds of training (``fit_time_``) and of inference. Each run
appends one JSON line per row to ``benchmarks/results/volumes.jsonl`` with the command, machine
and date; ``--report`` writes ``volumes.md`` and one quality-versus-training-time plot per case.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench_data import add_noise
from bench_data.volumes import load_mni152_volumes
from c2s_denoise import C2SDenoiser
from classical import bm3d_slices, bm4d_volume
from report import command, machine
from scoring import metrics
from volumes_report import EFFICIENCY, write_report

RESULTS = Path(__file__).parent / "results"
JSONL = RESULTS / "volumes.jsonl"
CLASSICAL = ("bm4d", "bm4d-est", "bm3d")
C2S_VARIANTS = {
    "c2s-2d": {"spatial_dims": 2},
    "c2s-2.5d": {"spatial_dims": 2, "context_slices": 1},
    "c2s-3d": {"spatial_dims": 3},
}


def load_case(spacing: int, thickness: int, noise: str, level: int) -> dict:
    """Clean and noisy training/test volumes of one benchmark case."""
    split = load_mni152_volumes(spacing, thickness)
    sigma = level / 255
    return {
        "sigma": sigma,
        "noise": noise,
        "clean": split.test,
        "mask": split.test_mask,
        "train": [add_noise(v, sigma, noise, seed=1 + 10 * i) for i, v in enumerate(split.train)],
        "test": [add_noise(v, sigma, noise, seed=2 + 10 * i) for i, v in enumerate(split.test)],
        "source": split.source,
    }


def score(outputs: list[np.ndarray], case: dict) -> dict:
    """Metrics over all test slices, rounded."""
    result = metrics(np.concatenate(outputs), np.concatenate(case["clean"]), np.concatenate(case["mask"]))
    return {key: round(value, 4) for key, value in result.items()}


def run_classical(method: str, case: dict) -> dict:
    """One classical row: the denoised test volumes scored, with the sigma used and the seconds."""
    rician = case["noise"] == "rician"
    if method == "bm4d-est":
        estimator = C2SDenoiser()
        sigmas = [estimator.noise_level(volume) for volume in case["test"]]
    else:
        sigmas = [case["sigma"]] * len(case["test"])
    denoise = bm3d_slices if method == "bm3d" else bm4d_volume
    start, cpu = time.perf_counter(), time.process_time()
    outputs = [denoise(volume, sigma, rician=rician) for volume, sigma in zip(case["test"], sigmas)]
    return {
        **score(outputs, case),
        "sigma_used": [round(s * 255, 2) for s in sigmas],
        "infer_s": round(time.perf_counter() - start, 1),
        "infer_cpu_s": round((time.process_time() - cpu) / 2, 1),
    }


def cpu_seconds_per_step(params: dict, case: dict, steps: tuple[int, int] = (5, 25)) -> float:
    """CPU-seconds of one training step of ``params`` on the training volumes (difference of two short fits)."""
    used = []
    for n in steps:
        cpu = time.process_time()
        C2SDenoiser(**{"random_state": 0, **params, "max_iter": n}).fit(case["train"])
        used.append(time.process_time() - cpu)
    return max(1e-6, (used[1] - used[0]) / (steps[1] - steps[0]))


def run_c2s(params: dict, minutes: float, case: dict, per_step: float) -> dict:
    """One C2S row: fit on the training volumes for ``minutes`` on 2 cores (in steps), apply to the test volumes."""
    steps = max(1, int(minutes * 60 * 2 * EFFICIENCY / per_step))
    model = C2SDenoiser(**{"random_state": 0, **params, "max_iter": steps})
    cpu = time.process_time()
    model.fit(case["train"])
    fit_cpu = time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    outputs = model.transform(case["test"])
    return {
        **score(outputs, case),
        "fit_s": round(model.fit_time_, 1),
        "fit_cpu_s": round(fit_cpu, 1),
        "cpu_s_per_step": round(per_step, 4),
        "steps": model.n_iter_,
        "infer_s": round(time.perf_counter() - start, 1),
        "infer_cpu_s": round((time.process_time() - cpu) / 2, 1),
        "sigma_used": [round(float(s) * 255, 2) for s in model.sigma_],
        "final_loss": round(float(np.mean(model.loss_curve_[-100:])), 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=int, default=2)
    parser.add_argument("--thickness", type=int, default=None)
    parser.add_argument("--noise", choices=("gaussian", "rician"), default="gaussian")
    parser.add_argument("--level", type=int, default=25)
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    parser.add_argument("--methods", nargs="+", default=[*CLASSICAL, *C2S_VARIANTS])
    parser.add_argument("--configs", default="{}", help='JSON {"c2s-3d": {parameter: value}} overrides')
    parser.add_argument("--label", default="", help="suffix of the C2S rows' names (for --configs probes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (budgets are CPU time)")
    parser.add_argument(
        "--cpu-per-step", type=float, default=None, help="CPU-seconds per step of the C2S rows (skips the calibration)"
    )
    parser.add_argument("--report", action="store_true", help="write volumes.md and the plots from volumes.jsonl")
    args = parser.parse_args()
    if args.report:
        write_report(JSONL, RESULTS)
        return
    torch.set_num_threads(args.threads)
    thickness = args.thickness or 1
    case = load_case(args.spacing, thickness, args.noise, args.level)
    overrides = json.loads(args.configs)
    header = {
        "case": f"{args.spacing}mm-{thickness}thick-{args.noise}{args.level}",
        "source": case["source"],
        "command": command(),
        "machine": machine() + " (shared with other jobs: wall times are noisy, budgets are CPU time)",
        "date": datetime.date.today().isoformat(),
    }
    for method in args.methods:
        if method in CLASSICAL:
            rows = [({}, None, lambda m=method: run_classical(m, case))]
        else:
            params = {**C2S_VARIANTS[method], **overrides.get(method, {})}
            per_step = args.cpu_per_step or cpu_seconds_per_step(params, case)
            rows = [
                (params, minutes, lambda p=params, m=minutes, s=per_step: run_c2s(p, m, case, s))
                for minutes in args.minutes
            ]
        for params, minutes, run in rows:
            record = {**header, "method": method + args.label, "params": params, "minutes": minutes, **run()}
            print(json.dumps(record), flush=True)
            with JSONL.open("a") as handle:
                handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
