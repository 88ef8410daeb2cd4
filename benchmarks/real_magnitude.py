"""Real magnitude scans without a reference: C2S defaults on dipy's ``S0_10slices`` and ``aniso_vox``.

Usage::

    pip install -e ".[bench]"
    python benchmarks/real_magnitude.py            # about 10 minutes on 2 cores

Each scan (a real b0 volume shipped in the dipy wheel, uint16 magnitude with air around the head)
is fitted and denoised as one volume with the defaults (``sigma`` and the noise model estimated,
one coil assumed). With no clean reference the checks are those a person makes:

- the method noise ``input - output`` inside the head (output above 10 sigma, away from the
  edge) should look like the noise: spread close to the estimated sigma, and no structure
  (its correlation with the output near 0);
- the air (the 12 x 12 corners of every slice) should come out flat: its spread a fraction of
  the input's, and no speckle (the 99th percentile below the input air's mean).

Results: ``benchmarks/results/real_magnitude.{md,json}`` and a picture per scan
(``real_magnitude_<scan>.png``: input, output, method noise, at a radiologist's window and a
window on the air).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from c2s_denoise import C2SDenoiser, __version__
from c2s_denoise.physics.noise import air_correlation
from classical import FLOOR_SHRINKAGE, bm3d_slices
from report import command, machine

RESULTS = Path(__file__).parent / "results"
SCANS = ("S0_10slices", "aniso_vox")


def load_scan(name: str) -> np.ndarray:
    """The scan as ``(D, H, W)`` float64 (slices first)."""
    import nibabel as nib
    from dipy.data import get_fnames

    path = get_fnames(name="S0_10" if name == "S0_10slices" else name)
    data = np.asanyarray(nib.load(path).dataobj).astype(np.float64)
    if data.ndim == 4:
        data = data[..., 0]
    return np.moveaxis(data, -1, 0)


def corners(volume: np.ndarray, size: int = 12) -> np.ndarray:
    return np.concatenate(
        [
            volume[:, rows, cols].ravel()
            for rows in (slice(0, size), slice(-size, None))
            for cols in (slice(0, size), slice(-size, None))
        ]
    )


def head_method_noise(noisy: np.ndarray, denoised: np.ndarray, sigma: float) -> dict:
    """Spread of ``noisy - denoised`` inside the head (output above 10 sigma, eroded by 2 pixels) over
    sigma, and its correlation with the output."""
    from scipy.ndimage import binary_erosion

    residual = noisy - denoised
    head = binary_erosion(denoised > 10 * sigma, iterations=2, structure=np.ones((1, 3, 3)))
    return {
        "head_pixels": int(head.sum()),
        "method_noise_spread_over_sigma": float(residual[head].std() / sigma),
        "method_noise_output_correlation": float(np.corrcoef(residual[head], denoised[head])[0, 1]),
    }


def bm3d_stabilised(volume: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D slice by slice on the stabilised volume (one coil), back through the inverse with C2S's floor shrinkage."""
    return bm3d_slices(volume, sigma, n_coils=1, vst=True, floor_shrinkage=FLOOR_SHRINKAGE)


def analyse(name: str, steps: int, seed: int) -> dict:
    noisy = load_scan(name)
    start = time.perf_counter()
    model = C2SDenoiser(max_iter=steps, random_state=seed)
    denoised = model.fit([noisy]).transform([noisy])[0]
    seconds = time.perf_counter() - start
    sigma = float(model.sigma_[0])
    correlation = air_correlation(noisy, model.n_coils_ if model.noise_model_ == "ncchi" else 1, sigma)
    air_in, air_out = corners(noisy), corners(denoised)
    peer = bm3d_stabilised(noisy, sigma)  # the classical peer, given the same sigma
    row = {
        "scan": name,
        "shape": list(noisy.shape),
        "sigma": sigma,
        "sigma_method": str(model.sigma_methods_[0]),
        "noise_model": model.noise_model_,
        "n_coils": float(model.n_coils_),
        "air_neighbour_correlation": correlation,
        "context_slices": int(model.context_slices_),
        "steps": int(model.n_iter_),
        "seconds": round(seconds, 1),
        **head_method_noise(noisy, denoised, sigma),
        "air_in_mean": float(air_in.mean()),
        "air_in_spread": float(air_in.std()),
        "air_out_mean": float(air_out.mean()),
        "air_out_spread": float(air_out.std()),
        "air_out_p99": float(np.percentile(air_out, 99)),
        "bm3d": head_method_noise(noisy, peer, sigma),
        "bm3d_air_out_spread": float(corners(peer).std()),
    }
    picture(name, noisy, denoised, noisy - denoised, sigma)
    return row


def picture(name: str, noisy: np.ndarray, denoised: np.ndarray, residual: np.ndarray, sigma: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = noisy.shape[0] // 2
    top = float(np.percentile(noisy, 99.5))
    panels = [
        (noisy[z], (0, top), "input"),
        (denoised[z], (0, top), "C2S output"),
        (residual[z], (-3 * sigma, 3 * sigma), "input - output (+-3 sigma)"),
        (noisy[z], (0, 4 * sigma), "input, air window (0-4 sigma)"),
        (denoised[z], (0, 4 * sigma), "output, air window (0-4 sigma)"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for axis, (image, (low, high), title) in zip(axes, panels):
        axis.imshow(image, cmap="gray", vmin=low, vmax=high)
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.suptitle(f"dipy {name}, slice {z}, sigma {sigma:.1f} (estimated)", fontsize=10)
    figure.tight_layout()
    figure.savefig(RESULTS / f"real_magnitude_{name}.png", dpi=80)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", nargs="+", default=list(SCANS))
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    rows = [analyse(name, args.steps, args.seed) for name in args.scans]
    (RESULTS / "real_magnitude.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# Real magnitude scans (no reference): method noise and air",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"c2s-denoise {__version__}, defaults, seed {args.seed}.",
        "",
        "Method noise = input - output inside the head (output > 10 sigma, eroded by 2 pixels); "
        "air = the 12 x 12 corners of every slice. Targets (issue 21): method-noise spread within "
        "15% of sigma, its correlation with the output below 0.1; output air spread at most a "
        "quarter of the input's, its 99th percentile below the input air's mean. The peer: BM3D slice by "
        f"slice on the stabilised scan with the same sigma (exact inverse, floor shrinkage {FLOOR_SHRINKAGE:g} in air).",
        "",
        "| scan | sigma (method), coils | air neighbour correlation | fit s | method noise spread / sigma | "
        "corr(method noise, output) | air in: mean, spread | air out: mean, spread, p99 | "
        "BM3D: method noise spread / sigma, corr; air out spread |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scan']} {tuple(r['shape'])} | {r['sigma']:.2f} ({r['sigma_method']}), {r['n_coils']:.2f} | "
            f"{r['air_neighbour_correlation']:.2f} | {r['seconds']:.0f} | "
            f"{r['method_noise_spread_over_sigma']:.3f} | {r['method_noise_output_correlation']:.3f} | "
            f"{r['air_in_mean']:.1f}, {r['air_in_spread']:.1f} | "
            f"{r['air_out_mean']:.2f}, {r['air_out_spread']:.2f}, {r['air_out_p99']:.1f} | "
            f"{r['bm3d']['method_noise_spread_over_sigma']:.3f}, {r['bm3d']['method_noise_output_correlation']:.3f}; "
            f"{r['bm3d_air_out_spread']:.2f} |"
        )
    (RESULTS / "real_magnitude.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
