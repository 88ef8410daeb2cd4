"""Noise levels of masked, quantised magnitude volumes: ``sigma="auto"`` against the known truth.

Usage::

    pip install -e ".[bench]"
    python benchmarks/masked_noise_levels.py       # about 5 minutes on 2 cores

The MNI152 template (1 mm, intensities scaled to [0, 1] at the 99.9th percentile) gets Rician (1
coil) or noncentral-chi (4, 8 coils; root-sum-of-squares of coil images of equal weight) noise of
10/255 and 25/255 per component, one seed. It is then masked as users' files are (the brain mask,
a head mask at 5% of the maximum, or no mask), scaled to 0-255 and rounded to uint8, and
``C2SDenoiser().noise_level`` (the defaults: ``sigma="auto"``, ``n_coils="auto"``) is compared with
the true level in the same grey levels. Masked volumes have no air: the estimator then falls back to
the foreground estimator with one coil, which is what the rows with 4 and 8 coils measure.

Results: ``benchmarks/results/masked_noise_levels.md``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from bench_data.mni152 import mni152_brain_mask, mni152_volume
from c2s_denoise import C2SDenoiser, __version__
from report import command, machine

RESULTS = Path(__file__).parent / "results"


def magnitude(clean: np.ndarray, sigma: float, n_coils: int, rng: np.random.Generator) -> np.ndarray:
    """Root-sum-of-squares of ``n_coils`` coil images of ``clean / sqrt(n_coils)`` with complex noise ``sigma``."""
    power = np.zeros_like(clean)
    for _ in range(n_coils):
        power += (clean / np.sqrt(n_coils) + sigma * rng.standard_normal(clean.shape)) ** 2
        power += (sigma * rng.standard_normal(clean.shape)) ** 2
    return np.sqrt(power)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    volume, _ = mni152_volume()
    volume = np.clip(volume / np.percentile(volume, 99.9), 0, None)
    masks = {"brain mask": mni152_brain_mask(), "head mask": volume > 0.05, "no mask": np.ones(volume.shape, bool)}
    rng = np.random.default_rng(args.seed)
    rows, start = [], time.time()
    for level in (10, 25):
        for n_coils in (1, 4, 8):
            noisy = magnitude(volume, level / 255, n_coils, rng)
            for name, mask in masks.items():
                masked = np.where(mask, noisy, 0.0)
                scale = 255 / masked.max()
                data = np.round(masked * scale).astype(np.uint8)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the one-coil fallback warns where there is no air
                    estimate = C2SDenoiser().noise_level(data)
                truth = level / 255 * scale
                rows.append((level, n_coils, name, truth, estimate, estimate / truth))
                print(f"{level}/255 {n_coils} coil(s) {name}: {estimate:.3f} / {truth:.3f} = {estimate / truth:.3f}")
    worst = max(abs(row[-1] - 1) for row in rows)
    lines = [
        "# Noise levels of masked, quantised magnitude volumes (MNI152, uint8)",
        "",
        f"Machine: {machine()}; c2s-denoise {__version__}; seed {args.seed}; {time.time() - start:.0f} s.",
        f"Command: `{command()}`",
        "",
        "`C2SDenoiser().noise_level(volume)` with the defaults against the true level, in grey levels.",
        "",
        "| sigma (per component) | coils | mask | true (grey levels) | estimated | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
        *(f"| {lv}/255 | {n} | {name} | {t:.3f} | {e:.3f} | {r:.3f} |" for lv, n, name, t, e, r in rows),
        "",
        f"Largest error: {100 * worst:.1f}%.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "masked_noise_levels.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
