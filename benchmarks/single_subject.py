"""Real single-subject anatomy: C2S fitted on the noisy slice it denoises, against BM3D (issue 20).

Usage::

    pip install -e ".[bench]"
    python benchmarks/single_subject.py --threads 2                     # about 15 minutes on 2 cores
    python benchmarks/single_subject.py --methods c2s-random --seeds 0  # C2S from random weights

dipy's real, skull-stripped T1 slice (256 x 256, ``bench_data.load_dipy_t1_slice``), Gaussian
noise of 25/255 and 13/255 (noise seed ``[seed, sigma * 255]``), as a user holding one scan runs
it: ``C2SDenoiser(random_state=seed).fit([noisy]).transform([noisy])``, every default (sigma
estimated, the prior, ``max_iter="auto"``). Peers: BM3D with the sigma scikit-image's wavelet
estimator gives, and with the true sigma. ``c2s-random`` is C2S from random weights
(``init="random"``, 8000 steps): the defaults before the prior. The supervised bound is left out
here: a network trained on this one clean slice would memorise it.

Brain-mask PSNR (the non-zero pixels), whole-slice PSNR and SSIM (scikit-image), outputs clipped
to [0, 1]. Results: ``benchmarks/results/single_subject.{md,json}``; the table gives each
method's mean and standard deviation over the seeds, and C2S minus BM3D (estimated sigma).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench_data import add_noise, load_dipy_t1_slice
from c2s_denoise import C2SDenoiser, __version__
from report import command, machine
from scoring import metrics

RESULTS = Path(__file__).parent / "results"
METHODS = ("bm3d-estimated", "bm3d-true", "c2s", "c2s-random")
LABELS = {
    "bm3d-estimated": "BM3D, sigma estimated (wavelet)",
    "bm3d-true": "BM3D, true sigma",
    "c2s": "**C2S defaults** (prior, sigma estimated)",
    "c2s-random": "C2S from random weights (8000 steps)",
}


def denoise(method: str, noisy: np.ndarray, sigma: float, seed: int, options: dict) -> tuple[np.ndarray, dict]:
    """The method's output and what it measured (seconds, sigma, steps)."""
    start = time.perf_counter()
    if method.startswith("bm3d"):
        import bm3d
        from skimage.restoration import estimate_sigma

        level = sigma if method == "bm3d-true" else float(estimate_sigma(noisy))
        return np.asarray(bm3d.bm3d(noisy, level)), {"sigma": level, "seconds": time.perf_counter() - start}
    options = {**options, "init": "random"} if method == "c2s-random" else options
    model = C2SDenoiser(random_state=seed, **options).fit([noisy])
    fit_seconds = time.perf_counter() - start
    out = model.transform([noisy])[0]
    return out, {"sigma": float(model.sigma_[0]), "steps": int(model.n_iter_), "fit_seconds": fit_seconds}


def table(rows: list[dict], sigmas: list[int]) -> list[str]:
    lines = [
        "| sigma | method | seeds | brain PSNR (sd) | whole PSNR | SSIM (sd) | minus BM3D est.: brain, SSIM | fit s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for sigma255 in sigmas:
        of_sigma = [r for r in rows if r["sigma255"] == sigma255]
        reference = {r["seed"]: r for r in of_sigma if r["method"] == "bm3d-estimated"}
        for method in METHODS:
            runs = [r for r in of_sigma if r["method"] == method]
            if not runs:
                continue
            brain = np.array([r["psnr_brain"] for r in runs])
            ssim = np.array([r["ssim"] for r in runs])
            whole = np.mean([r["psnr"] for r in runs])
            paired = [r for r in runs if r["seed"] in reference]
            gap = (
                f"{np.mean([r['psnr_brain'] - reference[r['seed']]['psnr_brain'] for r in paired]):+.2f}, "
                f"{np.mean([r['ssim'] - reference[r['seed']]['ssim'] for r in paired]):+.3f}"
                if paired and method != "bm3d-estimated"
                else "-"
            )
            fit = np.mean([r.get("fit_seconds", r.get("seconds", 0.0)) for r in runs])
            lines.append(
                f"| {sigma255}/255 | {LABELS[method]} | {','.join(str(r['seed']) for r in runs)} | "
                f"{brain.mean():.2f} ({brain.std(ddof=1) if len(runs) > 1 else 0:.2f}) | {whole:.2f} | "
                f"{ssim.mean():.3f} ({ssim.std(ddof=1) if len(runs) > 1 else 0:.3f}) | {gap} | {fit:.0f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigmas", type=int, nargs="+", default=[25, 13], help="noise levels, in 1/255")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["bm3d-estimated", "bm3d-true", "c2s"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--options", type=json.loads, default={}, help="C2SDenoiser parameters (JSON) for C2S")
    parser.add_argument("--suffix", default="", help="appended to the results' file names")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    image, mask = load_dipy_t1_slice()
    rows = []
    for sigma255 in args.sigmas:
        for seed in args.seeds:
            noisy = add_noise(image, sigma255 / 255, seed=[seed, sigma255])
            for method in args.methods:
                out, measured = denoise(method, noisy, sigma255 / 255, seed, args.options)
                row = {"sigma255": sigma255, "seed": seed, "method": method, **measured}
                row.update(metrics(out[None], image[None], mask[None]))
                rows.append(row)
                print(json.dumps(row), flush=True)
    stem = RESULTS / f"single_subject{args.suffix}"
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    header = [
        "# Real single-subject anatomy: dipy's T1 slice, C2S fitted on the noisy slice itself",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}, c2s-denoise {__version__}."
        + (f" C2S options: `{json.dumps(args.options)}`." if args.options else ""),
        "",
        "Gaussian noise, noise seed `[seed, sigma * 255]`; C2S `random_state=seed`. Brain-mask PSNR "
        "(non-zero pixels), whole-slice PSNR and SSIM, outputs clipped to [0, 1]; mean (sample sd) over "
        "the seeds; the gap to BM3D with an estimated sigma is paired by seed.",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(header + table(rows, args.sigmas)) + "\n")
    print("\n".join(table(rows, args.sigmas)))


if __name__ == "__main__":
    main()
