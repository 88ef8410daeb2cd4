"""C2S against classical and self-supervised peers on real MRI (MNI152 T1), one table per noise level.

Usage::

    pip install -e ".[bench]"
    python benchmarks/compare.py --mode quick     # <= 15 minutes on 2 CPU cores
    python benchmarks/compare.py --mode full      # 10-minute trainings, Gaussian and Rician noise
    python benchmarks/compare.py --steps 8000 --sigmas 25 --noises gaussian   # one setting, longer budget

Data: axial slices of the MNI152 T1 template shipped in nilearn (30 training / 6 held-out
slices, split with a gap, cropped to the brain's bounding box + 4 px; see ``bench_data/``),
noise of sigma in {13/255, 25/255} on [0, 1] images with fixed seeds. Every deep method uses
the same network class (the C2S U-Net, default width/depth), the same number of optimiser
steps, batch and patch size, learning-rate schedule and EMA; wall time is reported beside the
quality because a step's cost differs between methods. Classical methods get the true sigma.
The deep models trained on MNI152 are also applied, without retraining, to dipy's real
single-subject T1 slice with noise of the same level (``compare_<mode>_dipy_<noise>_sigma<k>.md``).

Metrics on outputs clipped to [0, 1]: PSNR over the whole slice, PSNR inside the brain mask,
SSIM (scikit-image, data_range=1), averaged over the held-out slices (``scoring.metrics``). Tables go to
``benchmarks/results/compare_<mode>_<noise>_sigma<k>.md`` and a figure of the sigma = 25/255
case to ``compare_<mode>_gaussian_sigma25.png``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench_data import add_noise, load_dipy_t1_slice, load_mni152_axial
from c2s_denoise import C2SDenoiser, __version__
from peers import denoise_peer, make_peer, make_peer_network, train_peer
from report import command, machine
from scoring import metrics

MODES = {
    # steps of every deep method; noise kinds
    "quick": {"steps": 1000, "noises": ("gaussian",)},  # and C2S with every default (its own budget)
    "full": {"steps": 20000, "noises": ("gaussian", "rician")},
}
SELF_SUPERVISED_PEERS = ("noise2self", "noise2void", "r2r", "neighbor2neighbor", "noisier2noise")


def classical_methods(noisy: np.ndarray, sigma: float) -> dict[str, tuple[np.ndarray, float, float]]:
    """BM3D (sigma known, and estimated per slice as a user without the level would), NL-means
    (sigma known) and TV tuned by J-invariant calibration: name -> (output, fit s, s/slice)."""
    import bm3d
    from skimage.restoration import calibrate_denoiser, denoise_nl_means, denoise_tv_chambolle, estimate_sigma

    results = {}
    start = time.perf_counter()
    out = np.stack([bm3d.bm3d(image, sigma) for image in noisy])
    results["BM3D (sigma known)"] = (out, 0.0, (time.perf_counter() - start) / len(noisy))
    start = time.perf_counter()  # scikit-image's wavelet (MAD) estimate, per slice
    out = np.stack([bm3d.bm3d(image, estimate_sigma(image)) for image in noisy])
    results["BM3D (sigma estimated)"] = (out, 0.0, (time.perf_counter() - start) / len(noisy))
    start = time.perf_counter()
    out = np.stack(
        [
            denoise_nl_means(image, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)
            for image in noisy
        ]
    )
    results["NL-means (sigma known)"] = (out, 0.0, (time.perf_counter() - start) / len(noisy))
    start = time.perf_counter()
    weights = {"weight": list(np.linspace(0.01, 0.3, 15))}
    outputs = []
    for image in noisy:
        denoiser = calibrate_denoiser(image, denoise_tv_chambolle, denoise_parameters=weights)
        outputs.append(denoiser(image))
    results["TV + J-invariant calibration"] = (np.stack(outputs), 0.0, (time.perf_counter() - start) / len(noisy))
    return results


def deep_methods(
    noisy_train,
    clean_train,
    tests: dict[str, np.ndarray],
    sigma: float,
    steps: int,
    seed: int = 0,
    only: tuple[str, ...] | None = None,
):
    """Peers, Noise2Clean and C2S with the same network and steps, trained once on the MNI
    training slices and applied to every test set: ``{test set: {name: (output, fit s, s/slice)}}``."""
    results: dict[str, dict] = {key: {} for key in tests}
    for name in (*SELF_SUPERVISED_PEERS, "noise2clean"):
        if only is not None and name not in only:
            continue
        loss = make_peer(name)
        network = make_peer_network(seed=seed, skip=loss.identity_skip)
        clean = clean_train if loss.needs_clean else None
        trained = train_peer(loss, network, noisy_train, sigma, clean=clean, max_iter=steps, seed=seed)
        label = f"{name} (supervised upper bound)" if loss.needs_clean else name
        for key, noisy_test in tests.items():
            start = time.perf_counter()
            out = np.asarray(denoise_peer(loss, trained.network, noisy_test, sigma, seed=seed))
            results[key][label] = (out, trained.seconds, (time.perf_counter() - start) / len(noisy_test))
        print(f"  {label}: {trained.seconds:.0f} s", file=sys.stderr, flush=True)
    c2s_runs = {
        "C2S": dict(sigma=sigma, max_iter=steps),
        "C2S + refinement rho=0.2": dict(sigma=sigma, refinement=0.2, max_iter=steps),
        # what a new user gets: every default, the noise level estimated, the default budget
        "C2S defaults (sigma estimated)": {},
    }
    for label, params in c2s_runs.items():
        if only is not None and "c2s" not in only:
            continue
        # the training slices are a stack of separate slices, not one volume: no neighbouring slices
        model = C2SDenoiser(random_state=seed, context_slices=0, **params).fit([noisy_train])
        for key, noisy_test in tests.items():
            start = time.perf_counter()
            out = model.transform([noisy_test])[0]
            results[key][label] = (out, model.fit_time_, (time.perf_counter() - start) / len(noisy_test))
        print(f"  {label}: {model.fit_time_:.0f} s", file=sys.stderr, flush=True)
    return results


def write_table(path: Path, title: str, header: list[str], rows: list[dict], noisy_row: dict) -> str:
    lines = [
        f"# {title}",
        "",
        *header,
        "",
        "| method | PSNR (dB) | PSNR brain (dB) | SSIM | train s | s / slice |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| noisy input | {noisy_row['psnr']:.2f} | {noisy_row['psnr_brain']:.2f} | {noisy_row['ssim']:.3f} | - | - |",
    ]
    for row in sorted(rows, key=lambda r: r["psnr_brain"]):
        lines.append(
            f"| {row['method']} | {row['psnr']:.2f} | {row['psnr_brain']:.2f} | {row['ssim']:.3f} | "
            f"{row['train_s']:.0f} | {row['s_per_slice']:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def figure(path: Path, clean, noisy, outputs: dict[str, np.ndarray], index: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"noisy": noisy[index], **{k: v[index] for k, v in outputs.items()}, "clean": clean[index]}
    h, w = clean[index].shape
    crop = (slice(h // 3, h // 3 + h // 4), slice(w // 3, w // 3 + w // 4))
    fig, axes = plt.subplots(3, len(panels), figsize=(2.6 * len(panels), 8))
    for column, (name, image) in enumerate(panels.items()):
        image = np.clip(image, 0, 1)
        axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(name, fontsize=9)
        axes[1, column].imshow(image[crop], cmap="gray", vmin=0, vmax=1)
        axes[2, column].imshow(np.abs(image - clean[index]), cmap="magma", vmin=0, vmax=0.15)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1, 0].set_ylabel("zoom")
    axes[2, 0].set_ylabel("|error| (0 to 0.15)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--steps", type=int, default=None, help="override the mode's steps of every deep method")
    parser.add_argument(
        "--sigmas", nargs="+", type=int, choices=(13, 25), default=[13, 25], help="noise levels k of sigma = k/255"
    )
    parser.add_argument(
        "--noises", nargs="+", choices=("gaussian", "rician"), default=None, help="override the mode's noise models"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=(*SELF_SUPERVISED_PEERS, "noise2clean", "c2s"),
        default=None,
        help="train only these deep methods (tables then get the suffix _only-<names>)",
    )
    args = parser.parse_args()
    mode = dict(MODES[args.mode])
    if args.steps is not None:
        mode["steps"] = args.steps
    if args.noises is not None:
        mode["noises"] = tuple(args.noises)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    suffix = (f"_{args.steps}steps" if args.steps is not None else "") + (
        f"_only-{'-'.join(args.methods)}" if args.methods else ""
    )
    args.out.mkdir(parents=True, exist_ok=True)
    split = load_mni152_axial(crop_margin=4)
    dipy_clean, dipy_mask = load_dipy_t1_slice()
    started = datetime.datetime.now(datetime.timezone.utc)
    json_path = args.out / f"compare_{args.mode}{suffix}.json"
    summary = json.loads(json_path.read_text()) if json_path.exists() else {}
    for noise in mode["noises"]:
        for k in args.sigmas:
            sigma = k / 255
            noisy_train = add_noise(split.train, sigma, noise, seed=1)
            tests = {
                "mni": (split.test, split.test_mask, add_noise(split.test, sigma, noise, seed=2)),
                "dipy": (dipy_clean[None], dipy_mask[None], add_noise(dipy_clean[None], sigma, noise, seed=2)),
            }
            print(f"{noise} sigma={k}/255", file=sys.stderr, flush=True)
            deep = deep_methods(
                noisy_train,
                split.train,
                {key: t[2] for key, t in tests.items()},
                sigma,
                mode["steps"],
                only=tuple(args.methods) if args.methods else None,
            )
            for key, (clean, mask, noisy_test) in tests.items():
                outputs = {**classical_methods(noisy_test, sigma), **deep[key]}
                rows = [
                    {"method": name, **metrics(out, clean, mask), "train_s": fit_s, "s_per_slice": per_slice}
                    for name, (out, fit_s, per_slice) in outputs.items()
                ]
                if key == "mni":
                    data = (
                        f"{split.source}; {len(split.train)} training / {len(split.test)} held-out axial slices "
                        f"{split.test.shape[1]}x{split.test.shape[2]}"
                    )
                    title = f"MNI152 T1, {noise} noise sigma = {k}/255 ({args.mode} mode)"
                else:
                    data = (
                        "test image: dipy's real single-subject T1 coronal slice 256x256 (mask: non-zero pixels); "
                        f"deep methods trained on the {len(split.train)} noisy MNI152 training slices (no retraining)"
                    )
                    title = f"dipy T1 slice, {noise} noise sigma = {k}/255 ({args.mode} mode)"
                header = [
                    f"- date: {started:%Y-%m-%d %H:%M UTC}; command: `{command()}`",
                    f"- machine: {machine()}; c2s-denoise {__version__}",
                    f"- data: {data}; {noise} noise sigma = {k}/255 (train seed 1, test seed 2)",
                    f"- deep methods: same U-Net class (width 16, depth 3), {mode['steps']} steps of 8 patches 48x48 each, "
                    "AdamW + warm-up/cosine, EMA, the library's training precision (`precision='auto'`); peers without "
                    "noise conditioning; classical methods and the deep methods but the last C2S row are given the true sigma",
                    f"- `C2S defaults (sigma estimated)`: `C2SDenoiser(random_state=0, context_slices=0)` (the slices are not "
                    "neighbours in one volume), every other default "
                    f"({C2SDenoiser().max_iter} steps, sigma estimated), as a new user runs it; the line to beat is "
                    "`BM3D (sigma estimated)` (scikit-image's wavelet estimate per slice)",
                ]
                name = f"compare_{args.mode}{'_dipy' if key == 'dipy' else ''}_{noise}_sigma{k}{suffix}"
                text = write_table(args.out / f"{name}.md", title, header, rows, metrics(noisy_test, clean, mask))
                print(text, flush=True)
                summary[name] = rows
                if k == 25 and key == "mni" and not args.methods:
                    peers_only = [r for r in rows if r["method"] in SELF_SUPERVISED_PEERS]
                    best_peer = max(peers_only, key=lambda r: r["psnr_brain"])["method"]
                    shown = {m: outputs[m][0] for m in ("BM3D (sigma known)", best_peer, "C2S")}
                    figure(args.out / f"{name}.png", clean, noisy_test, shown, index=len(clean) // 2)
            json_path.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
