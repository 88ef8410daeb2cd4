"""Magnitude images: C2S against the peers users reach for, over the whole image and inside the brain.

Usage::

    pip install -e ".[bench]"
    python benchmarks/magnitude.py                          # 1, 4 and 8 coils, about 50 minutes on 2 cores
    python benchmarks/magnitude.py --coils 1 --jobs 2       # one case, two processes of one thread

Data: the 30 training and 6 held-out axial MNI152 slices of ``load_mni152_axial`` (233 x 197,
with the zero background of the template around the head), as magnitude images of ``N`` coils
(``c2s_denoise.physics.simulate.magnitude_noise``: RSS of ``N`` coils sharing the signal, noise 25/255 per
real component, Rician for ``N = 1``). C2S fits on the noisy training slices with its defaults
(``sigma``, the noise model and ``n_coils`` estimated) and denoises the held-out ones;
``magnitude_correction="mean"`` is the path before the variance stabilisation. Peers, each with
the true sigma and with the package's estimate (``sigma="auto"``): BM3D on the stabilised image
with the exact unbiased inverse (and with the same floor shrinkage as C2S), BM3D followed by the
removal of the magnitude bias (inverse of ``E[M | A]``), dipy's ``nlmeans`` with its Rician
correction.

Metrics on the held-out slices against the noise-free amplitude, averaged over slices: PSNR inside
the brain mask and over the whole slice, SSIM over the whole slice (scikit-image's default 7x7
window), all on outputs clipped to [0, 1] with range 1; the air's (zero-signal pixels') mean and
spread in units of sigma. Results: ``benchmarks/results/magnitude_<N>coils.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench_data import load_dipy_t1_slice, load_mni152_axial
from c2s_denoise import __version__
from classical import FLOOR_SHRINKAGE, bm3d_slices
from report import command, machine
from scoring import metrics

RESULTS = Path(__file__).parent / "results"
SIGMA = 25 / 255


def noisy_split(n_coils: int, seed: int, source: str = "mni"):
    """The clean data (``.test``, ``.test_mask``) and the noisy training and test images.

    ``source="dipy"``: dipy's real single-subject T1 slice (skull-stripped: its background is
    air), fitted on the noisy slice it denoises, as a user fits on the scan at hand.
    """
    from types import SimpleNamespace

    from c2s_denoise.physics.simulate import magnitude_noise

    if source == "dipy":
        image, mask = load_dipy_t1_slice()
        data = SimpleNamespace(test=image[None], test_mask=mask[None])
        noisy = magnitude_noise(data.test, SIGMA, n_coils=n_coils, seed=seed)
        return data, noisy, noisy
    data = load_mni152_axial()
    train = magnitude_noise(data.train, SIGMA, n_coils=n_coils, seed=seed)
    test = magnitude_noise(data.test, SIGMA, n_coils=n_coils, seed=seed + 1)
    return data, train, test


def estimated_sigma(test: np.ndarray, n_coils: int) -> float:
    """The package's estimate for the held-out stack (what ``sigma="auto"`` gives a magnitude volume)."""
    from c2s_denoise.physics.noise import auto_noise_level

    return float(auto_noise_level(test, "ncchi" if n_coils > 1 else "rician", n_coils=n_coils)[0])


def run_method(method: str, n_coils: int, seed: int, steps: int, source: str = "mni") -> dict:
    """One row: the method's output on the held-out slices, scored."""
    import torch

    torch.set_num_threads(1)
    data, train, test = noisy_split(n_coils, seed, source)
    start = time.perf_counter()
    sigma_used, coils_used = SIGMA, float(n_coils)
    if method.startswith("c2s"):
        from c2s_denoise import C2SDenoiser

        correction = "mean" if method == "c2s_mean" else "vst"
        model = C2SDenoiser(
            magnitude_correction=correction, max_iter=steps or "auto", random_state=seed, context_slices=0
        )
        output = model.fit(train).transform(test)
        sigma_used, coils_used = float(np.mean(model.sigma_)), float(model.n_coils_)
    else:
        kind, which = method.rsplit("_", 1)
        sigma_used = SIGMA if which == "true" else estimated_sigma(test, n_coils)
        output = np.stack([peer(kind, image, sigma_used, n_coils) for image in test])
    seconds = time.perf_counter() - start
    row = metrics(output, data.test, data.test_mask)
    air = data.test == 0
    row.update(
        method=method,
        coils=n_coils,
        seed=seed,
        seconds=round(seconds, 1),
        sigma=sigma_used,
        n_coils_used=coils_used,
        air_mean=float(output[air].mean() / SIGMA),
        air_spread=float(output[air].std() / SIGMA),
    )
    return row


def peer(kind: str, image: np.ndarray, sigma: float, n_coils: int) -> np.ndarray:
    if kind == "noisy":
        return image
    if kind == "nlmeans":
        from dipy.denoise.nlmeans import nlmeans

        # dipy's sigma is the noise of the magnitude's Gaussian parts, as here; its Rician correction is for 1 coil
        return nlmeans(image[..., None], sigma, rician=True)[..., 0]
    shrinkage = FLOOR_SHRINKAGE if kind == "bm3d-vst-floor" else 0.0
    vst = kind != "bm3d-bias"
    return bm3d_slices(image[None], sigma, n_coils=n_coils, vst=vst, floor_shrinkage=shrinkage)[0]


LABELS = {
    "noisy": "noisy",
    "c2s": f"C2S defaults (VST, floor shrinkage {FLOOR_SHRINKAGE:g} in air; sigma estimated)",
    "c2s_mean": "C2S magnitude_correction='mean' (before; sigma estimated)",
    "bm3d-vst": "BM3D on the VST image + exact unbiased inverse",
    "bm3d-vst-floor": f"BM3D on the VST image + inverse with floor shrinkage {FLOOR_SHRINKAGE:g} in air",
    "bm3d-bias": "BM3D + bias removal (inverse of E[M|A])",
    "nlmeans": "dipy nlmeans, Rician correction",
}


def label(method: str) -> str:
    if method.startswith("c2s"):
        return LABELS[method]
    kind, which = method.rsplit("_", 1)
    if kind == "noisy":
        return "noisy"
    return f"{LABELS[kind]} ({'true' if which == 'true' else 'estimated'} sigma)"


def write(rows: list[dict], n_coils: int, steps: int, seeds: list[int], elapsed: float, suffix: str = "") -> None:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"magnitude_{n_coils}coils{suffix}"
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    by_method: dict[str, list[dict]] = {}
    for row in rows:
        by_method.setdefault(row["method"], []).append(row)
    data = "dipy's real T1 slice, fitted on itself" if suffix.endswith("_dipy") else "MNI152 held-out slices"
    lines = [
        f"# Magnitude images, {n_coils} coil(s): {data}, noise 25/255 per real component",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"c2s-denoise {__version__}, C2S {steps or 'max_iter=auto'} steps, seeds {seeds}, total {elapsed / 60:.1f} min "
        "(processes of one torch thread, side by side: seconds are not idle-machine timings).",
        "",
        "Brain = PSNR inside the brain mask; whole = PSNR over the slice; SSIM over the slice "
        "(scikit-image 7x7); outputs clipped to [0, 1], range 1. Air: the zero-signal pixels' "
        "mean and spread in units of sigma (noisy air: the chi law's). Mean over seeds, "
        "+- the spread over seeds where there are several.",
        "",
        "| method | PSNR brain | PSNR whole | SSIM | air mean | air spread | s |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(values: list[float], fmt: str) -> str:
        text = format(np.mean(values), fmt)
        return text + (f" +- {np.std(values):{fmt}}" if len(values) > 1 else "")

    for method, group in by_method.items():
        lines.append(
            f"| {label(method)} | {cell([r['psnr_brain'] for r in group], '.2f')} | "
            f"{cell([r['psnr'] for r in group], '.2f')} | {cell([r['ssim'] for r in group], '.3f')} | "
            f"{np.mean([r['air_mean'] for r in group]):.2f} | {np.mean([r['air_spread'] for r in group]):.2f} | "
            f"{np.mean([r['seconds'] for r in group]):.0f} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--coils", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--steps", type=int, default=None, help="C2S training steps (unset: the default, max_iter='auto')"
    )
    parser.add_argument("--jobs", type=int, default=2, help="processes side by side, one torch thread each")
    parser.add_argument("--suffix", default="", help="appended to the result files' names (partial runs)")
    parser.add_argument("--data", choices=("mni", "dipy"), default="mni", help="MNI152 slices or dipy's T1 slice")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=[
            "noisy_true",
            "c2s",
            "c2s_mean",
            "bm3d-vst_true",
            "bm3d-vst_est",
            "bm3d-vst-floor_true",
            "bm3d-bias_true",
            "bm3d-bias_est",
            "nlmeans_true",
        ],
    )
    args = parser.parse_args()
    for n_coils in args.coils:
        start = time.perf_counter()
        jobs = [(m, n_coils, seed, args.steps, args.data) for seed in args.seeds for m in args.methods]
        jobs.sort(key=lambda job: not job[0].startswith("c2s"))  # the long fits first
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(run_method, *zip(*jobs)))
        order = {m: i for i, m in enumerate(args.methods)}
        rows.sort(key=lambda row: (order[row["method"]], row["seed"]))
        suffix = args.suffix + ("_dipy" if args.data == "dipy" else "")
        write(rows, n_coils, args.steps, args.seeds, time.perf_counter() - start, suffix)


if __name__ == "__main__":
    main()
