"""Models that travel: a model fitted on other anatomy, as is and after a short adaptation (issue 20).

Usage::

    pip install -e ".[bench]"
    python benchmarks/models_travel.py --threads 2       # about 20 minutes on 2 cores
    python benchmarks/models_travel.py --quick           # smoke run: 300 steps, 100-step adaptations

``fit`` once and ``apply`` to many scans is the command line's promise. Two transfers, Gaussian
noise 25/255, brain-mask PSNR, whole-slice PSNR and SSIM of the target slices:

- **MNI152 lower half -> upper half**: axial slices of the 1 mm template, every 4th one of those
  with at least 15% brain, split at the middle one into a lower and an upper half. Models fitted on
  the upper half itself (what a user fitting on the scan at hand gets), on both halves, and on the
  lower half only; the last also adapted to the upper half.
- **MNI152 -> dipy's T1 slice**: the model fitted on both MNI152 halves denoises dipy's real
  T1 slice, as is and adapted; against a model fitted on that slice itself.

Adaptation is what ``C2SDenoiser(warm_start=True)`` does: ``set_params(warm_start=True,
max_iter=N).fit(target_noisy)`` continues the GDSM training on the noisy target itself (no clean
data) for N steps, with the estimator's learning-rate schedule over those N steps. Its seconds are
reported, and it runs with the defaults for trained weights (``learning_rate`` and ``air_weight``
``"auto"``: 1e-3 and uniform patches). The MNI152 models start from random weights
(``init="random"``, 8000 steps): the shipped prior was fitted on these very slices (noisy), so a
model started from it would have seen the other half. The dipy slice's own model is the defaults'
(the prior, which has not seen dipy). Every fit uses the defaults otherwise (``sigma="auto"``). Results:
``benchmarks/results/models_travel.{md,json}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from bench_data import load_dipy_t1_slice, mni152_volume
from c2s_denoise import C2SDenoiser, __version__
from report import command, machine
from scoring import metrics

RESULTS = Path(__file__).parent / "results"
SIGMA = 25 / 255
STRIDE = 4
ADAPT_STEPS = (500, 1000, 2000)


def mni_halves() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(slices, masks) of the lower and the upper half of the MNI152 axial slices."""
    volume, mask = mni152_volume()
    keep = [k for k in range(volume.shape[2]) if mask[:, :, k].mean() >= 0.15][::STRIDE]
    slices = np.stack([np.rot90(volume[:, :, k]) for k in keep])
    masks = np.stack([np.rot90(mask[:, :, k]) for k in keep])
    middle = len(keep) // 2
    return (slices[:middle], masks[:middle]), (slices[middle:], masks[middle:])


def noisy(clean: np.ndarray, seed: int, tag: int) -> np.ndarray:
    return clean + SIGMA * np.random.default_rng([seed, tag]).standard_normal(clean.shape)


def fitted(items: np.ndarray, seed: int, steps: int | None, init: str = "random") -> tuple[C2SDenoiser, float]:
    options = {} if steps is None else {"max_iter": steps}
    start = time.perf_counter()
    model = C2SDenoiser(random_state=seed, init=init, **options).fit(list(items))
    return model, time.perf_counter() - start


def adapted(model: C2SDenoiser, items: np.ndarray, steps: int) -> tuple[C2SDenoiser, float]:
    start = time.perf_counter()
    model = copy.deepcopy(model).set_params(warm_start=True, max_iter=steps).fit(list(items))
    return model, time.perf_counter() - start


def score(model: C2SDenoiser, items: np.ndarray, clean: np.ndarray, masks: np.ndarray) -> dict:
    start = time.perf_counter()
    out = np.stack(model.transform(list(items)))
    return {**metrics(out, clean, masks), "transform_seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 steps, adaptations of 100")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    steps = 300 if args.quick else None
    adapt_steps = (100,) if args.quick else ADAPT_STEPS
    (lower, lower_mask), (upper, upper_mask) = mni_halves()
    dipy_image, dipy_mask = load_dipy_t1_slice()
    dipy, dipy_mask = dipy_image[None], dipy_mask[None]
    rows, start = [], time.time()

    def add(transfer: str, method: str, seed: int, result: dict, fit_seconds: float) -> None:
        rows.append(
            {"transfer": transfer, "method": method, "seed": seed, **result, "fit_seconds": round(fit_seconds, 1)}
        )
        print(
            f"{transfer} | {method} | seed {seed}: {result['psnr_brain']:.2f} dB brain, {fit_seconds:.0f} s", flush=True
        )

    for seed in args.seeds:
        lower_noisy, upper_noisy, dipy_noisy = noisy(lower, seed, 1), noisy(upper, seed, 2), noisy(dipy, seed, 3)
        own, seconds = fitted(upper_noisy, seed, steps)
        add(
            "MNI lower -> upper",
            "fitted on the upper half itself",
            seed,
            score(own, upper_noisy, upper, upper_mask),
            seconds,
        )
        both, seconds = fitted(np.concatenate([lower_noisy, upper_noisy]), seed, steps)
        add("MNI lower -> upper", "fitted on both halves", seed, score(both, upper_noisy, upper, upper_mask), seconds)
        other, seconds = fitted(lower_noisy, seed, steps)
        add(
            "MNI lower -> upper",
            "fitted on the lower half",
            seed,
            score(other, upper_noisy, upper, upper_mask),
            seconds,
        )
        for n in adapt_steps:
            model, seconds = adapted(other, upper_noisy, n)
            add(
                "MNI lower -> upper",
                f"lower half, adapted {n} steps",
                seed,
                score(model, upper_noisy, upper, upper_mask),
                seconds,
            )
        own_dipy, seconds = fitted(dipy_noisy, seed, steps, init="prior")
        add(
            "MNI -> dipy slice",
            "fitted on the dipy slice itself",
            seed,
            score(own_dipy, dipy_noisy, dipy, dipy_mask),
            seconds,
        )
        add("MNI -> dipy slice", "fitted on MNI152 (both halves)", seed, score(both, dipy_noisy, dipy, dipy_mask), 0.0)
        for n in adapt_steps:
            model, seconds = adapted(both, dipy_noisy, n)
            add(
                "MNI -> dipy slice",
                f"MNI152, adapted {n} steps",
                seed,
                score(model, dipy_noisy, dipy, dipy_mask),
                seconds,
            )
    write(rows, args, time.time() - start, len(lower), len(upper))


def write(rows: list[dict], args, elapsed: float, n_lower: int, n_upper: int) -> None:
    stem = "models_travel_quick" if args.quick else "models_travel"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# Models that travel: fitted elsewhere, as is and adapted",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}; c2s-denoise {__version__}; seeds {args.seeds}; total {elapsed / 60:.1f} min.",
        "",
        f"Setup in the docstring of `benchmarks/models_travel.py`: Gaussian noise 25/255; MNI152 axial slices "
        f"(every {STRIDE}th with 15% brain), {n_lower} lower and {n_upper} upper; dipy's T1 slice. Metrics on the "
        "target: PSNR in the brain mask, over the slice, SSIM (dB, mean over slices and seeds). Adapted = "
        '`set_params(warm_start=True, max_iter=N).fit(noisy target)` (learning rate and air weight `"auto"` for '
        'trained weights: 1e-3, uniform patches); the MNI152 models start from random weights (`init="random"`, '
        "the prior has seen these slices), the dipy slice's own from the prior; s = seconds of that fit or adaptation.",
        "",
        "| transfer | model | PSNR brain | PSNR whole | SSIM | s |",
        "|---|---|---|---|---|---|",
    ]
    for key in dict.fromkeys((r["transfer"], r["method"]) for r in rows):
        group = [r for r in rows if (r["transfer"], r["method"]) == key]
        lines.append(
            f"| {key[0]} | {key[1]} | {np.mean([r['psnr_brain'] for r in group]):.2f} | "
            f"{np.mean([r['psnr'] for r in group]):.2f} | {np.mean([r['ssim'] for r in group]):.3f} | "
            f"{np.mean([r['fit_seconds'] for r in group]):.0f} |"
        )
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
