"""4-D series: C2S against dipy's MP-PCA and Patch2Self on a simulated diffusion series with a clean reference.

The series is built on MNI152's tissue maps (nilearn) at 2 mm: 3 b=0 volumes and 30 directions at
b=1000 s/mm^2; grey matter and CSF diffuse isotropically (0.8e-3 and 3.0e-3 mm^2/s), white matter
along a smoothly turning fibre direction (1.7e-3 along, 0.3e-3 across), with partial volumes.
Rician noise of ``--sigma`` times the b=0 white-matter signal is added. Every method sees the
whole noisy series: MP-PCA (``dipy.denoise.localpca.mppca``, patch radius 2), Patch2Self
(``dipy.denoise.patch2self.patch2self``, OLS), C2S (its defaults, fitted on the series' volumes
under a time budget). dipy's own small real series (``small_101D``, 6x10x10, no reference) is also
run through ``fit``/``apply`` to show it goes in and comes out.

``python benchmarks/series.py [--sigma 0.08] [--budget 300] [--seed 0]`` writes
``benchmarks/results/series.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_data.deps import require
from bench_data.tissue import mni152_tissue_maps
from c2s_denoise import C2SDenoiser
from c2s_denoise.metrics import psnr

RESULTS = Path(__file__).resolve().parent / "results" / "series.md"


def _directions(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def simulate_series(n_slices: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean series ``(T, D, H, W)`` in [0, 1], its b-values and the brain mask ``(D, H, W)``."""
    gm, wm, csf, mask = (m[::2, ::2, ::2] for m in mni152_tissue_maps())  # 2 mm
    centre = mask.shape[2] // 2
    box = slice(centre - n_slices // 2, centre + n_slices // 2)
    gm, wm, csf, mask = (np.moveaxis(m[:, :, box], 2, 0) for m in (gm, wm, csf, mask))  # (D, X, Y)
    rows, cols = np.nonzero(mask.any(axis=0))
    crop = (slice(None), slice(rows.min() - 3, rows.max() + 4), slice(cols.min() - 3, cols.max() + 4))
    gm, wm, csf, mask = (m[crop] for m in (gm, wm, csf, mask))
    s0 = 0.75 * gm + 0.65 * wm + 1.0 * csf  # T2-weighted b=0: CSF brightest
    z, x, y = np.meshgrid(*(np.arange(n) for n in gm.shape), indexing="ij")
    fibre = np.stack([np.cos(x / 9.0), np.sin(y / 11.0), 0.4 + 0.0 * z])
    fibre /= np.linalg.norm(fibre, axis=0, keepdims=True)
    bvals = np.array([0.0] * 3 + [1000.0] * 30)
    gradients = np.concatenate([np.zeros((3, 3)), _directions(30, seed)])
    series = []
    for b, g in zip(bvals, gradients):
        along = np.einsum("c,c...->...", g, fibre) ** 2
        wm_diffusivity = 0.3e-3 + (1.7e-3 - 0.3e-3) * along
        attenuation = gm * np.exp(-b * 0.8e-3) + wm * np.exp(-b * wm_diffusivity) + csf * np.exp(-b * 3.0e-3)
        total = np.maximum(gm + wm + csf, 1e-6)
        series.append(np.where(total > 1e-3, s0 * attenuation / total, 0.0))
    return np.stack(series), bvals, mask


def _rician(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(clean + sigma * rng.standard_normal(clean.shape) + 1j * sigma * rng.standard_normal(clean.shape))


def _scores(estimate: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    from skimage.metrics import structural_similarity

    peak = float(clean.max())
    inside = np.broadcast_to(mask, clean.shape)
    ssim = [
        structural_similarity(e, c, data_range=peak)
        for volume, ref in zip(estimate, clean)
        for e, c in zip(volume, ref)
    ]
    return {
        "psnr_brain": psnr(estimate[inside], clean[inside], range_=peak),
        "psnr_whole": psnr(estimate, clean, range_=peak),
        "ssim": float(np.mean(ssim)),
    }


def run(sigma_fraction: float, budget: float, seed: int) -> list[dict]:
    require("dipy")
    from dipy.denoise.localpca import mppca
    from dipy.denoise.patch2self import patch2self

    clean, bvals, mask = simulate_series(seed=seed)
    sigma = sigma_fraction * float(np.median(clean[0][mask & (clean[0] > 0.5)]))
    noisy = _rician(clean, sigma, seed + 1)
    as_dipy = np.moveaxis(noisy, 0, -1)  # (D, X, Y, T): dipy's volumes on the last axis
    rows = [{"method": "noisy", **_scores(noisy, clean, mask), "seconds": 0.0}]
    start = time.perf_counter()
    rows.append({"method": "MP-PCA (dipy, patch radius 2)", **_scores(np.moveaxis(mppca(as_dipy, patch_radius=2), -1, 0), clean, mask), "seconds": time.perf_counter() - start})  # fmt: skip
    start = time.perf_counter()
    p2s = patch2self(as_dipy, bvals, model="ols", shift_intensity=True, clip_negative_vals=False, b0_threshold=50)
    rows.append({"method": "Patch2Self (dipy, OLS)", **_scores(np.moveaxis(p2s, -1, 0), clean, mask), "seconds": time.perf_counter() - start})  # fmt: skip
    start = time.perf_counter()
    model = C2SDenoiser(random_state=seed, max_time=budget).fit(list(noisy))
    denoised = np.stack(model.transform(list(noisy)))
    rows.append({"method": f"C2S (defaults, {budget:.0f} s budget, {model.n_iter_} steps)", **_scores(denoised, clean, mask), "seconds": time.perf_counter() - start})  # fmt: skip
    return rows, noisy.shape, sigma


def real_series_round_trip() -> str:
    """``fit`` and ``apply`` on dipy's ``small_101D`` (6x10x10x102): shape and header in, shape and header out."""
    import nibabel as nib
    from dipy.data import get_fnames
    from typer.testing import CliRunner

    from c2s_denoise.cli import app

    source = Path(get_fnames(name="small_101D")[0])
    with tempfile.TemporaryDirectory() as folder:
        runner = CliRunner()
        model = Path(folder) / "m.c2s"
        fit = runner.invoke(app, ["fit", str(source), "-o", str(model), "--max-iter", "200", "--patch-size", "8", "--seed", "0"])  # fmt: skip
        apply = runner.invoke(app, ["apply", str(model), str(source), "-o", folder])
        if fit.exit_code or apply.exit_code:
            return f"failed: {fit.output[-300:]} {apply.output[-300:]}"
        output = nib.load(json.loads(apply.stdout)["outputs"][0]["output"])
        original = nib.load(source)
        same = output.shape == original.shape and np.array_equal(output.affine, original.affine)
        return f"`small_101D` {original.shape} in, {output.shape} out, affine {'equal' if same else 'DIFFERENT'}"


def _cpu() -> str:
    try:
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        return f"{names[0]} x {len(names)}"
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigma", type=float, default=0.08, help="noise, as a fraction of the b=0 white-matter signal")
    parser.add_argument("--budget", type=float, default=300.0, help="C2S fit time budget in seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows, shape, sigma = run(args.sigma, args.budget, args.seed)
    lines = [
        "# 4-D series: C2S against MP-PCA and Patch2Self (simulated diffusion on MNI152 tissue maps)",
        "",
        f"Series {shape} (volumes, slices, rows, columns) at 2 mm, 3 b=0 + 30 directions at b=1000, Rician noise "
        f"sigma = {sigma:.4f} ({args.sigma:g} of the b=0 white-matter signal), seed {args.seed}. PSNR with the clean "
        "series' peak as range, inside the brain and over the whole field; SSIM (skimage defaults) averaged over "
        "every slice of every volume. One run, one seed.",
        "",
        f"Machine: {_cpu()}, {platform.system()}; command: "
        f"`python benchmarks/series.py --sigma {args.sigma:g} --budget {args.budget:g} --seed {args.seed}`.",
        "",
        "| method | brain PSNR (dB) | whole PSNR (dB) | SSIM | seconds |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {r['method']} | {r['psnr_brain']:.2f} | {r['psnr_whole']:.2f} | {r['ssim']:.3f} | {r['seconds']:.0f} |"
            for r in rows
        ),  # fmt: skip
        "",
        f"Real series round trip through the command line: {real_series_round_trip()}.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
