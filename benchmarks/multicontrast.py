"""Multi-contrast and adjacent-slice (2.5-D) C2S against 2-D single-contrast C2S, on MNI152 anatomy.

Usage::

    pip install -e ".[bench]"
    python benchmarks/multicontrast.py                # 11 fits of 2000 steps (~1 min each on 2 CPU cores)
    python benchmarks/multicontrast.py --steps 5 --out /tmp/mc   # smoke test of the whole pipeline
    python benchmarks/multicontrast.py --dry-run      # build the data, print shapes and noisy metrics only

Table A (multi-contrast): T1-, T2-, PD-weighted and FLAIR images simulated at 3 T from the MNI152
grey/white-matter maps (``bench_data.load_mni152_multicontrast``: literature T1/T2/PD per tissue,
spin-echo and inversion-recovery signal equations, partial volume), on the 30 training / 6 test
axial slices of ``compare.py``. For each target contrast: 2-D C2S trained on that contrast alone
against multi-contrast C2S that also sees the three other contrasts of the same slice. Gaussian noise
sigma = 25/255 on every contrast, drawn once over the (n, 4, H, W) array (train seed 1, test seed
2), so both models denoise the same noisy target images.

Table B (adjacent slices): slabs of axial MNI152 T1 slices 2 mm apart
(``bench_data.load_mni152_slabs``); 2-D C2S (``context_slices=0``) against 2.5-D C2S that sees
``context_slices`` = 1 or 2 neighbouring slices on each side. Metrics over every slice of the test
slabs, and over their centre slices alone.

Both tables: the C2S defaults of ``compare.py`` (U-Net width 16, depth 3, batch 8 of 48x48 patches,
AdamW warm-up/cosine, EMA), ``--steps`` steps per network, ``random_state=0``, the true sigma; metrics
of ``compare.py`` on outputs clipped to [0, 1] (PSNR inside the brain mask, SSIM). Writes
``<out>/multicontrast_sigma25_<steps>steps.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from bench_data import (
    DEFAULT_TEST_SLICES,
    TEST_NOISE_SEED,
    TRAIN_NOISE_SEED,
    add_noise,
    load_mni152_multicontrast,
    load_mni152_slabs,
)
from c2s_denoise import C2SDenoiser, __version__
from report import command, machine
from scoring import metrics

SIGMA_LEVEL = 25  # sigma = 25/255 on images in [0, 1]
PAPER_CLAIM = "+0.5 to +1.1 dB on T1 from adding a second contrast (docs/method.md section 6)"
DESIGN_NOTE = (
    "one network per target contrast; the other contrasts (Table A) and the neighbouring slices "
    "(Table B) are conditioning channels: noisy, with the same noise draw as the data, but never "
    "further corrupted; the GDSM corruption and the loss act on the target channel (the target "
    "slice) only (docs/method.md section 6)"
)


def table_a(data, noisy_train, noisy_test, sigma: float, steps: int) -> tuple[list[dict], str]:
    """Single- vs multi-contrast C2S for each target contrast: rows and the device used."""
    rows, device = [], ""
    for c, name in enumerate(data.contrasts):
        clean, mask = data.test[:, c], data.test_mask
        single = C2SDenoiser(sigma=sigma, max_iter=steps, random_state=0).fit(noisy_train[:, c])
        single_out = single.transform(noisy_test[:, c])
        multi = C2SDenoiser(
            sigma=sigma, contrasts=data.contrasts, target_contrasts=(name,), max_iter=steps, random_state=0
        ).fit(noisy_train)
        multi_out = multi.transform(noisy_test)
        if multi_out.shape != noisy_test.shape:
            raise RuntimeError(f"multi-contrast transform returned {multi_out.shape}, expected {noisy_test.shape}")
        for other in range(len(data.contrasts)):  # conditioning contrasts should come back unchanged
            if other != c and not np.allclose(multi_out[:, other], noisy_test[:, other]):
                print(f"  warning: {data.contrasts[other]} changed although only {name} is a target", file=sys.stderr)
        noisy_m, single_m, multi_m = (metrics(x, clean, mask) for x in (noisy_test[:, c], single_out, multi_out[:, c]))
        rows.append(
            {
                "contrast": name,
                "noisy_psnr_brain": noisy_m["psnr_brain"],
                "single_psnr_brain": single_m["psnr_brain"],
                "multi_psnr_brain": multi_m["psnr_brain"],
                "gain_db": multi_m["psnr_brain"] - single_m["psnr_brain"],
                "single_ssim": single_m["ssim"],
                "multi_ssim": multi_m["ssim"],
                "single_psnr": single_m["psnr"],
                "multi_psnr": multi_m["psnr"],
                "single_fit_s": single.fit_time_,
                "multi_fit_s": multi.fit_time_,
            }
        )
        device = single.device_
        if name == "T1" and "T2" in data.contrasts:  # the paper's setting: one extra contrast
            pair = [c, data.contrasts.index("T2")]
            duo = C2SDenoiser(
                sigma=sigma, contrasts=("T1", "T2"), target_contrasts=("T1",), max_iter=steps, random_state=0
            ).fit(noisy_train[:, pair])
            duo_m = metrics(duo.transform(noisy_test[:, pair])[:, 0], clean, mask)
            rows.append(
                {
                    **rows[-1],
                    "contrast": "T1 (conditioning: T2 only)",
                    "multi_psnr_brain": duo_m["psnr_brain"],
                    "gain_db": duo_m["psnr_brain"] - single_m["psnr_brain"],
                    "multi_ssim": duo_m["ssim"],
                    "multi_psnr": duo_m["psnr"],
                    "multi_fit_s": duo.fit_time_,
                }
            )
        print(
            f"  {name}: single {single_m['psnr_brain']:.2f} dB ({single.fit_time_:.0f} s), "
            f"multi {multi_m['psnr_brain']:.2f} dB ({multi.fit_time_:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return rows, device


def table_b(slabs, noisy_train, noisy_test, sigma: float, steps: int, contexts: tuple[int, ...]) -> list[dict]:
    """2-D vs 2.5-D C2S on slabs: metrics over all test-slab slices and over their centre slices."""
    depth = slabs.test.shape[1]
    centre = (depth - 1) // 2
    flat = (-1, *slabs.test.shape[2:])
    rows = []
    for k in contexts:
        model = C2SDenoiser(sigma=sigma, context_slices=k, max_iter=steps, random_state=0).fit(noisy_train)
        out = model.transform(noisy_test)
        if out.shape != noisy_test.shape:
            raise RuntimeError(f"transform returned {out.shape}, expected {noisy_test.shape}")
        every = metrics(out.reshape(flat), slabs.test.reshape(flat), slabs.test_mask.reshape(flat))
        middle = metrics(out[:, centre], slabs.test[:, centre], slabs.test_mask[:, centre])
        rows.append(
            {
                "context_slices": k,
                "psnr_brain": every["psnr_brain"],
                "ssim": every["ssim"],
                "psnr": every["psnr"],
                "centre_psnr_brain": middle["psnr_brain"],
                "centre_ssim": middle["ssim"],
                "fit_s": model.fit_time_,
            }
        )
        print(
            f"  context_slices={k}: {every['psnr_brain']:.2f} dB ({model.fit_time_:.0f} s)", file=sys.stderr, flush=True
        )
    return rows


def write_report(path: Path, header: list[str], rows_a: list[dict], rows_b: list[dict], noisy_b: dict) -> str:
    lines = [
        f"# Multi-contrast and adjacent-slice C2S, Gaussian sigma = {SIGMA_LEVEL}/255",
        "",
        *header,
        "",
        "## Table A: one target contrast, without and with the other three contrasts as conditioning",
        "",
        f"Paper's claim: {PAPER_CLAIM}. Rows with one contrast name use all three other contrasts as conditioning; "
        "the 'T2 only' row is the paper's setting (one extra contrast).",
        "",
        "| target | noisy PSNR brain | single PSNR brain | multi PSNR brain | gain (dB) | single SSIM | multi SSIM "
        "| single fit s | multi fit s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows_a:
        lines.append(
            f"| {r['contrast']} | {r['noisy_psnr_brain']:.2f} | {r['single_psnr_brain']:.2f} | {r['multi_psnr_brain']:.2f} "
            f"| {r['gain_db']:+.2f} | {r['single_ssim']:.3f} | {r['multi_ssim']:.3f} | {r['single_fit_s']:.0f} "
            f"| {r['multi_fit_s']:.0f} |"
        )
    base = next((r for r in rows_b if r["context_slices"] == 0), None)
    lines += [
        "",
        "## Table B: MNI152 T1 slabs, 2-D C2S against neighbouring slices as conditioning",
        "",
        "| method | PSNR brain (all test slices) | gain (dB) | SSIM | PSNR brain (centre slices) | SSIM (centre) | fit s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| noisy input | {noisy_b['psnr_brain']:.2f} | - | {noisy_b['ssim']:.3f} | - | - | - |",
    ]
    for r in rows_b:
        label = (
            "2-D C2S (context_slices=0)"
            if r["context_slices"] == 0
            else f"2.5-D C2S, context_slices={r['context_slices']}"
        )
        gain = f"{r['psnr_brain'] - base['psnr_brain']:+.2f}" if base is not None else "-"
        lines.append(
            f"| {label} | {r['psnr_brain']:.2f} | {gain} | {r['ssim']:.3f} | {r['centre_psnr_brain']:.2f} "
            f"| {r['centre_ssim']:.3f} | {r['fit_s']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps of every network (default 2000)")
    parser.add_argument("--contexts", type=int, nargs="+", default=[0, 1, 2], help="Table B context_slices values")
    parser.add_argument("--table-b-only", action="store_true", help="skip Table A (multi-contrast)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--dry-run", action="store_true", help="build the data, print shapes and noisy metrics; no training"
    )
    parser.add_argument("--train-slabs", type=int, default=8, help="Table B training slabs (default 8)")
    parser.add_argument(
        "--slab-depth", type=int, default=5, help="Table B slices per slab (default 5; >= 4 for context 2)"
    )
    parser.add_argument(
        "--slab-test-slices",
        type=int,
        nargs="+",
        default=list(DEFAULT_TEST_SLICES[::2]),
        help="Table B test slab centres (default 40 72 104: every other test slice, as 5-slice slabs 2 mm "
        "apart around all six leave no room for training slabs between them)",
    )
    parser.add_argument(
        "--slab-gap", type=int, default=4, help="Table B: training slices > gap from test slabs (default 4)"
    )
    args = parser.parse_args()
    sigma = SIGMA_LEVEL / 255
    contexts = tuple(args.contexts)

    data = load_mni152_multicontrast(crop_margin=4)
    noisy_train = add_noise(data.train, sigma, seed=TRAIN_NOISE_SEED)
    noisy_test = add_noise(data.test, sigma, seed=TEST_NOISE_SEED)
    slabs = load_mni152_slabs(
        args.train_slabs,
        args.slab_depth,
        slice_step=2,
        crop_margin=4,
        test_slices=tuple(args.slab_test_slices),
        gap=args.slab_gap,
    )
    noisy_train_slabs = add_noise(slabs.train, sigma, seed=TRAIN_NOISE_SEED)
    noisy_test_slabs = add_noise(slabs.test, sigma, seed=TEST_NOISE_SEED)
    flat = (-1, *slabs.test.shape[2:])
    noisy_b = metrics(noisy_test_slabs.reshape(flat), slabs.test.reshape(flat), slabs.test_mask.reshape(flat))
    if args.dry_run:
        print(f"Table A: {data.source}")
        print(
            f"  contrasts {data.contrasts}; train {data.train.shape}, test {data.test.shape}, masks {data.test_mask.shape}"
        )
        print(f"  train slices {data.train_indices}; test slices {data.test_indices}")
        for c, name in enumerate(data.contrasts):
            inside = data.test[:, c][data.test_mask]
            m = metrics(noisy_test[:, c], data.test[:, c], data.test_mask)
            print(
                f"  {name}: clean brain mean {inside.mean():.3f}, noisy PSNR brain {m['psnr_brain']:.2f} dB, SSIM {m['ssim']:.3f}"
            )
        print(f"Table B: {slabs.source}")
        print(f"  train {slabs.train.shape}, test {slabs.test.shape}; max context_slices {max(contexts)}")
        print(f"  train slabs {slabs.train_indices}")
        print(f"  test slabs {slabs.test_indices}")
        print(f"  noisy PSNR brain {noisy_b['psnr_brain']:.2f} dB, SSIM {noisy_b['ssim']:.3f}")
        return

    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    if args.table_b_only:
        rows_a, device = [], "cpu"
    else:
        print(f"Table A ({len(data.contrasts)} x 2 fits of {args.steps} steps)", file=sys.stderr, flush=True)
        rows_a, device = table_a(data, noisy_train, noisy_test, sigma, args.steps)
    print(f"Table B ({len(contexts)} fits of {args.steps} steps)", file=sys.stderr, flush=True)
    rows_b = table_b(slabs, noisy_train_slabs, noisy_test_slabs, sigma, args.steps, contexts)
    h, w = data.test.shape[2:]
    header = [
        f"- date: {started:%Y-%m-%d %H:%M UTC}; command: `{command()}`",
        f"- machine: {machine()}; device {device}; c2s-denoise {__version__}",
        f"- Table A data: {data.source}; contrasts {', '.join(data.contrasts)} as channels; "
        f"{len(data.train)} training / {len(data.test)} held-out axial slices {h}x{w} (slices {data.test_indices}); "
        "each contrast scaled to [0, 1] by its maximum; Gaussian noise sigma = 25/255 on every contrast, "
        f"one draw over (n, {len(data.contrasts)}, H, W) (train seed {TRAIN_NOISE_SEED}, test seed {TEST_NOISE_SEED}), "
        "the same noisy target for the single- and multi-contrast model",
        f"- Table B data: {slabs.source}; {len(slabs.train)} training slabs {slabs.train_indices} and "
        f"{len(slabs.test)} test slabs {slabs.test_indices} of {slabs.test.shape[2]}x{slabs.test.shape[3]}, "
        f"training slices more than {args.slab_gap} slices from every test-slab slice; same noise model and seeds; "
        "input volumes (n, D, H, W); a neighbour beyond a slab's end is the mirror of the one on the other side",
        f"- C2S: `C2SDenoiser(sigma=25/255, max_iter={args.steps}, random_state=0)` (defaults: U-Net width 16, depth 3, "
        "batch 8 of 48x48 patches, AdamW warm-up/cosine, EMA), plus `contrasts=`, `target_contrasts=(target,)` (Table A) "
        "or `context_slices=k` (Table B); single-contrast fits on (n, H, W), multi-contrast on (n, 4, H, W)",
        f"- paper's claim: {PAPER_CLAIM}",
        f"- design: {DESIGN_NOTE}",
        "- metrics: outputs clipped to [0, 1]; PSNR inside the brain mask and SSIM (scikit-image, data_range 1), "
        "averaged over the test slices (`scoring.metrics`)",
    ]
    name = f"multicontrast_sigma{SIGMA_LEVEL}_{args.steps}steps" + ("_table_b" if args.table_b_only else "")
    text = write_report(args.out / f"{name}.md", header, rows_a, rows_b, noisy_b)
    print(text, flush=True)
    summary = {
        "date": f"{started:%Y-%m-%d %H:%M UTC}",
        "command": command(),
        "machine": machine(),
        "device": device,
        "version": __version__,
        "sigma": sigma,
        "steps": args.steps,
        "paper_claim": PAPER_CLAIM,
        "design": DESIGN_NOTE,
        "table_a": {
            "source": data.source,
            "contrasts": list(data.contrasts),
            "train_slices": list(data.train_indices),
            "test_slices": list(data.test_indices),
            "rows": rows_a,
        },
        "table_b": {
            "source": slabs.source,
            "train_slabs": [list(s) for s in slabs.train_indices],
            "test_slabs": [list(s) for s in slabs.test_indices],
            "gap": args.slab_gap,
            "noisy": noisy_b,
            "rows": rows_b,
        },
    }
    (args.out / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
