"""Scaling out (issue 11): peak memory of ``fit --stream``, DDP on CPU, and ``apply`` on a Dask cluster.

Usage::

    python benchmarks/scaling.py memory [--files 8] [--scale 1 4] [--parallel] [--folder /tmp/c2s-scaling-memory]
    python benchmarks/scaling.py ddp [--steps 1000] [--seeds 0 1] [--quality-only]
    python benchmarks/scaling.py dask [--files 16]
    python benchmarks/scaling.py sampler [--steps 200] [--threads 2]

Each writes ``benchmarks/results/scaling_<what>.md`` (or ``--output``) with the command, machine, date
and load average, between two markers: notes written after the end marker are kept by the next run.

- ``memory``: synthetic 8-coil k-space files (fastMRI layout, 8 slices of 128x128 with 2x
  readout oversampling, complex64: 16 MiB each), ``--files`` of them at scale 1 and ``scale`` times
  as many; ``c2s-denoise fit`` with and without ``--stream`` in a child process whose peak
  resident memory (``ru_maxrss`` of the child) is reported against the size of the files.
- ``ddp``: ``torchrun --nproc-per-node 2`` with one thread per process and batch 4 per rank,
  against one process with two threads and batch 8: the same total patches per step and steps;
  steps per second (training time from the summary) and held-out PSNR, for each of ``--seeds``
  (``--quality-only``: one thread in the single process too, for PSNRs on a loaded machine).
- ``dask``: ``apply --scheduler`` on a ``LocalCluster`` of 2 single-thread workers against
  ``apply --n-jobs 2``: files per minute (wall time), and whether every output is identical byte for byte.
- ``sampler``: time spent drawing patches (``PatchSampler.sample``) against the training step, for
  volumes in memory and read lazily from HDF5 (whether a DataLoader with workers would pay off).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def header(title: str, command: str, load_before: float | None = None) -> list[str]:
    """Title, date, command, machine, and the load average (1 minute) before and after the run."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {title}", "", f"- date: {now}", f"- command: `{command}`", f"- machine: {machine()}"]
    if load_before is not None:
        load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        if max(load_before, os.getloadavg()[0]) > 1.0:
            load += f" (**above 1: other work shared the {os.cpu_count()} cores, the times are not valid**)"
        lines.append(f"- load average (1 min): {load}")
    return [*lines, ""]


BEGIN = "<!-- written by benchmarks/scaling.py: begin (replaced by the next run) -->"
END = "<!-- written by benchmarks/scaling.py: end (notes below are kept) -->"


def write_results(path: Path, lines: list[str]) -> None:
    """Write the run's table to ``path`` between markers, keeping whatever the file holds after them."""
    block = f"{BEGIN}\n" + "\n".join(lines) + f"\n{END}\n"
    old = path.read_text() if path.exists() else ""
    kept = old.split(END, 1)[1] if END in old else ""
    path.write_text(block + kept)


def run_child(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``command``; its wall seconds, its peak resident memory in MiB (ru_maxrss of the child), stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr}")
    # ru_maxrss of the children is a running maximum: only the first child of a process is measured alone
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, (peak if peak > before else float("nan")) / 1024, proc.stdout


def cli() -> list[str]:
    return [sys.executable, "-m", "c2s_denoise"]


# ----------------------------------------------------------------------------- memory
def write_kspace_files(folder: Path, count: int) -> int:
    """``count`` 8-coil k-space files (a brain phantom, independent noise per file); their total bytes."""
    import h5py

    from c2s_denoise.physics.phantom import brain_phantom
    from c2s_denoise.physics.simulate import simulate_multicoil

    folder.mkdir(parents=True, exist_ok=True)
    scan = simulate_multicoil(brain_phantom((8, 128, 128), seed=0), n_coils=8, sigma=0.03, seed=0)
    clean = scan.kspace  # with a little noise already; each file adds its own
    rng = np.random.default_rng(1)
    total = 0
    for index in range(count):
        path = folder / f"scan{index:03d}.h5"
        if not path.exists():
            noise = rng.standard_normal(clean.shape, dtype=np.float32) + 1j * rng.standard_normal(
                clean.shape, dtype=np.float32
            )
            with h5py.File(path, "w") as handle:
                handle["kspace"] = (clean + 0.03 * noise).astype(np.complex64)
        total += path.stat().st_size
    return total


def measure_one(args: argparse.Namespace) -> None:
    """Child mode: one fit, its peak memory printed as JSON (so that ru_maxrss is this fit's alone)."""
    files = sorted(Path(args.folder).glob("scan*.h5"))[: args.count]
    command = [*cli(), "fit", *map(str, files), "-o", str(Path(args.folder) / "model.c2s"), "--overwrite"]
    command += ["--max-iter", str(args.steps), "--seed", "0", *(["--stream"] if args.stream else [])]
    seconds, peak, _ = run_child(command, {"OMP_NUM_THREADS": "2"})
    print(json.dumps({"seconds": seconds, "peak_mib": peak}))


def memory(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    sizes = {}
    for scale in sorted(args.scale):  # the files of a smaller collection are the first of the larger one
        sizes[scale] = write_kspace_files(folder, args.files * scale)
    modes = [mode == "stream" for mode in ("memory", "stream") if mode in args.modes]
    largest = float("inf") if args.skip_memory_above is None else args.skip_memory_above
    rows_to_run = [(scale, stream) for scale in args.scale for stream in modes if stream or scale <= largest]
    running = []
    for scale, stream in rows_to_run:  # each fit in its own child process: ru_maxrss is that fit's alone
        child = [sys.executable, __file__, "measure-one", "--folder", str(folder), "--count", str(args.files * scale)]
        child += ["--steps", str(args.steps), *(["--stream"] if stream else [])]
        running.append((scale, stream, subprocess.Popen(child, stdout=subprocess.PIPE, text=True)))
        if not args.parallel:
            running[-1] = (scale, stream, running[-1][2].communicate()[0])
    rows = []
    for scale, stream, proc in running:
        stdout = proc if isinstance(proc, str) else proc.communicate()[0]
        result = json.loads(stdout)
        rows.append((scale, args.files * scale, sizes[scale] / 2**20, stream, result["peak_mib"], result["seconds"]))
        print(rows[-1], flush=True)
    command = f"python benchmarks/scaling.py memory --files {args.files} --scale {' '.join(map(str, args.scale))}"
    command += f" --steps {args.steps}" + (" --parallel" if args.parallel else "")
    if args.skip_memory_above is not None:
        command += f" --skip-memory-above {args.skip_memory_above}"
    lines = header("Peak memory of `c2s-denoise fit` over k-space files", command)
    lines += [
        "Synthetic fastMRI-style files: 8 coils, 8 slices of a 128x128 phantom with 2x readout oversampling "
        "(k-space 8x8x256x128 complex64, 16 MiB a file; without a header or reconstruction to crop to, the "
        "combined complex images stay 256x128, 2 MiB a file), independent noise per file; "
        f"`fit --max-iter {args.steps} --seed 0` (default network; memory does not depend on the steps); "
        "peak resident memory of the fit process (`ru_maxrss`)."
        + (" The fits ran at once (`--parallel`): their wall times are not comparable." if args.parallel else ""),
        "",
        "| data | files | k-space on disk (MiB) | mode | peak RSS (MiB) | data / peak | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scale, count, size, stream, peak, seconds in rows:
        mode = "`--stream`" if stream else "in memory (default)"
        lines.append(f"| {scale}x | {count} | {size:.0f} | {mode} | {peak:.0f} | {size / peak:.2f} | {seconds:.0f} |")
    write_results(Path(args.output) if args.output else RESULTS / "scaling_memory.md", lines)
    if not args.keep:
        shutil.rmtree(folder)


# ----------------------------------------------------------------------------- DDP
def ddp(args: argparse.Namespace) -> None:
    """DDP (2 ranks x batch 4) against one process (batch 8): speed, and held-out PSNR for each seed."""
    import torch

    from c2s_denoise import C2SDenoiser
    from c2s_denoise.metrics import psnr
    from c2s_denoise.physics.phantom import brain_phantom

    load_before = os.getloadavg()[0]
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    clean = brain_phantom((24, 96, 96), seed=0)
    noisy = clean + 0.08 * np.random.default_rng(0).standard_normal(clean.shape)
    train, test = noisy[:18], noisy[18:]
    for index in range(3):
        np.save(folder / f"train{index}.npy", train[6 * index : 6 * (index + 1)])
    files = [str(folder / f"train{index}.npy") for index in range(3)]
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    # --quality-only: one thread in the single process too (a loaded machine makes 2 threads crawl;
    # the thread count does not change what is learnt)
    single_threads = 1 if args.quality_only else 2
    single = f"1 process x {single_threads} thread{'s' if single_threads > 1 else ''}, batch 8"
    runs = {
        single: (lambda out: [*cli(), "fit", *files, "-o", str(out), "--batch-size", "8"], str(single_threads)),
        "2 processes x 1 thread (DDP, gloo), batch 4 per rank": (
            lambda out: (
                [torchrun, "--nproc-per-node", "2", "-m", "c2s_denoise", "fit", *files, "-o", str(out)]
                + ["--batch-size", "4"]
            ),
            "1",
        ),
    }
    rows = []
    torch.set_num_threads(2)
    for seed in args.seeds:
        common = ["--sigma", "0.08", "--max-iter", str(args.steps), "--seed", str(seed), "--overwrite"]
        for number, (name, (command, threads)) in enumerate(runs.items()):
            model_path = folder / f"model{number}_seed{seed}.c2s"
            seconds, _, stdout = run_child([*command(model_path), *common], {"OMP_NUM_THREADS": threads})
            fit_seconds = json.loads(stdout)["fit_seconds"]
            denoised = C2SDenoiser.load(model_path).transform(test)
            score = psnr(denoised, clean[18:], range_=1.0)
            rows.append((name, seed, args.steps / fit_seconds, fit_seconds, seconds, score))
            print(rows[-1], flush=True)
    command = f"python benchmarks/scaling.py ddp --steps {args.steps} --seeds {' '.join(map(str, args.seeds))}"
    command += " --quality-only" if args.quality_only else ""
    lines = header("DDP on CPU: 2 processes x 1 thread against 1 process", command, load_before)
    lines += [
        f"Brain phantom (18 training slices of 96x96 in 3 files, 6 held-out), sigma 0.08, {args.steps} steps, "
        f"8 patches of 48x48 per step in total, default network (bfloat16 mixed precision where the CPU has it natively); PSNR of the "
        f"held-out slices (noisy: {psnr(test, clean[18:], range_=1.0):.2f} dB). Steps/s from the fit's own "
        "training time.",
        "",
    ]
    if args.quality_only:
        lines += ["Quality only: the speeds below are not a comparison (1 thread each, loaded machine).", ""]
    lines += [
        "| run | seed | steps/s | fit s | wall s (with start-up) | held-out PSNR (dB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {n} | {s} | {rate:.1f} | {fit:.1f} | {wall:.1f} | {p:.2f} |" for n, s, rate, fit, wall, p in rows]
    lines += ["", "Mean held-out PSNR over the seeds:", ""]
    for name in runs:
        scores = [p for n, _, _, _, _, p in rows if n == name]
        lines.append(f"- {name}: {np.mean(scores):.2f} dB ({', '.join(f'{p:.2f}' for p in scores)})")
    write_results(Path(args.output) if args.output else RESULTS / "scaling_ddp.md", lines)
    shutil.rmtree(folder)


# ----------------------------------------------------------------------------- Dask
def dask_apply(args: argparse.Namespace) -> None:
    from dask.distributed import LocalCluster

    from c2s_denoise import C2SDenoiser
    from c2s_denoise.physics.phantom import brain_phantom

    load_before = os.getloadavg()[0]
    folder = Path(args.folder)
    inputs = folder / "in"
    inputs.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = []
    for index in range(args.files):
        volume = brain_phantom((8, 128, 128), seed=index) + 0.08 * rng.standard_normal((8, 128, 128))
        np.save(inputs / f"scan{index:02d}.npy", volume.astype(np.float32))
        files.append(str(inputs / f"scan{index:02d}.npy"))
    model = folder / "model.c2s"
    C2SDenoiser(sigma=0.08, max_iter=50, random_state=0).fit([np.load(files[0])]).save(model)
    rows = []
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env={"OMP_NUM_THREADS": "1"}
    ) as cluster:
        for name, options in (
            ("`--n-jobs 2` (loky processes)", ["--n-jobs", "2"]),
            ("`--scheduler` (LocalCluster, 2 workers x 1 thread)", ["--scheduler", cluster.scheduler_address]),
        ):
            out = folder / name.split()[0].strip("`-")
            command = [*cli(), "apply", str(model), *files, "-o", str(out), *options]
            seconds, _, _ = run_child(command, {"OMP_NUM_THREADS": "1"})
            rows.append((name, out, seconds))
            print(name, seconds, flush=True)
    identical = all((rows[0][1] / Path(f).name).read_bytes() == (rows[1][1] / Path(f).name).read_bytes() for f in files)
    command = f"python benchmarks/scaling.py dask --files {args.files}"
    lines = header("`apply` on a Dask LocalCluster against `--n-jobs 2`", command, load_before)
    lines += [
        f"{args.files} NumPy volumes of 8 slices of 128x128, default network (8x self-ensemble), OMP_NUM_THREADS=1 "
        "in every worker; wall time of the command, including start-up and reading every input twice "
        "(once to check, once to denoise).",
        "",
        "| run | wall s | files per minute |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {seconds:.1f} | {60 * args.files / seconds:.1f} |" for name, _, seconds in rows]
    lines += ["", f"Outputs identical byte for byte: {'yes' if identical else 'NO'}."]
    write_results(Path(args.output) if args.output else RESULTS / "scaling_dask.md", lines)
    shutil.rmtree(folder)


# ----------------------------------------------------------------------------- patch sampling
def sampler_cost(args: argparse.Namespace) -> None:
    """Share of a fit's training time spent drawing patches, for volumes in memory and read lazily from HDF5."""
    import h5py
    import torch

    from c2s_denoise import C2SDenoiser
    from c2s_denoise.engine import gdsm, patches
    from c2s_denoise.physics.phantom import brain_phantom

    load_before = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    real = [brain_phantom((16, 256, 256), seed=i) + 0.05 * rng.standard_normal((16, 256, 256)) for i in range(4)]
    real = [volume.astype(np.float32) for volume in real]
    complex_ = [(v + 1j * (0.05 * rng.standard_normal(v.shape))).astype(np.complex64) for v in real]
    with h5py.File(folder / "volumes.h5", "w") as handle:  # contiguous datasets, as the --stream cache writes
        for index, (r, c) in enumerate(zip(real, complex_)):
            handle[f"real{index}"], handle[f"complex{index}"] = r, c
    original, train_network = patches.PatchSampler.sample, gdsm.train_network
    spent = {"seconds": 0.0, "cpu": 0.0, "calls": 0, "train_cpu": 0.0}

    def timed(self, *a, **k):  # wall and CPU time of each draw (CPU time: what a busy machine does not inflate)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return original(self, *a, **k)
        finally:
            spent["seconds"] += time.perf_counter() - start
            spent["cpu"] += time.process_time() - cpu
            spent["calls"] += 1

    def timed_training(*a, **k):
        cpu = time.process_time()
        try:
            return train_network(*a, **k)
        finally:
            spent["train_cpu"] += time.process_time() - cpu

    patches.PatchSampler.sample, gdsm.train_network = timed, timed_training
    rows = []
    with h5py.File(folder / "volumes.h5", "r") as handle:
        cases = {
            "real, arrays in memory": real,
            "real, HDF5 datasets (lazy)": [handle[f"real{i}"] for i in range(4)],
            "complex, arrays in memory": complex_,
            "complex, HDF5 datasets (lazy, as `fit --stream`)": [handle[f"complex{i}"] for i in range(4)],
        }
        for name, X in cases.items():
            spent.update(seconds=0.0, cpu=0.0, calls=0, train_cpu=0.0)
            model = C2SDenoiser(sigma=0.05, max_iter=args.steps, random_state=0).fit(X)
            wall = (spent["seconds"] / spent["calls"], model.fit_time_ / args.steps)
            cpu = (spent["cpu"] / spent["calls"], spent["train_cpu"] / args.steps)
            rows.append((name, *(1e3 * t for t in (*wall, *cpu)), wall[0] / wall[1], cpu[0] / cpu[1]))
            print(rows[-1], flush=True)
    patches.PatchSampler.sample, gdsm.train_network = original, train_network
    command = f"python benchmarks/scaling.py sampler --steps {args.steps} --threads {args.threads}"
    lines = header("Patch sampling against the training step", command, load_before)
    lines += [
        f"4 volumes of 16 slices of 256x256 (float32, or complex64: 2 channels), default network, batch 8 of "
        f"48x48 patches, {args.steps} steps, {args.threads} torch thread(s); time inside `PatchSampler.sample` "
        "(every draw of a step, with flips, stacking and the HDF5 reads) against the fit's training time per step. "
        "The HDF5 file is in the operating system's file cache (as the `--stream` cache is after it is written). "
        "CPU time (`time.process_time`, all threads of the process) is what a loaded machine does not inflate.",
        "",
        "| input | sampling ms / step | training ms / step (all) | sampling share | sampling CPU ms / step "
        "| training CPU ms / step | CPU share |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {n} | {a:.2f} | {b:.1f} | {100 * c:.1f}% | {d:.2f} | {e:.1f} | {100 * f:.1f}% |"
        for n, a, b, d, e, c, f in rows
    ]
    write_results(Path(args.output) if args.output else RESULTS / "scaling_sampler.md", lines)
    shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    mem = sub.add_parser("memory")
    mem.add_argument("--files", type=int, default=8)
    mem.add_argument("--scale", type=int, nargs="+", default=[1, 4])
    mem.add_argument("--steps", type=int, default=50)
    mem.add_argument("--folder", default="/tmp/c2s-scaling-memory")
    mem.add_argument("--keep", action="store_true", help="keep the generated files")
    mem.add_argument("--output", help="the table's path (default benchmarks/results/scaling_memory.md)")
    mem.add_argument("--modes", nargs="+", choices=["memory", "stream"], default=["memory", "stream"])
    mem.add_argument("--skip-memory-above", type=int, help="no in-memory fit at larger scales")
    mem.add_argument("--parallel", action="store_true", help="run the fits at once (peaks stay valid, times do not)")
    one = sub.add_parser("measure-one")
    one.add_argument("--folder", required=True)
    one.add_argument("--count", type=int, required=True)
    one.add_argument("--steps", type=int, default=50)
    one.add_argument("--stream", action="store_true")
    par = sub.add_parser("ddp")
    par.add_argument("--steps", type=int, default=1000)
    par.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    par.add_argument("--quality-only", action="store_true", help="one thread in the single process too")
    par.add_argument("--output", help="the table's path (default benchmarks/results/scaling_ddp.md)")
    par.add_argument("--folder", default="/tmp/c2s-scaling-ddp")
    das = sub.add_parser("dask")
    das.add_argument("--files", type=int, default=16)
    das.add_argument("--output", help="the table's path (default benchmarks/results/scaling_dask.md)")
    das.add_argument("--folder", default="/tmp/c2s-scaling-dask")
    smp = sub.add_parser("sampler")
    smp.add_argument("--steps", type=int, default=200)
    smp.add_argument("--threads", type=int, default=2)
    smp.add_argument("--folder", default="/tmp/c2s-scaling-sampler")
    smp.add_argument("--output", help="the table's path (default benchmarks/results/scaling_sampler.md)")
    args = parser.parse_args()
    {"memory": memory, "measure-one": measure_one, "ddp": ddp, "dask": dask_apply, "sampler": sampler_cost}[args.what](
        args
    )


if __name__ == "__main__":
    main()
