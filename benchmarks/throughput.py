"""Training throughput and inference speed of the default C2S network on this machine.

Usage::

    python benchmarks/throughput.py [--steps 30] [--device cpu] [--out benchmarks/results]

Prints, and writes to ``benchmarks/results/throughput_<device>.md``:

- the machine (CPU model, cores, torch version and threads, device);
- the measured fp32 matrix-multiply rate (1024x1024 @ 1024x1024), the yardstick for training;
- the default network's size and multiply-adds per pixel;
- training steps/s and pixels/s at the estimator's default batch and patch size, and the
  arithmetic rate that implies (3 x forward multiply-adds x 2 FLOP per pixel) as a fraction of
  the matrix-multiply rate;
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
    resolve_device,
    train_gdsm,
)
from report import command, cpu_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(device: torch.device, size: int = 1024, repeats: int = 20) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(3):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def training_speed(params: dict, device: torch.device, steps: int) -> dict:
    network = NoiseConditionedUNet(width=params["width"], depth=params["depth"], attention=params["attention"])
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 256, 256, generator=generator) for _ in range(8)]
    levels = torch.full((8,), 0.1)

    def run(n: int) -> float:
        config = TrainingConfig(max_iter=n, batch_size=params["batch_size"], patch_size=params["patch_size"])
        result = train_gdsm(
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
        return result.seconds

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    device = resolve_device(args.device)
    params = C2SDenoiser().get_params()
    network = NoiseConditionedUNet(width=params["width"], depth=params["depth"], attention=params["attention"])
    macs = multiply_adds_per_pixel(network)
    matmul = matmul_gflops(device)
    train = training_speed(params, device, args.steps)
    train_gflops = 3 * 2 * macs * train["pixels_per_s"] / 1e9
    infer = inference_seconds_per_slice(params, device, self_ensemble=False)
    infer_ensemble = inference_seconds_per_slice(params, device, self_ensemble=True, n=4)
    bm3d_time = bm3d_seconds_per_slice() if device.type == "cpu" else None

    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command(),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(),
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
        "matmul_gflops": matmul,
        "train_steps_per_s": train["steps_per_s"],
        "train_pixels_per_s": train["pixels_per_s"],
        "train_gflops": train_gflops,
        "train_fraction_of_matmul": train_gflops / matmul,
        "inference_s_per_256_slice": infer,
        "inference_self_ensemble_s_per_256_slice": infer_ensemble,
        "bm3d_s_per_256_slice": bm3d_time,
        "speedup_vs_bm3d": (bm3d_time / infer) if bm3d_time else None,
    }
    lines = [
        f"# Throughput of the default network ({record['machine']['device']})",
        "",
        f"- date: {record['date']}",
        f"- command: `{record['command']}`",
        f"- machine: {record['machine']['cpu']}, {record['machine']['cores']} cores, torch {record['machine']['torch']} "
        f"({record['machine']['torch_threads']} threads), c2s-denoise {__version__}",
        f"- network: width {params['width']}, depth {params['depth']}, attention {params['attention']}, "
        f"{record['network']['parameters']:,} parameters, {macs / 1e3:.1f} k multiply-adds per pixel (forward)",
        f"- training batch: {params['batch_size']} patches of {params['patch_size']}x{params['patch_size']}",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| fp32 matrix multiply (1024^3) | {matmul:.1f} GFLOP/s |",
        f"| training | {train['steps_per_s']:.2f} steps/s, {train['pixels_per_s'] / 1e6:.3f} Mpixel/s |",
        f"| training arithmetic rate | {train_gflops:.1f} GFLOP/s = {100 * train_gflops / matmul:.0f}% of matmul |",
        f"| inference, 256x256 slice | {1e3 * infer:.1f} ms |",
        f"| inference with 8x self-ensemble | {1e3 * infer_ensemble:.1f} ms |",
        f"| BM3D (`bm3d` {'package' if bm3d_time else 'not installed'}), 256x256 slice | "
        + (f"{1e3 * bm3d_time:.0f} ms ({bm3d_time / infer:.1f}x slower than C2S) |" if bm3d_time else "- |"),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"throughput_{device.type}"
    (args.out / f"{name}.md").write_text(text)
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
