"""Quality reached by C2S in a fixed training time, per configuration (drives the defaults).

Usage::

    python benchmarks/budget_sweep.py --seconds 60 [--configs JSON] [--bm3d]

Data: the package's brain phantom (``c2s_denoise.physics.phantom.brain_phantom``), 24 training slices
(seed 0) and 6 held-out slices (seed 1) of 128x128, Gaussian noise sigma = 0.1 (fixed seed),
sigma given. For each configuration the step time is probed, ``max_iter`` is set to fill the
budget (so the learning-rate schedule completes), and PSNR (outputs clipped to [0, 1]) is
measured on the held-out slices against the clean phantom. ``--bm3d`` adds BM3D (sigma known)
as the classical reference. Results go to stdout and ``benchmarks/results/budget_sweep.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch

from c2s_denoise import C2SDenoiser, __version__
from c2s_denoise.metrics import psnr
from c2s_denoise.physics.phantom import brain_phantom
from report import command

DEFAULT_CONFIGS = [
    {},
    {"tau_max": 3.0},
    {"tau_max": 5.0},
    {"learning_rate": 3e-3},
    {"noise_schedule": "total"},
    {"width": 32, "batch_size": 16, "patch_size": 64, "learning_rate": 2e-3, "tau_max": 3.0},
]


def clipped_psnr(estimate: np.ndarray, clean: np.ndarray) -> float:
    """PSNR (range 1) of the estimate clipped to [0, 1], over the whole stack."""
    return psnr(np.clip(estimate, 0, 1), clean, range_=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--configs", type=json.loads, default=DEFAULT_CONFIGS)
    parser.add_argument("--bm3d", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "budget_sweep.md")
    args = parser.parse_args()

    sigma = 0.1
    rng = np.random.default_rng(0)
    train, test = brain_phantom((24, 128, 128), seed=0), brain_phantom((6, 128, 128), seed=1)
    noisy_train = train + sigma * rng.standard_normal(train.shape)
    noisy_test = test + sigma * rng.standard_normal(test.shape)
    rows = [("noisy input", "-", "-", f"{clipped_psnr(noisy_test, test):.2f}")]
    if args.bm3d:
        import bm3d

        start = time.perf_counter()
        denoised = np.stack([bm3d.bm3d(image, sigma) for image in noisy_test])
        rows.append(
            (
                "BM3D (sigma known)",
                "-",
                f"{time.perf_counter() - start:.1f} (6 slices)",
                f"{clipped_psnr(denoised, test):.2f}",
            )
        )
        print(rows[-1], flush=True)
    defaults = C2SDenoiser().get_params()
    for config in args.configs:
        params = dict(sigma=sigma, random_state=0, device="cpu", context_slices=0, **config)
        probe = C2SDenoiser(**{**params, "max_iter": 10}).fit(noisy_train[:2])
        steps = max(10, int(args.seconds * probe.n_iter_ / probe.fit_time_))
        model = C2SDenoiser(**{**params, "max_iter": steps}).fit([noisy_train])
        score = clipped_psnr(model.transform([noisy_test])[0], test)
        changed = {k: v for k, v in config.items() if defaults.get(k) != v} or "defaults"
        rows.append((f"C2S {json.dumps(changed)}", str(steps), f"{model.fit_time_:.1f}", f"{score:.2f}"))
        print(rows[-1], flush=True)

    lines = [
        f"# C2S quality in a {args.seconds:.0f}-second CPU fit (brain phantom, sigma = 0.1)",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- command: `{command()}`",
        f"- machine: {torch.get_num_threads()} torch threads, torch {torch.__version__}, c2s-denoise {__version__}",
        "- data: 24 training / 6 held-out 128x128 phantom slices; PSNR on outputs clipped to [0, 1]",
        "",
        "| method | steps | fit seconds | held-out PSNR (dB) |",
        "| --- | --- | --- | --- |",
        *[f"| {' | '.join(row)} |" for row in rows],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
