"""Probe: does training on patches that hold signal help C2S on magnitude images with much air?

Usage::

    OMP_NUM_THREADS=1 python benchmarks/foreground_patches_probe.py fg     # signal-weighted patches
    OMP_NUM_THREADS=1 python benchmarks/foreground_patches_probe.py plain  # the default sampler

Rician MNI152 slices (sigma = 25/255, whole field of view, 76% air), C2S with defaults
(noise_model "rician", sigma "auto"). ``fg`` keeps a drawn patch when its mean magnitude is
above 3 sigma, and one in eight of the others, by patching ``PatchSampler.sample`` in this
process only; the package's default is unchanged. Result in
``benchmarks/results/foreground_patches_probe.md``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from bench_data import load_mni152_axial  # noqa: E402
from realistic_scans import scores  # noqa: E402

import c2s_denoise.engine.patches as patches  # noqa: E402
from c2s_denoise import C2SDenoiser  # noqa: E402
from c2s_denoise.simulate import magnitude_noise  # noqa: E402


def signal_weighted(original):
    def sample(self, batch_size, generator):
        kept, levels = [], []
        while len(kept) < batch_size:
            batch, sigma = original(self, batch_size, generator)
            signal = batch[:, :1].abs().mean(dim=(1, 2, 3)) > 3 * sigma
            lucky = torch.rand(len(batch), generator=generator) < 0.125
            keep = signal | lucky
            kept += list(batch[keep])
            levels += list(sigma[keep])
        return torch.stack(kept[:batch_size]), torch.stack(levels[:batch_size])

    return sample


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "fg"
    data = load_mni152_axial()
    train = magnitude_noise(data.train, 25 / 255, n_coils=1, seed=0)
    test = magnitude_noise(data.test, 25 / 255, n_coils=1, seed=1)
    if mode == "fg":
        patches.PatchSampler.sample = signal_weighted(patches.PatchSampler.sample)
    start = time.perf_counter()
    model = C2SDenoiser(random_state=0).fit([train])
    result = scores(model.transform([test])[0], data.test, data.test_mask)
    print(mode, result, model.noise_model_, float(model.sigma_[0]), f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
