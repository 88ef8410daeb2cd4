"""What a CPU training budget buys: brain PSNR of C2S, R2R and supervised Noise2Clean after 2, 5,
10 and 30 minutes of training on 2 cores, with BM3D (sigma known) as the line to beat.

Usage::

    python benchmarks/time_budget.py                      # everything, on this machine's cores
    python benchmarks/time_budget.py --methods c2s --minutes 2 5 --threads 1 \
        --rates c2s=39.1 --json benchmarks/results/time_budget_c2s.json
    python benchmarks/time_budget.py --report             # merge time_budget_*.json -> .md + .png

Each JSON file is one series (its date and the library's defaults of that day): the report
keeps the series apart, so a re-run with new defaults sits beside the old numbers.

A budget of ``m`` minutes is turned into optimiser steps with the method's measured training rate
on 2 cores (``steps = m * 60 * steps_per_second``; measured first unless ``--rates`` gives it),
and each budget is a separate fit with its own warm-up/cosine schedule: what a user who asks
for ``m`` minutes gets. Quality depends on the steps only, so the fits themselves may run on
fewer threads (``--threads 1``, two budgets side by side) without changing any number but
their wall time, which is reported as measured.

Data, noise and metrics as ``compare.py``: MNI152 T1, 30 training / 6 held-out axial slices,
Gaussian noise sigma = 25/255 (seeds 1 / 2), brain-mask PSNR and SSIM of clipped outputs.
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

from bench_data import add_noise, load_mni152_axial
from c2s_denoise import C2SDenoiser
from peers import denoise_peer, make_peer, make_peer_network, train_peer
from report import command, machine
from scoring import metrics

RESULTS = Path(__file__).parent / "results"
SIGMA = 25 / 255
METHODS = ("c2s", "r2r", "noise2clean")
NAMES = {"c2s": "C2S", "r2r": "R2R", "noise2clean": "Noise2Clean (supervised)"}


def fit_and_score(method: str, steps: int, data: dict, seed: int = 0) -> dict:
    """Train ``method`` for ``steps`` steps on the training slices (``seed``: initialisation and
    sampling); metrics on the held-out ones."""
    cpu_start = time.process_time()
    if method == "c2s":
        model = C2SDenoiser(sigma=SIGMA, max_iter=steps, random_state=seed, context_slices=0).fit([data["noisy_train"]])
        output, seconds = model.transform([data["noisy_test"]])[0], model.fit_time_
    else:
        loss = make_peer(method)
        trained = train_peer(
            loss,
            make_peer_network(seed=seed, skip=loss.identity_skip),
            data["noisy_train"],
            SIGMA,
            clean=data["clean_train"] if loss.needs_clean else None,
            max_iter=steps,
            seed=seed,
        )
        output, seconds = (
            np.asarray(denoise_peer(loss, trained.network, data["noisy_test"], SIGMA, seed=seed)),
            trained.seconds,
        )
    return {
        "method": method,
        "seed": seed,
        "steps": steps,
        "train_s": seconds,
        "cpu_s": time.process_time() - cpu_start,
        "threads": torch.get_num_threads(),
        **metrics(output, data["clean_test"], data["mask"]),
    }


def measure_rate(method: str, data: dict, steps: int = 400, clock: str = "wall") -> float:
    """Training steps per second of ``method`` on this machine's current threads.

    ``clock="cpu"``: per second of the process's CPU time on one thread, which other processes
    sharing the cores do not inflate (the budget is then in CPU minutes).
    """
    if clock == "cpu":
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            fit_and_score(method, 20, data)  # warm-up
            return steps / fit_and_score(method, steps, data)["cpu_s"]
        finally:
            torch.set_num_threads(threads)
    return steps / fit_and_score(method, steps, data)["train_s"]


def report(out: Path) -> str:
    """Merge ``time_budget_*.json`` into ``time_budget_sigma25.md`` and ``.png``."""
    runs, header, rates, machines = [], {"dates": [], "commands": []}, [], {}
    for path in sorted(out.glob("time_budget_*.json")):
        content = json.loads(path.read_text())
        series = content["header"].get("series", content["header"]["dates"][0])
        runs += [{**run, "series": series} for run in content["runs"]]
        rates += [f"{NAMES[m]} {r:.1f} steps/s ({series})" for m, r in sorted(content["header"]["rates"].items())]
        machines.setdefault(content["header"]["machine"], set()).add(series)
        for key, value in content["header"].items():
            if key in ("dates", "commands"):
                header[key] += value
            elif key != "rates":
                header[key] = value
    bm3d = header["bm3d"]
    lines = [
        "# What a CPU training budget buys (MNI152 T1, Gaussian sigma = 25/255)",
        "",
        f"- dates: {', '.join(sorted(set(header['dates'])))}; commands: "
        + "; ".join(f"`{c}`" for c in sorted(set(header["commands"]))),
        "- machine: "
        + "; ".join(f"{name} (series {', '.join(sorted(series))})" for name, series in sorted(machines.items())),
        "- budget: minutes of training, converted to steps with the method's measured rate: "
        + ", ".join(rates)
        + ". Series 2026-11-25: wall minutes on 2 cores (2-core rates); later series: CPU minutes of one "
        "thread (rates per second of process CPU time, which other processes sharing the machine do not "
        "inflate; a 2-core machine gives about 1.5 to 2 CPU minutes per wall minute, see `throughput_cpu.md`)"
        + "; each budget is its own fit (warm-up/cosine schedule over its steps). The fits ran with "
        "the thread count shown, two fits side by side: quality depends on the steps only; the measured wall "
        "time depends on the threads and on what else shared the cores (tests ran beside some fits).",
        f"- line to beat: BM3D (sigma known) {bm3d['psnr_brain']:.2f} dB brain PSNR, SSIM {bm3d['ssim']:.3f}; "
        f"noisy input {header['noisy']['psnr_brain']:.2f} dB",
        "",
        "| method | series (defaults of) | budget (min) | seed | steps | PSNR brain (dB) | vs BM3D (dB) | SSIM | "
        "fit wall s (threads) | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in sorted(runs, key=lambda r: (r["series"], r["method"], r["minutes"], r.get("seed", 0))):
        lines.append(
            f"| {NAMES[run['method']]} | {run['series']} | {run['minutes']:g} | {run.get('seed', 0)} | {run['steps']} | "
            f"{run['psnr_brain']:.2f} | {run['psnr_brain'] - bm3d['psnr_brain']:+.2f} | {run['ssim']:.3f} | "
            f"{run['train_s']:.0f} ({run['threads']}) | {run.get('note', '')} |"
        )
    groups = _seed_groups(runs)
    if any(len(group) > 1 for group in groups.values()):
        lines += [
            "",
            "Mean over seeds (series with more than one seed per budget; sd: sample standard deviation):",
            "",
            "| method | series | budget (min) | seeds | PSNR brain mean (dB) | sd (dB) | SSIM mean |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for (series, method, minutes), group in sorted(groups.items()):
            if len(group) > 1:
                values = np.array([r["psnr_brain"] for r in group])
                lines.append(
                    f"| {NAMES[method]} | {series} | {minutes:g} | {len(group)} | {values.mean():.2f} | "
                    f"{values.std(ddof=1):.2f} | {np.mean([r['ssim'] for r in group]):.3f} |"
                )
    text = "\n".join(lines) + "\n"
    (out / "time_budget_sigma25.md").write_text(text)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for series in sorted({r["series"] for r in runs}):
        for method in METHODS:  # runs with a note (e.g. diverged before the guard existed) are not plotted
            points = sorted(  # the mean over seeds; runs with a note are left out
                (minutes, float(np.mean([r["psnr_brain"] for r in group])))
                for (s, m, minutes), group in groups.items()
                if s == series and m == method
            )
            if points:
                ax.plot(*zip(*points), marker="o", label=f"{NAMES[method]} ({series})")
    ax.axhline(bm3d["psnr_brain"], color="gray", linestyle="--", label="BM3D (sigma known)")
    ax.set_xscale("log")
    ax.set_xticks([2, 5, 10, 30], labels=["2", "5", "10", "30"])
    ax.minorticks_off()
    ax.set_xlabel("training budget (minutes; see the table for the unit of each series)")
    ax.set_ylabel("PSNR inside the brain mask (dB)")
    ax.set_title("MNI152 T1, Gaussian sigma = 25/255")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "time_budget_sigma25.png", dpi=100)
    plt.close(fig)
    return text


def _seed_groups(runs: list[dict]) -> dict[tuple, list[dict]]:
    """Runs without a note grouped by ``(series, method, minutes)`` (one entry per seed)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        if not run.get("note"):
            groups.setdefault((run["series"], run["method"], run["minutes"]), []).append(run)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--minutes", nargs="+", type=float, default=[2, 5, 10, 30])
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the fits (default: torch's)")
    parser.add_argument(
        "--rates", nargs="*", default=[], help="METHOD=STEPS_PER_S measured on 2 cores (skips measuring)"
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="measure the rates in wall seconds (default threads) or CPU seconds of one thread",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one fit per seed and budget")
    parser.add_argument("--series", default=None, help="label of this run's rows (default: today's date)")
    parser.add_argument("--json", type=Path, default=None, help="where to write this run's results")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="only merge the JSON results into the table and plot")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        print(report(args.out))
        return

    split = load_mni152_axial(crop_margin=4)
    data = {
        "noisy_train": add_noise(split.train, SIGMA, "gaussian", seed=1),
        "noisy_test": add_noise(split.test, SIGMA, "gaussian", seed=2),
        "clean_train": split.train,
        "clean_test": split.test,
        "mask": split.test_mask,
    }
    rates = {m: float(r) for m, r in (item.split("=") for item in args.rates)}
    for method in args.methods:
        if method not in rates:  # measured on the machine's default threads (2 on our CI machines)
            rates[method] = measure_rate(method, data, clock=args.clock)
            print(f"{method}: {rates[method]:.1f} steps/s", file=sys.stderr, flush=True)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    import bm3d

    started = datetime.datetime.now(datetime.timezone.utc)
    series = args.series or f"{started:%Y-%m-%d}"
    header = {
        "series": series,
        "dates": [f"{started:%Y-%m-%d}"],
        "commands": [command()],
        "machine": machine().replace(f"({torch.get_num_threads()} threads)", "(threads per run below)"),
        "rates": {m: rates[m] for m in args.methods},
        "noisy": metrics(data["noisy_test"], split.test, split.test_mask),
        "bm3d": metrics(
            np.stack([bm3d.bm3d(image, SIGMA) for image in data["noisy_test"]]), split.test, split.test_mask
        ),
    }
    path = args.json or args.out / f"time_budget_{series.replace(' ', '_')}_{'_'.join(args.methods)}.json"
    runs = []
    for minutes in args.minutes:
        for seed in args.seeds:
            for method in args.methods:  # methods interleaved: a change of load hits both alike
                steps = int(round(minutes * 60 * rates[method]))
                run = {"minutes": minutes, **fit_and_score(method, steps, data, seed=seed)}
                runs.append(run)
                print(json.dumps(run), flush=True)
                path.write_text(json.dumps({"header": header, "runs": runs}, indent=2) + "\n")
    print(report(args.out))


if __name__ == "__main__":
    main()
