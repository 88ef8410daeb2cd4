"""Training throughput and inference speed of the default C2S network on this machine.

Usage::

    python benchmarks/throughput.py [--steps 30] [--device cpu] [--out benchmarks/results]

Prints, and writes to ``benchmarks/results/throughput_<device>.md``:

- the machine (CPU model, cores, torch version and threads, device);
- the measured fp32 matrix-multiply rate (1024x1024 @ 1024x1024), the yardstick for training;
- the default network's size and multiply-adds per pixel;
- training steps/s and pixels/s at the estimator's default batch and patch size, in the
  library's default training precision (``precision="auto"``: bfloat16 mixed precision where
  the CPU has native bfloat16 dot products) and in float32, and the arithmetic rate that
  implies (3 x forward multiply-adds x 2 FLOP per pixel) as a fraction of the fp32
  matrix-multiply rate;
- the same per core (CPU only): one thread, timed by the process's CPU time, which other
  processes sharing the machine do not inflate, against the one-thread fp32 matrix-multiply
  rate timed the same way;
- inference seconds per 256x256 slice (plain and 8x self-ensemble), and BM3D's seconds per
  slice on the same cores when the ``bm3d`` package is installed (``pip install bm3d``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from c2s_denoise import C2SDenoiser, __version__
from c2s_denoise.engine import (
    GDSMLoss,
    NoiseConditionedUNet,
    NoiseSchedule,
    TrainingConfig,
    denoise_images,
    multiply_adds_per_pixel,
    native_bfloat16,
    resolve_device,
    resolve_training_dtype,
    train_gdsm,
)
from c2s_denoise.engine.prior import FROM_RANDOM_WEIGHTS
from report import command, cpu_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(device: torch.device, size: int = 1024, repeats: int = 20, clock=time.perf_counter) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(3):
        a @ b
    _sync(device)
    start = clock()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (clock() - start) / 1e9


def training_speed(
    params: dict, device: torch.device, steps: int, compute_dtype: torch.dtype, clock=time.perf_counter
) -> dict:
    network = NoiseConditionedUNet(width=params["width"], depth=params["depth"], attention=params["attention"])
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 256, 256, generator=generator) for _ in range(8)]
    levels = torch.full((8,), 0.1)

    def run(n: int) -> float:
        config = TrainingConfig(
            **{key: params[key] for key in ("batch_size", "patch_size", "patch_depth", "learning_rate", "ema_decay")},
            **{key: params[key] for key in ("refinement", "air_weight", "max_time")},
            max_iter=n,
            compute_dtype=compute_dtype,
        )
        start = clock()
        train_gdsm(
            network,
            images,
            levels,
            config=config,
            schedule=NoiseSchedule(),
            loss_fn=GDSMLoss(),
            generator=generator,
            device=device,
        )
        _sync(device)
        return clock() - start

    run(3)  # warm-up
    seconds = run(steps)
    pixels = params["batch_size"] * params["patch_size"] ** 2
    return {"steps_per_s": steps / seconds, "pixels_per_s": steps * pixels / seconds}


def inference_seconds_per_slice(params: dict, device: torch.device, self_ensemble: bool, n: int = 8) -> float:
    network = NoiseConditionedUNet(width=params["width"], depth=params["depth"], attention=params["attention"])
    images = [torch.rand(1, 256, 256) for _ in range(n)]
    levels = torch.full((n,), 0.1)
    denoise_images(network, images[:2], levels[:2], device=device, batch_size=params["inference_batch_size"])
    _sync(device)
    start = time.perf_counter()
    denoise_images(
        network, images, levels, device=device, batch_size=params["inference_batch_size"], self_ensemble=self_ensemble
    )
    _sync(device)
    return (time.perf_counter() - start) / n


def default_fit_seconds(n_slices: int = 30, size: int = 256) -> dict:
    """Wall seconds of ``C2SDenoiser(random_state=0).fit(X).transform(X)`` with every default on a
    typical stack: ``n_slices`` noisy ``size x size`` slices of the brain phantom (Gaussian
    noise of 5% of the maximum)."""
    from c2s_denoise.physics.phantom import brain_phantom

    clean = brain_phantom((n_slices, size, size), seed=0)
    noisy = clean + 0.05 * clean.max() * np.random.default_rng(0).standard_normal(clean.shape)
    model = C2SDenoiser(random_state=0)
    start = time.perf_counter()
    model.fit(noisy)
    fitted = time.perf_counter()
    model.transform(noisy)
    done = time.perf_counter()
    return {"fit_s": fitted - start, "train_s": model.fit_time_, "transform_s": done - fitted, "steps": model.n_iter_}


def bm3d_seconds_per_slice(n: int = 2) -> float | None:
    try:
        import bm3d
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    images = [rng.random((256, 256)) for _ in range(n)]
    start = time.perf_counter()
    for image in images:
        bm3d.bm3d(image, 0.1)
    return (time.perf_counter() - start) / n


def _one_thread(function, *args, **kwargs):
    """``function(*args, **kwargs)`` with torch on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return function(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


def measure(params: dict, device: torch.device, steps: int, repeats: int) -> dict:
    """Best of ``repeats`` interleaved rounds of every rate (a shared machine only ever slows a run down)."""
    default_dtype = resolve_training_dtype(params["precision"], device)
    dtypes = {"default": default_dtype, "float32": torch.float32}
    best: dict[str, float] = {}

    def keep(name: str, value: float) -> None:
        best[name] = max(best.get(name, 0.0), value)

    for _ in range(repeats):
        keep("matmul", matmul_gflops(device))
        for name, dtype in dtypes.items():
            keep(f"train_{name}", training_speed(params, device, steps, dtype)["pixels_per_s"])
        if device.type == "cpu":
            keep("matmul_1thread_cpu", _one_thread(matmul_gflops, device, clock=time.process_time))
            for name, dtype in dtypes.items():
                speed = _one_thread(training_speed, params, device, steps, dtype, clock=time.process_time)
                keep(f"train_{name}_1thread_cpu", speed["pixels_per_s"])
    return {"default_dtype": str(default_dtype).removeprefix("torch."), **best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best of each rate is kept")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--default-fit", action="store_true", help="also time a default fit + transform of 30 slices of 256x256"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    device = resolve_device(args.device)
    params = {**C2SDenoiser().get_params(), **FROM_RANDOM_WEIGHTS}  # a fit of 30 slices from random weights
    network = NoiseConditionedUNet(width=params["width"], depth=params["depth"], attention=params["attention"])
    macs = multiply_adds_per_pixel(network)
    rates = measure(params, device, args.steps, args.repeats)
    pixels_per_step = params["batch_size"] * params["patch_size"] ** 2

    def gflops(pixels_per_s: float) -> float:
        return 3 * 2 * macs * pixels_per_s / 1e9

    infer = inference_seconds_per_slice(params, device, self_ensemble=False)
    infer_ensemble = inference_seconds_per_slice(params, device, self_ensemble=True, n=4)
    bm3d_time = bm3d_seconds_per_slice() if device.type == "cpu" else None
    default_fit = default_fit_seconds() if args.default_fit else None

    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command(),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(),
            "native_bfloat16": native_bfloat16(device),
            "c2s_denoise": __version__,
        },
        "network": {
            "width": params["width"],
            "depth": params["depth"],
            "attention": params["attention"],
            "parameters": sum(p.numel() for p in network.parameters()),
            "multiply_adds_per_pixel": macs,
        },
        "batch_size": params["batch_size"],
        "patch_size": params["patch_size"],
        "repeats": args.repeats,
        "rates": rates,
        "matmul_gflops": rates["matmul"],
        "train_steps_per_s": rates["train_default"] / pixels_per_step,
        "train_pixels_per_s": rates["train_default"],
        "train_gflops": gflops(rates["train_default"]),
        "train_fraction_of_matmul": gflops(rates["train_default"]) / rates["matmul"],
        "inference_s_per_256_slice": infer,
        "inference_self_ensemble_s_per_256_slice": infer_ensemble,
        "bm3d_s_per_256_slice": bm3d_time,
        "speedup_vs_bm3d": (bm3d_time / infer) if bm3d_time else None,
        "default_fit_30x256": default_fit,
    }
    threads = record["machine"]["torch_threads"]
    lines = [
        f"# Throughput of the default network ({record['machine']['device']})",
        "",
        f"- date: {record['date']}; load average at the end (other processes on the machine): "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- command: `{record['command']}`",
        f"- machine: {record['machine']['cpu']}, {record['machine']['cores']} cores, torch {record['machine']['torch']} "
        f"({threads} threads), native bfloat16: {record['machine']['native_bfloat16']}, c2s-denoise {__version__}",
        f"- network: width {params['width']}, depth {params['depth']}, attention {params['attention']}, "
        f"{record['network']['parameters']:,} parameters, {macs / 1e3:.1f} k multiply-adds per pixel (forward)",
        f"- training batch: {params['batch_size']} patches of {params['patch_size']}x{params['patch_size']}; "
        f"default precision here: {rates['default_dtype']}; each rate is the best of {args.repeats} interleaved rounds",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| fp32 matrix multiply (1024^3), {threads} threads | {rates['matmul']:.1f} GFLOP/s |",
    ]
    for name, label in (("default", f"default ({rates['default_dtype']})"), ("float32", "float32")):
        pixels = rates[f"train_{name}"]
        lines.append(
            f"| training, {label}, {threads} threads | {pixels / pixels_per_step:.2f} steps/s, "
            f"{pixels / 1e6:.3f} Mpixel/s, {gflops(pixels):.1f} GFLOP/s = "
            f"**{100 * gflops(pixels) / rates['matmul']:.0f}% of matmul** |"
        )
    if "matmul_1thread_cpu" in rates:
        lines.append(f"| fp32 matrix multiply, 1 thread, per CPU second | {rates['matmul_1thread_cpu']:.1f} GFLOP/s |")
        for name, label in (("default", f"default ({rates['default_dtype']})"), ("float32", "float32")):
            pixels = rates[f"train_{name}_1thread_cpu"]
            lines.append(
                f"| training, {label}, 1 thread, per CPU second | {pixels / pixels_per_step:.2f} steps/s, "
                f"{gflops(pixels):.1f} GFLOP/s = {100 * gflops(pixels) / rates['matmul_1thread_cpu']:.0f}% of "
                "the 1-thread matmul |"
            )
    lines += [
        f"| inference, 256x256 slice | {1e3 * infer:.1f} ms |",
        f"| inference with 8x self-ensemble | {1e3 * infer_ensemble:.1f} ms |",
        f"| BM3D (`bm3d` {'package' if bm3d_time else 'not installed'}), 256x256 slice | "
        + (f"{1e3 * bm3d_time:.0f} ms ({bm3d_time / infer:.1f}x slower than C2S) |" if bm3d_time else "- |"),
    ]
    if default_fit:
        lines.append(
            f"| `C2SDenoiser(random_state=0)`: fit + transform of 30 slices of 256x256, every default | "
            f"{default_fit['fit_s'] + default_fit['transform_s']:.0f} s (fit {default_fit['fit_s']:.0f} s, of which "
            f"training {default_fit['train_s']:.0f} s for {default_fit['steps']} steps; transform "
            f"{default_fit['transform_s']:.1f} s) |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"throughput_{device.type}"
    (args.out / f"{name}.md").write_text(text)
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
