"""Noise maps: SENSE-accelerated and bias-field-corrected images, denoised with one sigma or with the noise map.

Usage::

    pip install -e ".[bench]"
    python benchmarks/noise_maps.py                       # R2, R3, R4 and bias, seed 0 (see docs/benchmarks.md)
    python benchmarks/noise_maps.py --quick               # smoke run: 2 slices, 200 C2S steps
    python benchmarks/noise_maps.py --cases R3 bias --seeds 0 1 --threads 2
    python benchmarks/noise_maps.py --methods bm3d-local c2s-local --merge   # rerun two rows, keep the others

Data: the 6 held-out axial MNI152 T1 slices of ``load_mni152_axial`` (233 x 197, intensities in
[0, 1], zero background; ``--slices all`` adds the 30 training slices), whose noise level varies
over the image in a known way.

``R2``, ``R3``, ``R4`` (parallel imaging). Each slice gets a smooth object phase (up to about 1
rad) and is padded with zeros to 240 rows (a multiple of 2, 3 and 4, so every R shares one field
of view and one set of coil maps). 8 coils with the smooth sensitivities of
``c2s_denoise.physics.simulate.coil_maps`` (seed 0), normalised to a unit root-sum-of-squares
(ESPIRiT-like), coil noise correlated between neighbouring coils
(``simulate.noise_covariance``, correlation 0.3, coil levels +-20%) of mean level
``COIL_SIGMA`` per real component in the fully sampled coil images. Uniform Cartesian
undersampling by R along the phase-encode axis (axis 0, the 240 rows) and SENSE unfolding with
the true coil maps and covariance (``c2s_denoise.physics.sense``; estimating the maps from
calibration lines, ESPIRiT, is *not* simulated). The reconstruction is cropped back to 233 rows.
Its noise is complex Gaussian with the exact per-pixel level of ``sense_noise_map``,
``sigma sqrt(R) sqrt(diag((S^H Psi^-1 S)^-1))``: that is the true map (with correlated coils it
is not uniform even at R = 1, 0.61 to 0.87 sigma in the brain). ``COIL_SIGMA`` is chosen so
that the R = 3 reconstruction has a mean noise level of 20/255 inside the brain mask; R = 2 and
R = 4 keep the same coils and coil noise.

``bias`` (a bias-field-corrected image). ``y = x + sigma0 n / b`` with real Gaussian ``n`` and a
smooth multiplicative field ``b`` (Gaussian-filtered white noise, log-scaled to the range
0.6..1.6 on each slice, fixed per slice): the correction ``y = (b x + sigma0 n) / b`` of an image
seen through ``b`` amplifies the noise where ``b`` is low. The true map is ``sigma0 / b``;
``BIAS_SIGMA0`` gives a mean level of 20/255 inside the brain mask.

Rows: the noisy input; BM3D (``bm3d`` package) with one sigma, the package's wavelet estimate
(``estimate_sigma(image, "wavelet")`` per slice) or the true map's mean inside the brain mask;
BM3D on the map-normalised image (divided by the true map over its mean in the brain, denoised at
that mean, multiplied back), and the same with the map the package estimates (``estimate_noise_map``,
what C2S gets with ``sigma="local"``); C2S with one sigma (``C2SDenoiser(random_state=seed)``, every
default), with the true map (``sigma=[map of each slice]``) and with the noise map the package
estimates (``sigma="local"``). Complex images: BM3D denoises the real and imaginary parts
separately; C2S takes the complex image. C2S fits on all the slices it then denoises (a user fits
on the scan at hand), each slice one item. Metrics (``scoring.metrics``, as ``compare.py`` and
``magnitude.py``): PSNR inside the brain mask and over the slice
(:func:`c2s_denoise.metrics.psnr`), SSIM over the slice (scikit-image's 7x7 window), on the
magnitude of the output clipped to [0, 1], range 1, against the clean slice; mean over slices.
Results: ``benchmarks/results/noise_maps.{md,json}`` (``--quick``: ``noise_maps_quick``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from bench_data import load_mni152_axial
from c2s_denoise import __version__
from c2s_denoise.physics.noise import estimate_sigma
from c2s_denoise.physics.sense import g_factor, normalise_coil_maps, sense_noise_map, sense_reconstruct, undersample
from c2s_denoise.physics.simulate import coil_maps, noise_covariance
from report import command, machine
from scoring import metrics

RESULTS = Path(__file__).parent / "results"
CASES = ("R2", "R3", "R4", "bias")
N_COILS = 8
COIL_SEED = 0
#: Rows of the padded field of view: a multiple of 2, 3 and 4 above the slices' 233.
PADDED_HEIGHT = 240
#: Mean noise level inside the brain that COIL_SIGMA (at R = 3) and BIAS_SIGMA0 give.
TARGET = 20 / 255
#: Coil noise per real component (fully sampled coil images): mean R = 3 SENSE noise 20/255 in the brain
#: (``python benchmarks/noise_maps.py --calibrate`` recomputes it on the held-out slices).
COIL_SIGMA = 0.02666
#: ``sigma0`` of the bias case: mean ``sigma0 / b`` of 20/255 in the brain of the held-out slices.
BIAS_SIGMA0 = 0.07179
BIAS_RANGE = (0.6, 1.6)
METHODS = (
    "noisy",
    "bm3d-estimated",
    "bm3d-mean",
    "bm3d-normalised",
    "bm3d-local",
    "c2s",
    "c2s-map",
    "c2s-local",
)
LABELS = {
    "noisy": "noisy input",
    "bm3d-estimated": "BM3D, one sigma: wavelet estimate",
    "bm3d-mean": "BM3D, one sigma: true mean level in the brain",
    "bm3d-normalised": "BM3D on the map-normalised image (true map)",
    "bm3d-local": "BM3D on the map-normalised image (the package's estimated map)",
    "c2s": "C2S, one sigma (defaults)",
    "c2s-map": "C2S, true noise map",
    "c2s-local": 'C2S, estimated noise map (sigma="local")',
}


def object_phase(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth object phase (radians): low-order polynomial with coefficients up to 1."""
    rng = np.random.default_rng([seed, 7])
    y = np.linspace(-1, 1, shape[0])[:, None]
    x = np.linspace(-1, 1, shape[1])[None, :]
    a = rng.uniform(-1, 1, 5)
    return a[0] + a[1] * y + a[2] * x + a[3] * x * y + a[4] * (x**2 - y**2)


def sense_setup(acceleration: int, width: int) -> dict[str, np.ndarray]:
    """Coil maps, covariance, unit-sigma noise map and g-factor on the padded field of view."""
    maps = normalise_coil_maps(coil_maps(N_COILS, (PADDED_HEIGHT, width), seed=COIL_SEED))
    psi = noise_covariance(N_COILS, 1.0, seed=COIL_SEED)
    return {
        "maps": maps,
        "psi": psi,
        "unit_map": sense_noise_map(maps, acceleration, 1.0, psi),
        "g": g_factor(maps, acceleration, psi),
    }


def sense_case(clean: np.ndarray, indices: tuple, acceleration: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Complex SENSE images (n, H, W), their true noise map (n, H, W) and the g-factor (H, W)."""
    n, height, width = clean.shape
    top = (PADDED_HEIGHT - height) // 2
    setup = sense_setup(acceleration, width)
    padded = np.zeros((n, PADDED_HEIGHT, width), dtype=np.complex128)
    padded[:, top : top + height] = clean * np.exp(1j * np.stack([object_phase(clean.shape[1:], k) for k in indices]))
    aliased = np.stack(
        [
            undersample(
                image,
                setup["maps"],
                acceleration,
                COIL_SIGMA,
                seed=np.random.default_rng([seed, acceleration, k]),
                noise_covariance=setup["psi"],
            )
            for image, k in zip(padded, indices)
        ]
    )
    images = sense_reconstruct(aliased, setup["maps"], acceleration, setup["psi"])[:, top : top + height]
    noise_map = COIL_SIGMA * setup["unit_map"][top : top + height]
    return images, np.broadcast_to(noise_map, clean.shape).copy(), {"g": setup["g"][top : top + height]}


def bias_field(shape: tuple[int, int], index: int) -> np.ndarray:
    """A smooth multiplicative field over ``BIAS_RANGE`` (log-linear), fixed for slice ``index``."""
    rng = np.random.default_rng([index, 11])
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=min(shape) / 5, mode="reflect")
    unit = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    low, high = BIAS_RANGE
    return low * (high / low) ** unit


def bias_case(clean: np.ndarray, indices: tuple, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Real images ``x + sigma0 n / b`` (n, H, W) and their true noise map ``sigma0 / b``."""
    fields = np.stack([bias_field(clean.shape[1:], k) for k in indices])
    noise = np.stack([np.random.default_rng([seed, 99, k]).standard_normal(clean.shape[1:]) for k in indices])
    noise_map = BIAS_SIGMA0 / fields
    return clean + noise_map * noise, noise_map, {"field": fields}


def make_case(case: str, clean: np.ndarray, indices: tuple, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    if case == "bias":
        return bias_case(clean, indices, seed)
    return sense_case(clean, indices, int(case[1:]), seed)


def in_brain_mean(noise_map: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of each slice's map inside its brain mask, shape (n,)."""
    return np.array([float(np.mean(m[b])) for m, b in zip(noise_map, mask)])


def bm3d_image(image: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D of one slice at level ``sigma``; complex slices part by part."""
    import bm3d

    if np.iscomplexobj(image):
        return bm3d.bm3d(image.real, sigma) + 1j * bm3d.bm3d(image.imag, sigma)
    return np.asarray(bm3d.bm3d(image, sigma), dtype=np.float64)


def bm3d_rows(method: str, images: np.ndarray, noise_map: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, dict]:
    means = in_brain_mean(noise_map, mask)
    if method == "bm3d-estimated":
        levels = np.array([estimate_sigma(image, "wavelet") for image in images])
        out = np.stack([bm3d_image(image, level) for image, level in zip(images, levels)])
        return out, {"sigma_used": float(np.mean(levels)), "sigma_rel_error": float(np.mean(levels / means - 1))}
    if method == "bm3d-mean":
        return np.stack([bm3d_image(image, level) for image, level in zip(images, means)]), {
            "sigma_used": float(np.mean(means))
        }
    if method == "bm3d-local":  # the map C2S gets with sigma="local", the same information
        from c2s_denoise.physics.noise import estimate_noise_map

        noise_map = np.stack([estimate_noise_map(image) for image in images])
        means = in_brain_mean(noise_map, mask)
    scales = noise_map / means[:, None, None]
    out = np.stack([bm3d_image(image / scale, level) * scale for image, scale, level in zip(images, scales, means)])
    return out, {"sigma_used": float(np.mean(means))}


def c2s_row(method: str, images: np.ndarray, noise_map: np.ndarray, seed: int, max_iter: int | None) -> tuple:
    from c2s_denoise import C2SDenoiser

    sigma = {"c2s": "auto", "c2s-map": [m for m in noise_map], "c2s-local": "local"}[method]
    options = {} if max_iter is None else {"max_iter": max_iter}
    model = C2SDenoiser(sigma=sigma, random_state=seed, **options)
    items = list(images)
    model.fit(items)
    start = time.perf_counter()
    out = np.stack(model.transform(items))
    extra = {"fit_seconds": float(model.fit_time_), "transform_seconds": time.perf_counter() - start}
    if method == "c2s":
        extra["sigma_used"] = float(np.mean(np.asarray(model.sigma_, dtype=np.float64)))
    return out, extra


def estimated_map_error(images: np.ndarray, noise_map: np.ndarray, mask: np.ndarray) -> float | None:
    """Median relative error, inside the brain, of the package's local noise map (None if it is not there)."""
    try:
        from c2s_denoise.physics.noise import estimate_noise_map
    except ImportError:
        return None
    errors = [np.abs(estimate_noise_map(image)[m] / true[m] - 1) for image, true, m in zip(images, noise_map, mask)]
    return float(np.median(np.concatenate(errors)))


def run_case(case: str, data, seed: int, methods: tuple[str, ...], max_iter: int | None) -> tuple[dict, list[dict]]:
    clean, mask, indices = data.images, data.masks, data.indices
    images, noise_map, extra = make_case(case, clean, indices, seed)
    brain = in_brain_mean(noise_map, mask)
    inside = noise_map[mask]
    info = {
        "case": case,
        "seed": seed,
        "mean_noise_brain": float(np.mean(brain)),
        "map_min_brain": float(inside.min()),
        "map_max_brain": float(inside.max()),
        "estimated_map_median_rel_error": estimated_map_error(images, noise_map, mask),
    }
    if "g" in extra:
        g = np.broadcast_to(extra["g"], clean.shape)[mask]
        info.update(coil_sigma=COIL_SIGMA, g_min_brain=float(g.min()), g_mean_brain=float(g.mean()))
        info["g_max_brain"] = float(g.max())
    else:
        info.update(sigma0=BIAS_SIGMA0)
    print(f"{case} seed {seed}: mean noise in brain {info['mean_noise_brain'] * 255:.1f}/255", file=sys.stderr)
    rows = []
    for method in methods:
        start = time.perf_counter()
        try:
            if method == "noisy":
                out, more = images, {}
            elif method.startswith("bm3d"):
                out, more = bm3d_rows(method, images, noise_map, mask)
            else:
                out, more = c2s_row(method, images, noise_map, seed, max_iter)
        except Exception as error:  # a row that cannot run yet (e.g. an API still being written) is reported
            print(f"  {method}: failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            rows.append({"case": case, "seed": seed, "method": method, "error": f"{type(error).__name__}: {error}"})
            continue
        seconds = time.perf_counter() - start
        row = {"case": case, "seed": seed, "method": method, **metrics(np.abs(out), clean, mask)}
        row.update(seconds=None if method == "noisy" else round(seconds, 1), **more)
        rows.append(row)
        print(f"  {method}: {row['psnr_brain']:.2f} dB brain, {seconds:.0f} s", file=sys.stderr, flush=True)
    return info, rows


class Slices:
    """Clean slices, brain masks and axial indices of the run."""

    def __init__(self, which: str, quick: bool) -> None:
        split = load_mni152_axial()
        images, masks, indices = split.test, split.test_mask, tuple(split.test_indices)
        if which == "all":
            images = np.concatenate([split.train, images])
            masks = np.concatenate([split.train_mask, masks])
            indices = tuple(split.train_indices) + indices
        if quick:
            images, masks, indices = images[2:4], masks[2:4], indices[2:4]
        self.images, self.masks, self.indices = images, masks, indices


def calibrate() -> None:
    """Print the COIL_SIGMA and BIAS_SIGMA0 that give a mean level TARGET in the held-out slices' brains."""
    data = Slices("test", quick=False)
    top = (PADDED_HEIGHT - data.images.shape[1]) // 2
    unit = sense_setup(3, data.images.shape[2])["unit_map"][top : top + data.images.shape[1]]
    unit_mean = np.mean(in_brain_mean(np.broadcast_to(unit, data.images.shape), data.masks))
    inverse = np.stack([1 / bias_field(data.images.shape[1:], k) for k in data.indices])
    print(
        f"COIL_SIGMA = {TARGET / unit_mean:.5f}, BIAS_SIGMA0 = {TARGET / np.mean(in_brain_mean(inverse, data.masks)):.5f}"
    )


def cell(values: list, fmt: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return ""
    text = format(float(np.mean(values)), fmt)
    return text + (f" +- {np.std(values):{fmt}}" if len(values) > 1 else "")


def merged(name: str, infos: list[dict], rows: list[dict], args) -> tuple[list[dict], list[dict], list[str]]:
    """The rows and cases of ``name``'s JSON record with this run's in place of the same (case, seed, method)."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return infos, rows, [command()]
    old = json.loads(path.read_text())
    new_rows = {(r["case"], r["seed"], r["method"]) for r in rows}
    new_cases = {(i["case"], i["seed"]) for i in infos}
    rows = [r for r in old["rows"] if (r["case"], r["seed"], r["method"]) not in new_rows] + rows
    infos = [i for i in old["cases"] if (i["case"], i["seed"]) not in new_cases] + infos
    present = {r["method"] for r in rows}
    args.methods = [m for m in METHODS if m in present]
    args.cases = [c for c in CASES if any(i["case"] == c for i in infos)]
    args.seeds = sorted({i["seed"] for i in infos})
    return infos, rows, old.get("commands", [old["command"]]) + [command()]


def report(infos: list[dict], rows: list[dict], args, data, elapsed: float, commands: list[str] | None = None) -> str:
    steps = "the estimator's default (8000)" if args.max_iter is None else str(args.max_iter)
    commands = commands or [command()]
    lines = [
        "# Noise maps: SENSE (R = 2, 3, 4) and a bias-field-corrected image",
        "",
        *(
            [f"Command: `{commands[0]}`  "]
            if len(commands) == 1
            else ["Commands (each later one replaced the rows it ran): " + "; ".join(f"`{c}`" for c in commands) + "  "]
        ),
        f"Machine: {machine()}  ",
        f"Date: {datetime.date.today()}, c2s-denoise {__version__}, seeds {list(args.seeds)}, C2S steps {steps}, "
        f"{len(data.indices)} MNI152 slices {list(data.indices)}, total {elapsed / 60:.1f} min.",
        "",
        "Setup in the docstring of `benchmarks/noise_maps.py`. SENSE: 8 coils (`simulate.coil_maps`, normalised), "
        f"correlated coil noise of mean level {COIL_SIGMA} per real component, uniform undersampling, SENSE with "
        "the true coil maps and covariance (no ESPIRiT / calibration-line map estimation simulated). "
        f"Bias: `x + sigma0 n / b`, sigma0 = {BIAS_SIGMA0}, b in {BIAS_RANGE[0]}..{BIAS_RANGE[1]}.",
        "",
        "| case | mean noise in brain (x255) | true map in brain, min..max (x255) | g-factor in brain, min / mean / max "
        "| estimated map, median relative error in brain |",
        "|---|---|---|---|---|",
    ]
    for info in infos:
        g = (
            f"{info['g_min_brain']:.2f} / {info['g_mean_brain']:.2f} / {info['g_max_brain']:.2f}"
            if "g_min_brain" in info
            else "-"
        )
        error = info["estimated_map_median_rel_error"]
        lines.append(
            f"| {info['case']} (seed {info['seed']}) | {255 * info['mean_noise_brain']:.1f} | "
            f"{255 * info['map_min_brain']:.1f}..{255 * info['map_max_brain']:.1f} | {g} | "
            f"{'not available' if error is None else f'{100 * error:.1f}%'} |"
        )
    lines += [
        "",
        "PSNR brain / whole (dB) and whole-slice SSIM of the magnitude of the output, clipped to [0, 1], range 1, "
        "mean over slices (+- spread over seeds where there are several); s: wall seconds of the row "
        "(C2S: fit + transform).",
    ]
    for case in args.cases:
        lines += ["", f"## {case}", "", "| method | PSNR brain | PSNR whole | SSIM | s |", "|---|---|---|---|---|"]
        for method in args.methods:
            group = [r for r in rows if r["case"] == case and r["method"] == method]
            done = [r for r in group if "error" not in r]
            if not done:
                reason = group[0]["error"] if group else "not run"
                lines.append(f"| {LABELS[method]} | not run: {reason[:120]} | | | |")
                continue
            lines.append(
                f"| {LABELS[method]} | {cell([r['psnr_brain'] for r in done], '.2f')} | "
                f"{cell([r['psnr'] for r in done], '.2f')} | {cell([r['ssim'] for r in done], '.3f')} | "
                f"{cell([r['seconds'] for r in done], '.0f')} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max-iter", type=int, default=None, help="C2S steps (default: the estimator's)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--slices", choices=("test", "all"), default="test", help="6 held-out, or all 36 slices")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 slices, 200 C2S steps")
    parser.add_argument("--calibrate", action="store_true", help="print the noise levels that give 20/255")
    parser.add_argument(
        "--merge", action="store_true", help="replace only the rows run (case, seed, method) in the saved results"
    )
    args = parser.parse_args()
    if args.calibrate:
        calibrate()
        return
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if args.quick and args.max_iter is None:
        args.max_iter = 200
    start = time.perf_counter()
    data = Slices(args.slices, args.quick)
    infos, rows = [], []
    for seed in args.seeds:
        for case in args.cases:
            info, case_rows = run_case(case, data, seed, tuple(args.methods), args.max_iter)
            infos.append(info)
            rows += case_rows
    name = "noise_maps_quick" if args.quick else "noise_maps"
    if sorted(args.cases) != sorted(CASES) and not args.merge:  # a partial run does not overwrite the whole one
        name += "_" + "_".join(args.cases)
    RESULTS.mkdir(exist_ok=True)
    commands = [command()]
    if args.merge:
        infos, rows, commands = merged(name, infos, rows, args)
    text = report(infos, rows, args, data, time.perf_counter() - start, commands)
    (RESULTS / f"{name}.md").write_text(text)
    record = {"command": command(), "commands": commands, "machine": machine(), "seeds": args.seeds}
    record["max_iter"] = args.max_iter
    record.update(slices=list(data.indices), coil_sigma=COIL_SIGMA, bias_sigma0=BIAS_SIGMA0, cases=infos, rows=rows)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1, default=float))
    print(text)


if __name__ == "__main__":
    main()
