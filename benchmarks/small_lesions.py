"""Small lesions: how much of their contrast C2S and BM3D keep (issue 20, "fine detail").

Usage::

    pip install -e ".[bench]"
    python benchmarks/small_lesions.py --threads 2          # about 10 minutes on 2 cores
    python benchmarks/small_lesions.py --quick              # smoke run: 300 C2S steps

Images: the 6 held-out axial MNI152 T1 slices (233 x 197) and dipy's real T1 slice (256 x 256),
intensities in [0, 1]. Into each clean slice go 8 discs of 3, 4 or 5 pixels across (two of each
size, two more of 4), at random places inside the brain at least 4 pixels from its edge and 14
pixels from each other, with a contrast of 2 or 3 times the noise level, half of them brighter
than their surroundings and half darker. Gaussian noise of 25/255 (seed-fixed) follows.

Kept contrast of a lesion: ``(mean over the disc - mean over the ring 2-5 pixels outside it)`` in
the output, over the same in the clean slice with the lesion. 1 keeps it, 0 loses it. Rows: C2S
with every default (``sigma="auto"``, fitted on the noisy slices of the set it denoises, as a
user fits on the scan at hand), BM3D with the package's wavelet sigma, and the noisy input (whose
kept contrast is 1 up to the noise). The issue's line: at least 80% of the contrast kept with the
defaults. Results: ``benchmarks/results/small_lesions.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from bench_data import load_dipy_t1_slice, load_mni152_axial
from c2s_denoise import C2SDenoiser, __version__
from c2s_denoise.physics.noise import estimate_sigma
from report import command, machine

RESULTS = Path(__file__).parent / "results"
SIGMA = 25 / 255
DIAMETERS = (3, 3, 4, 4, 4, 4, 5, 5)
CONTRASTS = (2.0, 3.0)
MIN_SPACING = 14
RING = (2, 5)  # the ring around a lesion, in pixels outside its edge


def disc(shape: tuple[int, int], centre: tuple[float, float], diameter: int) -> np.ndarray:
    y, x = np.ogrid[: shape[0], : shape[1]]
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= (diameter / 2) ** 2


def ring(shape: tuple[int, int], centre: tuple[float, float], diameter: int) -> np.ndarray:
    y, x = np.ogrid[: shape[0], : shape[1]]
    distance = np.sqrt((y - centre[0]) ** 2 + (x - centre[1]) ** 2) - diameter / 2
    return (distance >= RING[0]) & (distance <= RING[1])


def insert_lesions(clean: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """``clean`` with 8 small discs added inside ``mask``, and their description."""
    inside = np.argwhere(ndimage.binary_erosion(mask, iterations=4 + max(DIAMETERS)))
    image, lesions = clean.copy(), []
    for k, diameter in enumerate(DIAMETERS):
        for _ in range(1000):
            centre = tuple(float(c) + 0.5 * (diameter % 2 == 0) for c in inside[rng.integers(len(inside))])
            if all(np.hypot(centre[0] - le["centre"][0], centre[1] - le["centre"][1]) >= MIN_SPACING for le in lesions):
                break
        contrast = CONTRASTS[k % 2] * SIGMA * (1 if (k // 2) % 2 == 0 else -1)
        image[disc(clean.shape, centre, diameter)] += contrast
        lesions.append({"centre": centre, "diameter": diameter, "contrast_sigmas": contrast / SIGMA})
    return image, lesions


def kept_contrast(output: np.ndarray, reference: np.ndarray, lesion: dict) -> float:
    inner = disc(output.shape, lesion["centre"], lesion["diameter"])
    outer = ring(output.shape, lesion["centre"], lesion["diameter"])

    def contrast(image: np.ndarray) -> float:
        return float(image[inner].mean() - image[outer].mean())

    return contrast(output) / contrast(reference)


def denoise(method: str, noisy: np.ndarray, seed: int, max_iter: int | None) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    if method == "noisy":
        return noisy, 0.0
    if method == "bm3d":
        import bm3d

        out = np.stack([bm3d.bm3d(image, estimate_sigma(image, "wavelet")) for image in noisy])
        return out, time.perf_counter() - start
    options = {} if max_iter is None else {"max_iter": max_iter}
    model = C2SDenoiser(random_state=seed, **options).fit(list(noisy))
    return np.stack(model.transform(list(noisy))), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 C2S steps")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    split = load_mni152_axial()
    dipy_image, dipy_mask = load_dipy_t1_slice()
    sets = {"MNI152 (6 slices)": (split.test, split.test_mask), "dipy T1 slice": (dipy_image[None], dipy_mask[None])}
    max_iter = 300 if args.quick else None
    rows, start = [], time.time()
    for seed in args.seeds:
        for name, (clean, masks) in sets.items():
            rng = np.random.default_rng([seed, len(name)])
            with_lesions, lesions = zip(*(insert_lesions(c, m, rng) for c, m in zip(clean, masks)))
            reference = np.stack(with_lesions)
            noisy = reference + SIGMA * np.random.default_rng([seed, 1]).standard_normal(reference.shape)
            for method in ("noisy", "bm3d", "c2s"):
                out, seconds = denoise(method, noisy, seed, max_iter)
                kept = [kept_contrast(o, r, le) for o, r, ls in zip(out, reference, lesions) for le in ls]
                sizes = [le["diameter"] for ls in lesions for le in ls]
                row = {
                    "set": name,
                    "seed": seed,
                    "method": method,
                    "kept_mean": float(np.mean(kept)),
                    "kept_min": float(np.min(kept)),
                    "kept_by_diameter": {
                        d: float(np.mean([k for k, s in zip(kept, sizes) if s == d])) for d in (3, 4, 5)
                    },
                    "share_at_least_80": float(np.mean(np.array(kept) >= 0.8)),
                    "n_lesions": len(kept),
                    "seconds": round(seconds, 1),
                }
                rows.append(row)
                print(
                    f"{name} seed {seed} {method}: kept {row['kept_mean']:.2f} (min {row['kept_min']:.2f})", flush=True
                )
    write(rows, args, time.time() - start)


def write(rows: list[dict], args, elapsed: float) -> None:
    stem = "small_lesions_quick" if args.quick else "small_lesions"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(rows, indent=1))
    labels = {"noisy": "noisy input", "bm3d": "BM3D, wavelet sigma", "c2s": "C2S, defaults"}
    lines = [
        "# Small lesions: kept contrast",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}; c2s-denoise {__version__}; seeds {args.seeds}; total {elapsed / 60:.1f} min.",
        "",
        "Setup in the docstring of `benchmarks/small_lesions.py`: 8 discs of 3-5 pixels, contrast 2-3 sigma "
        "(half bright, half dark), Gaussian noise 25/255. Kept contrast = lesion-minus-ring contrast of the "
        "output over that of the clean slice (1 = all kept). Mean over lesions (and seeds), the smallest, "
        "by diameter, and the share of lesions keeping at least 80%.",
        "",
        "| set | method | kept, mean | smallest | 3 px | 4 px | 5 px | share >= 80% | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["set"] for r in rows):
        for method in labels:
            group = [r for r in rows if r["set"] == name and r["method"] == method]
            if not group:
                continue
            by = {d: np.mean([r["kept_by_diameter"][d] for r in group]) for d in (3, 4, 5)}
            lines.append(
                f"| {name} | {labels[method]} | {np.mean([r['kept_mean'] for r in group]):.2f} | "
                f"{min(r['kept_min'] for r in group):.2f} | {by[3]:.2f} | {by[4]:.2f} | {by[5]:.2f} | "
                f"{np.mean([r['share_at_least_80'] for r in group]):.0%} | {np.mean([r['seconds'] for r in group]):.0f} |"
            )
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
