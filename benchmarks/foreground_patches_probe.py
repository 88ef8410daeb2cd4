"""Probe: does drawing fewer background (air) patches help C2S on magnitude images with much air?

Usage::

    OMP_NUM_THREADS=1 python benchmarks/foreground_patches_probe.py --air-weight 1 0.125 --seeds 0 1
    OMP_NUM_THREADS=1 python benchmarks/foreground_patches_probe.py --noise gaussian --air-weight 1 0.125

MNI152 axial slices (30 to train, 6 held out, whole field of view, 76% air), sigma = 25/255,
Rician (1 coil) or Gaussian noise; C2S with defaults except ``air_weight`` (the probability of
keeping a drawn patch that holds only background noise). Each fitted model is scored with and
without the 8x self-ensemble. Brain-mask PSNR and whole-slice SSIM against the clean slices;
BM3D with the foreground-estimated sigma is the reference row. One JSON line per run on stdout.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench_data import load_mni152_axial
from c2s_denoise import C2SDenoiser
from c2s_denoise.physics.magnitude import unbias_magnitude
from c2s_denoise.physics.noise import estimate_sigma
from c2s_denoise.physics.simulate import magnitude_noise
from scoring import scores


def noisy_pair(noise: str, sigma: float):
    data = load_mni152_axial()
    if noise == "rician":
        return (
            data,
            magnitude_noise(data.train, sigma, n_coils=1, seed=0),
            magnitude_noise(data.test, sigma, n_coils=1, seed=1),
        )
    rng = np.random.default_rng(0)
    return (
        data,
        data.train + sigma * rng.standard_normal(data.train.shape),
        data.test + sigma * rng.standard_normal(data.test.shape),
    )


def bm3d_row(data, test, noise: str) -> dict:
    import bm3d

    sigma = float(np.mean([estimate_sigma(s, method="foreground") for s in test]))
    out = np.stack([bm3d.bm3d(s, sigma) for s in test])
    if noise == "rician":
        out = unbias_magnitude(out, sigma, 1)
    return {"method": "BM3D (foreground sigma)", **scores(out, data.test, data.test_mask)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", choices=["rician", "gaussian"], default="rician")
    parser.add_argument("--air-weight", type=float, nargs="+", default=[1.0, 0.125])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--bm3d", action="store_true")
    args = parser.parse_args()
    data, train, test = noisy_pair(args.noise, 25 / 255)
    if args.bm3d:
        print(json.dumps(bm3d_row(data, test, args.noise)), flush=True)
    extra = {} if args.max_iter is None else {"max_iter": args.max_iter}
    for seed in args.seeds:
        for weight in args.air_weight:
            start = time.perf_counter()
            model = C2SDenoiser(random_state=seed, air_weight=weight, context_slices=0, **extra).fit([train])
            seconds = time.perf_counter() - start
            plain = scores(model.transform([test])[0], data.test, data.test_mask)
            ensembled = scores(model.set_params(self_ensemble=True).transform([test])[0], data.test, data.test_mask)
            print(
                json.dumps(
                    {
                        "noise": args.noise,
                        "seed": seed,
                        "air_weight": weight,
                        "fit_s": round(seconds),
                        "plain": plain,
                        "self_ensemble": ensembled,
                        "noise_model": model.noise_model_,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
