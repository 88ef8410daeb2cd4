"""Train the prior network that C2S fits start from (``C2SDenoiser(init="prior")``, the default).

Usage::

    pip install -e ".[bench]"
    python benchmarks/train_prior.py --threads 2        # about 4 minutes on 2 cores
    python benchmarks/train_prior.py --steps 200 --output /tmp/prior.safetensors   # smoke run

The prior is C2S itself, fitted self-supervised (GDSM, no clean target) on noisy 2-D slices of
brain MRI at many noise levels, so that a fit on a user's few slices starts from weights that
already denoise brain anatomy and only adapts them (docs/method.md section 4, "Starting from a
prior"). The corpus: the axial slices of the 1 mm MNI152 T1 template (nilearn) with at least 15%
brain, every 4th one (29 slices, ``models_travel.mni_halves``), each with Gaussian noise of its
own level, log-uniform in [5, 40] / 255 (numpy seed 123); ``C2SDenoiser(init="random",
max_iter=8000, random_state=0)``, every other default.

Nothing of dipy's data is used: the benchmarks' real single-subject slice stays unseen. The
MNI152 rows of the benchmarks, whose anatomy the prior has seen (noisy), say so.

A larger corpus failed: 24,000 steps on 281 slices (T1 along three axes, simulated T2/PD/FLAIR,
intensity curves, noise 3-40/255) ended with a network that returns its input (20.54 dB on dipy's
slice, the noisy input's 20.17), the collapse the peers showed (benchmarks/results/HISTORY.md).

Writes ``c2s_denoise/engine/priors/brain_2d.safetensors`` (the network's float32 state dict,
with its configuration and this corpus in the metadata) unless ``--output`` says otherwise.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from c2s_denoise import C2SDenoiser
from c2s_denoise.engine.prior import PRIOR_PATH, prior_bytes
from c2s_denoise.io.atomic import atomic_write
from models_travel import mni_halves

SIGMA_RANGE = (5 / 255, 40 / 255)
NOISE_SEED = 123


def corpus() -> tuple[list[np.ndarray], dict]:
    """The noisy training slices and a description of them."""
    (lower, _), (upper, _) = mni_halves()
    clean = np.concatenate([lower, upper])
    rng = np.random.default_rng(NOISE_SEED)
    sigmas = np.exp(rng.uniform(*np.log(SIGMA_RANGE), len(clean)))
    noisy = [image + sigma * rng.standard_normal(image.shape) for image, sigma in zip(clean, sigmas)]
    description = {
        "data": "1 mm MNI152 T1 template (nilearn): axial slices with 15% brain, every 4th",
        "slices": len(noisy),
        "sigma_range": [round(s, 5) for s in SIGMA_RANGE],
        "noise": "gaussian",
        "noise_seed": NOISE_SEED,
    }
    return noisy, description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0, help="random_state of the fit")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, default=PRIOR_PATH)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    noisy, description = corpus()
    print(f"{len(noisy)} slices", flush=True)
    start = time.perf_counter()
    model = C2SDenoiser(init="random", max_iter=args.steps, random_state=args.seed).fit(noisy)
    seconds = time.perf_counter() - start
    description.update(
        steps=int(model.n_iter_),
        random_state=args.seed,
        fit_seconds=round(seconds, 1),
        command="python benchmarks/train_prior.py",
    )
    with atomic_write(args.output, overwrite=True) as tmp:
        tmp.write_bytes(prior_bytes(model.networks_[None], description))
    print(f"{model.n_iter_} steps in {seconds:.0f} s -> {args.output}", flush=True)


if __name__ == "__main__":
    main()
