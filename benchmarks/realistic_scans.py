"""Realistic scans: simulated multi-coil k-space and magnitude noise, the CLI with its defaults end to end.

Usage::

    pip install -e ".[bench]"
    python benchmarks/realistic_scans.py                 # both tables, about 40 minutes on 2 CPU cores
    python benchmarks/realistic_scans.py --tables kspace # or: magnitude

Table 1 (k-space). Axial MNI152 T1 slices (nilearn; 30 training and 6 held-out slices, whole
233 x 197 field of view with air) become a simulated acquisition (``c2s_denoise.physics.simulate``):
a smooth object phase, 4, 8 or 16 coils with smooth complex sensitivities, coil noise that is
correlated between neighbouring coils (correlation 0.3, coil levels +-20%), 2x readout
oversampling, written as fastMRI-style HDF5 files holding only ``kspace`` and an ISMRMRD header
(``receiverChannels``, ``reconSpace`` 233 x 197). Two noise levels per real component: 0.08
("low-field-like", noisy RSS about 21.5 dB) and 0.03 (about 32 dB), on images whose clean RSS
peaks near 1. ``c2s-denoise fit`` on the training file and ``apply`` on the test file, both
with default options, give the "C2S complex (default CLI)" row; ``--combine rss`` gives
today's path. Oracle rows combine the coils with the true sensitivities and covariance.
BM3D on the complex image denoises its real and imaginary parts with sigma = 1 (known by
construction); BM3D on the RSS uses the foreground (Gaussian-regime) noise estimate.

Table 2 (magnitude). The same slices as magnitude images with noncentral-chi noise of level
25/255 per real component (RSS of 1, 4 or 8 coils that share the signal equally; 1 coil is
Rician): every noise estimator against the truth, then C2S per noise model (defaults otherwise)
against BM3D given the foreground estimate.

Metrics: PSNR and SSIM inside the brain mask against the noise-free RSS, with the intensity
range of the clean test volume; SSIM over the whole slice (scikit-image). Results go to
``benchmarks/results/realistic_scans.{md,json}`` and a figure to ``realistic_scans.png``.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from bench_data import load_mni152_axial
from c2s_denoise import C2SDenoiser, __version__
from c2s_denoise.io.kspace import centered_ifft2, rss
from c2s_denoise.physics.coil_combination import combine_coils
from c2s_denoise.physics.coil_noise import estimate_noise_covariance
from c2s_denoise.physics.magnitude import unbias_magnitude
from c2s_denoise.physics.noise import auto_noise_level, estimate_sigma
from c2s_denoise.physics.simulate import magnitude_noise, simulate_multicoil
from report import machine
from scoring import scores

RESULTS = Path(__file__).parent / "results"
SIGMAS = {"low": 0.08, "high": 0.03}
MAGNITUDE_SIGMA = 25 / 255
HEADER = (
    '<?xml version="1.0"?><ismrmrdHeader><encoding><encodedSpace><matrixSize><x>{ex}</x><y>{w}</y><z>1</z>'
    "</matrixSize></encodedSpace><reconSpace><matrixSize><x>{h}</x><y>{w}</y><z>1</z></matrixSize></reconSpace>"
    "<trajectory>cartesian</trajectory></encoding><acquisitionSystemInformation><receiverChannels>{n}"
    "</receiverChannels></acquisitionSystemInformation></ismrmrdHeader>"
)


def write_kspace(path: Path, kspace: np.ndarray, crop: tuple[int, int]) -> None:
    n_coils, height = kspace.shape[1], kspace.shape[2]
    header = HEADER.format(ex=height, h=crop[0], w=crop[1], n=n_coils).encode()
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=kspace)
        handle.create_dataset("ismrmrd_header", data=header)
        handle.attrs["acquisition"] = "simulated"


def cli(*args: str) -> dict:
    command = [sys.executable, "-m", "c2s_denoise", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def bm3d_complex(image: np.ndarray) -> np.ndarray:
    import bm3d

    return np.stack([bm3d.bm3d(s.real, 1.0) + 1j * bm3d.bm3d(s.imag, 1.0) for s in image])


def bm3d_magnitude(image: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return np.stack([bm3d.bm3d(s, sigma) for s in image])


def crop_rows(array: np.ndarray, height: int) -> np.ndarray:
    top = (array.shape[-2] - height) // 2
    return array[..., top : top + height, :]


def kspace_table(
    data,
    coils: tuple[int, ...],
    levels: tuple[str, ...],
    fit_coils: tuple[int, ...],
    workdir: Path,
    seed: int,
    c2s_rows: tuple[str, ...] = ("complex", "rss", "oracle"),
):
    rows, figure = [], {}
    height, width = data.test.shape[1:]
    for n_coils in coils:
        for level in levels:
            sigma = SIGMAS[level]
            train = simulate_multicoil(data.train, n_coils=n_coils, sigma=sigma, seed=seed)
            test = simulate_multicoil(data.test, n_coils=n_coils, sigma=sigma, seed=seed + 1)
            clean, mask = test.clean_rss, data.test_mask
            coil_images = centered_ifft2(test.kspace)
            noisy_rss = crop_rows(rss(coil_images, axis=1), height)
            start = time.perf_counter()
            covariance = estimate_noise_covariance(coil_images)
            truth = test.noise_covariance
            cov_error = float(np.linalg.norm(covariance - truth) / np.linalg.norm(truth))
            var_error = float(np.max(np.abs(np.real(np.diag(covariance)) / np.real(np.diag(truth)) - 1)))
            combined = combine_coils(coil_images, noise_covariance=covariance)
            oracle = combine_coils(coil_images, noise_covariance=truth, sensitivities=test.coil_maps)
            setting = {"coils": n_coils, "snr": level, "sigma": sigma}
            print(
                f"k-space {n_coils} coils, {level} SNR: covariance error {cov_error:.3f}", file=sys.stderr, flush=True
            )

            add = functools.partial(add_row, rows, setting, clean, mask)

            add("noisy RSS", noisy_rss)
            add(
                "noisy complex combination",
                crop_rows(np.abs(combined.image) * combined.rss_gain, height),
                cov_rel_error=cov_error,
                max_coil_variance_error=var_error,
                combine_seconds=round(time.perf_counter() - start, 2),
            )
            sigma_rss = estimate_sigma(noisy_rss, "foreground")
            t = time.perf_counter()
            add(
                "BM3D on RSS (estimated sigma)",
                bm3d_magnitude(noisy_rss, sigma_rss),
                time.perf_counter() - t,
                sigma_used=sigma_rss,
            )
            t = time.perf_counter()
            bm3d_out = bm3d_complex(crop_rows(combined.image, height))
            add(
                "BM3D on complex (sigma = 1)",
                np.abs(bm3d_out) * crop_rows(combined.rss_gain, height),
                time.perf_counter() - t,
            )
            if n_coils not in fit_coils:
                continue
            folder = workdir / f"{n_coils}coils_{level}"
            folder.mkdir(parents=True, exist_ok=True)
            write_kspace(folder / "train.h5", train.kspace, (height, width))
            write_kspace(folder / "test.h5", test.kspace, (height, width))
            for name, extra_args in (
                ("C2S complex (default CLI)", []),
                ("C2S on RSS (CLI --combine rss)", ["--combine", "rss"]),
            ):
                tag = "rss" if extra_args else "complex"
                if tag not in c2s_rows:
                    continue
                fitted = cli(
                    "fit",
                    str(folder / "train.h5"),
                    "-o",
                    str(folder / f"{tag}.c2s"),
                    "--seed",
                    str(seed),
                    *extra_args,
                )
                applied = cli(
                    "apply",
                    str(folder / f"{tag}.c2s"),
                    str(folder / "test.h5"),
                    "-o",
                    str(folder / tag),
                    *extra_args,
                )
                with h5py.File(folder / tag / "test.h5", "r") as handle:
                    output = np.asarray(handle["reconstruction"])
                if output.shape[-2] != height:
                    output = crop_rows(output, height)
                add(
                    name,
                    output,
                    fitted["fit_seconds"],
                    sigma_used=fitted["sigma"][0],
                    noise_model=fitted["noise_model"],
                    apply_seconds=applied["outputs"][0]["seconds"],
                )
                figure[(n_coils, level, tag)] = output
            if "oracle" not in c2s_rows:
                figure[(n_coils, level, "noisy")] = noisy_rss
                figure[(n_coils, level, "clean")] = clean
                continue
            train_oracle = combine_coils(
                centered_ifft2(train.kspace), noise_covariance=train.noise_covariance, sensitivities=train.coil_maps
            )
            model = C2SDenoiser(sigma=1.0, random_state=seed, context_slices=0).fit(
                [crop_rows(train_oracle.image, height)]
            )
            out = model.transform([crop_rows(oracle.image, height)])[0]
            add(
                "C2S complex, oracle maps and covariance",
                np.abs(out) * crop_rows(oracle.rss_gain, height),
                model.fit_time_,
            )
            figure[(n_coils, level, "noisy")] = noisy_rss
            figure[(n_coils, level, "clean")] = clean
    return rows, figure


def magnitude_table(data, coils: tuple[int, ...], seed: int):
    rows = []
    sigma = MAGNITUDE_SIGMA
    for n_coils in coils:
        noisy_train = magnitude_noise(data.train, sigma, n_coils=n_coils, seed=seed)
        noisy_test = magnitude_noise(data.test, sigma, n_coils=n_coils, seed=seed + 1)
        clean, mask = data.test, data.test_mask
        setting = {"coils": n_coils, "sigma": sigma, "noise": "Rician" if n_coils == 1 else "noncentral chi"}
        estimates = {}
        for method in ("wavelet", "background", "foreground"):
            try:
                value = float(estimate_sigma(noisy_test, method, n_coils=n_coils))
            except ValueError as exc:
                value = None
                print(f"  {method}: {exc}", file=sys.stderr)
            estimates[method] = value
        auto_sigma, auto_method = auto_noise_level(noisy_test, "ncchi" if n_coils > 1 else "rician", n_coils=n_coils)
        rows.append(
            {
                **setting,
                "kind": "estimates",
                **{f"sigma_{k}": v for k, v in estimates.items()},
                "auto_estimator": auto_method,
                "sigma_auto": auto_sigma,
            }
        )
        print(
            f"magnitude {n_coils} coils: estimates {estimates}, auto {auto_method} {auto_sigma:.4f}",
            file=sys.stderr,
            flush=True,
        )

        add = functools.partial(add_row, rows, {**setting, "kind": "denoise"}, clean, mask)

        add("noisy", noisy_test)
        t = time.perf_counter()
        add(
            "BM3D (foreground-estimated sigma)",
            bm3d_magnitude(noisy_test, estimates["foreground"]),
            time.perf_counter() - t,
            sigma_used=estimates["foreground"],
        )
        t = time.perf_counter()
        bm3d_out = unbias_magnitude(
            bm3d_magnitude(noisy_test, estimates["foreground"]), estimates["foreground"], n_coils
        )
        add(
            "BM3D (foreground sigma) + our bias removal",
            bm3d_out,
            time.perf_counter() - t,
            sigma_used=estimates["foreground"],
        )
        for noise_model in ("gaussian", "ncchi" if n_coils > 1 else "rician"):
            model = C2SDenoiser(noise_model=noise_model, n_coils=n_coils, random_state=seed, context_slices=0).fit(
                [noisy_train]
            )
            out = model.transform([noisy_test])[0]
            label = f"C2S noise_model={noise_model}" + (
                " (default with --n-coils)" if noise_model != "gaussian" else ""
            )
            add(label, out, model.fit_time_, sigma_used=float(model.sigma_[0]), estimator=str(model.sigma_methods_[0]))
    return rows


def add_row(
    rows: list,
    setting: dict,
    clean: np.ndarray,
    mask: np.ndarray,
    name: str,
    estimate: np.ndarray,
    seconds: float | None = None,
    **extra,
) -> None:
    """Score ``estimate`` against ``clean`` inside ``mask``, append the row and print its PSNR."""
    row = {**setting, "method": name, **scores(estimate, clean, mask), "seconds": seconds, **extra}
    rows.append(row)
    print(f"  {name}: {row['psnr_brain']:.2f} dB", file=sys.stderr, flush=True)


def relative_error(value: float | None, truth: float) -> str:
    return "fails" if value is None else f"{value:.4f} ({100 * (value / truth - 1):+.1f}%)"


def fmt(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def report(kspace_rows, magnitude_rows, command: str, seconds: float) -> str:
    lines = [
        "# Realistic scans: multi-coil k-space and magnitude noise",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.date.today()}, c2s-denoise {__version__}, total {seconds / 60:.1f} min. "
        "Brain-mask PSNR (dB) and whole-slice SSIM against the noise-free RSS, 6 held-out MNI152 slices.",
        "",
    ]
    if kspace_rows:
        lines += [
            "## Table 1: k-space (fastMRI-style files, CLI defaults)",
            "",
            "| coils | SNR | method | PSNR brain | SSIM | fit s |",
            "|---|---|---|---|---|---|",
        ]
        for r in kspace_rows:
            lines.append(
                f"| {r['coils']} | {r['snr']} (sigma {r['sigma']}) | {r['method']} | {fmt(r['psnr_brain'])} | "
                f"{fmt(r['ssim'], 3)} | {fmt(r['seconds'], 0)} |"
            )
        lines += [
            "",
            "Coil noise covariance estimated from the data, relative (Frobenius) error and worst coil variance error:",
            "",
            "| coils | SNR | covariance error | worst coil variance error |",
            "|---|---|---|---|",
        ]
        for r in kspace_rows:
            if "cov_rel_error" in r:
                lines.append(
                    f"| {r['coils']} | {r['snr']} | {100 * r['cov_rel_error']:.1f}% | {100 * r['max_coil_variance_error']:.1f}% |"
                )
        lines.append("")
    if magnitude_rows:
        lines += [
            "## Table 2: magnitude images (sigma = 25/255 per real component)",
            "",
            "| coils | noise | wavelet | background | foreground | auto (estimator) |",
            "|---|---|---|---|---|---|",
        ]
        for r in magnitude_rows:
            if r["kind"] != "estimates":
                continue
            rel = functools.partial(relative_error, truth=r["sigma"])
            lines.append(
                f"| {r['coils']} | {r['noise']} | {rel(r['sigma_wavelet'])} | {rel(r['sigma_background'])} | "
                f"{rel(r['sigma_foreground'])} | {rel(r['sigma_auto'])} ({r['auto_estimator']}) |"
            )
        lines += [
            "",
            f"True sigma {MAGNITUDE_SIGMA:.4f}.",
            "",
            "| coils | method | PSNR brain | SSIM | fit s |",
            "|---|---|---|---|---|",
        ]
        for r in magnitude_rows:
            if r["kind"] == "denoise":
                lines.append(
                    f"| {r['coils']} | {r['method']} | {fmt(r['psnr_brain'])} | {fmt(r['ssim'], 3)} | {fmt(r['seconds'], 0)} |"
                )
        lines.append("")
    return "\n".join(lines)


def draw(figure: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in figure if k[2] == "clean"]
    if not keys:
        return
    n_coils, level, _ = keys[0]
    panels = [
        ("noisy", "noisy RSS"),
        ("rss", "C2S on RSS"),
        ("complex", "C2S complex (default)"),
        ("clean", "noise-free RSS"),
    ]
    panels = [(tag, title) for tag, title in panels if (n_coils, level, tag) in figure]
    clean = figure[(n_coils, level, "clean")]
    index = len(clean) // 2
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.8))
    for axis, (tag, title) in zip(axes, panels):
        axis.imshow(figure[(n_coils, level, tag)][index], cmap="gray", vmin=0, vmax=float(clean.max()))
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    fig.suptitle(f"{n_coils} coils, {level} SNR (sigma {SIGMAS[level]})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="+", default=["kspace", "magnitude"], choices=["kspace", "magnitude"])
    parser.add_argument("--coils", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument("--fit-coils", nargs="+", type=int, default=[8], help="coil counts with C2S fits")
    parser.add_argument("--levels", nargs="+", default=["low", "high"], choices=list(SIGMAS))
    parser.add_argument("--magnitude-coils", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suffix", default="")
    parser.add_argument(
        "--c2s-rows",
        nargs="+",
        default=["complex", "rss", "oracle"],
        choices=["complex", "rss", "oracle"],
        help="which C2S fits of the k-space table to run",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    data = load_mni152_axial()
    kspace_rows, magnitude_rows, figure = [], [], {}
    with tempfile.TemporaryDirectory() as work:
        if "kspace" in args.tables:
            kspace_rows, figure = kspace_table(
                data,
                tuple(args.coils),
                tuple(args.levels),
                tuple(args.fit_coils),
                Path(work),
                args.seed,
                tuple(args.c2s_rows),
            )
    if "magnitude" in args.tables:
        magnitude_rows = magnitude_table(data, tuple(args.magnitude_coils), args.seed)
    command = "python benchmarks/realistic_scans.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(exist_ok=True)
    name = f"realistic_scans{args.suffix}"
    text = report(kspace_rows, magnitude_rows, command.strip(), time.perf_counter() - start)
    (RESULTS / f"{name}.md").write_text(text)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"kspace": kspace_rows, "magnitude": magnitude_rows}, indent=1, default=float)
    )
    if figure:
        draw(figure, RESULTS / f"{name}.png")
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
