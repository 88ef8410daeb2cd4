"""Probe a long C2S fit: windowed loss and held-out PSNR of the EMA network every N steps.

Usage::

    python benchmarks/long_fit_probe.py --max-iter 63720 --every 1000 --start 6000

Used to find why the 30-minute budgets of ``time_budget.py`` ended at the noisy input's PSNR
(a loss spike, then a dead network) and to check the divergence guard on the same trajectory
(``benchmarks/results/divergence_guard.md``). Data and metrics as ``compare.py`` (MNI152,
Gaussian sigma = 25/255, seeds 1 / 2); the engine is driven directly with the estimator's
defaults (one intensity scale for the training stack, seed 0). Stop it with Ctrl-C once the
steps of interest are printed.
"""

import argparse
import time

import numpy as np
import torch

from bench_data import add_noise, load_mni152_axial
from c2s_denoise import C2SDenoiser
from c2s_denoise.engine import (
    ExponentialMovingAverage,
    GDSMLoss,
    NoiseConditionedUNet,
    NoiseSchedule,
    TrainingConfig,
    denoise_images,
    train_gdsm,
)
from c2s_denoise.engine.prior import FROM_RANDOM_WEIGHTS
from scoring import metrics

#: The estimator's defaults: the probe trains as a default fit from random weights does.
DEFAULTS = {**C2SDenoiser().get_params(), **FROM_RANDOM_WEIGHTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=63720)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0, help="first step to probe")
    args = parser.parse_args()
    split = load_mni152_axial(crop_margin=4)
    sigma = 25 / 255
    noisy_train = add_noise(split.train, sigma, "gaussian", seed=1)
    noisy_test = add_noise(split.test, sigma, "gaussian", seed=2)
    scale = float(np.percentile(np.abs(noisy_train), 99.5))
    images = [torch.from_numpy((y / scale).astype(np.float32))[None] for y in noisy_train]
    tests = [torch.from_numpy((y / scale).astype(np.float32))[None] for y in noisy_test]
    torch.manual_seed(0)
    network = NoiseConditionedUNet(1, 1, 16, 3)
    seen: dict[str, object] = {}
    update = ExponentialMovingAverage.update

    def spy(self, live):  # keep handles on the EMA and the live network for the probes
        seen["ema"], seen["live"] = self, live
        return update(self, live)

    ExponentialMovingAverage.update = spy
    losses: list[float] = []
    start = time.time()

    def probe(step: int, loss: float) -> None:
        losses.append(loss)
        if (step + 1) % args.every or step + 1 < args.start:
            return
        ema, live = seen["ema"].network, seen["live"]
        out = denoise_images(ema, tests, torch.full((len(tests),), sigma / scale), device=torch.device("cpu"))
        live.train()
        psnr = metrics(np.stack([o[0].numpy() for o in out]) * scale, split.test, split.test_mask)["psnr_brain"]
        largest = max(p.abs().max().item() for p in live.parameters())
        print(
            f"step {step + 1} ({time.time() - start:.0f} s): window loss {np.mean(losses[-args.every :]):.3e}, "
            f"EMA brain PSNR {psnr:.2f} dB, head weight norm {live.head[1].weight.norm().item():.3e}, "
            f"largest weight {largest:.2e}",
            flush=True,
        )

    result = train_gdsm(
        network,
        images,
        torch.full((len(images),), sigma / scale),
        config=TrainingConfig(
            **{key: DEFAULTS[key] for key in ("max_time", "batch_size", "patch_size", "patch_depth", "learning_rate")},
            **{key: DEFAULTS[key] for key in ("ema_decay", "refinement")},
            max_iter=args.max_iter,
            air_weight=1.0,  # uniform patches, as this probe has always drawn
        ),
        schedule=NoiseSchedule("added", 1.5),
        loss_fn=GDSMLoss(),
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        callback=probe,
    )
    print(f"done: {result.n_iter} steps, {result.rollbacks} rollback(s)", flush=True)


if __name__ == "__main__":
    main()
