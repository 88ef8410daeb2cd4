"""``c2s-denoise fit``: train a model on noisy files and save it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..estimator.rules import INITS, SIGMA_METHODS
from ..io.options import ReadOptions
from .machine import DeviceOpt, ThreadsOpt
from .options import (
    ContrastOpt,
    GroupOpt,
    NCoilsOpt,
    NoiseMapOpt,
    NoiseModelOpt,
    OverwriteOpt,
    TrustPickleOpt,
    VerboseOpt,
    context_slices_for,
    input_files,
    parse_device,
    parse_dims,
    parse_duration,
    parse_names,
    parse_sigmas,
)
from .output import emit, known_errors, progress_bar, setup_logging
from .reading import reads_files

__all__ = ["fit"]


@reads_files(combine=True)
def fit(
    *,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Model file to write (safetensors, no pickle), e.g. model.c2s.")
    ],
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(help="Noisy training files (each is one volume).", show_default=False),
    ] = None,
    contrast: ContrastOpt = None,
    group_by_study: GroupOpt = False,
    contrasts: Annotated[
        str | None,
        typer.Option(
            "--contrasts",
            metavar="A,B,...",
            help="With --group-by-study: the contrasts and their order, e.g. T1,T2,FLAIR (default: those found, "
            "sorted).",
        ),
    ] = None,
    target_contrasts: Annotated[
        str | None,
        typer.Option(
            "--target-contrasts",
            metavar="A,B,...",
            help="Contrasts to denoise (default: all); the others only condition the networks.",
        ),
    ] = None,
    context_slices: Annotated[
        int | None,
        typer.Option(
            "--context-slices",
            min=0,
            help="K > 0: slices z-K..z+K condition the denoising of slice z (volumes need at least 2K slices); "
            "0: each slice alone. Default: 1 when every file is a volume (2.5-D), 0 for single images and with "
            "--dims 2 or 3.",
        ),
    ] = None,
    dims: Annotated[
        str | None,
        typer.Option(
            "--dims",
            metavar="2|3|auto",
            help="2: one network denoises slice by slice, each slice alone unless --context-slices is given; 3: a "
            "3-D network denoises whole volumes (each needs at least 2^(depth-1) slices, one voxel size for all "
            "files); auto: 3 when every file is a volume. Default: a 2-D network, with one neighbouring slice "
            "each side for volumes.",
        ),
    ] = None,
    sigma: Annotated[
        list[str] | None,
        typer.Option(
            metavar="VALUE",
            help=f"Noise level in the input's units, or {'/'.join(SIGMA_METHODS)} to estimate it "
            "per file; with contrasts also NAME=VALUE, repeated for every contrast. Not for k-space combined as "
            "complex images, whose noise level is known (1).",
            show_default=False,
        ),
    ] = None,
    noise_map: NoiseMapOpt = None,
    noise_model: NoiseModelOpt = None,
    n_coils: NCoilsOpt = None,
    refinement: Annotated[
        float | None, typer.Option(help="Detail refinement rho in [0, 1); 0 = full denoising.")
    ] = None,
    max_iter: Annotated[
        int | None, typer.Option("--max-iter", help="Training steps (unset: more with more data, see the docs).")
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            metavar="|".join(INITS),
            help="Where training starts: prior (the shipped network fitted on noisy brain MRI) or random.",
        ),
    ] = None,
    max_time: Annotated[
        str | None,
        typer.Option(
            "--max-time", help="Training time budget per network (300, 90s, 5m, 1.5h); stops at whichever comes first."
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Patches per step.")] = None,
    patch_size: Annotated[int | None, typer.Option("--patch-size", help="Side of the square patches.")] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", help="Peak learning rate (unset: lower from the prior).")
    ] = None,
    width: Annotated[int | None, typer.Option(help="U-Net channels at the first level.")] = None,
    tau_max: Annotated[
        float | None, typer.Option("--tau-max", help="Largest added training noise, in multiples of sigma.")
    ] = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible model.")] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            metavar="MODEL",
            help="Continue training MODEL (its parameters and weights; options given override them) on the "
            "inputs, which need its contrasts and kind; the result is written to --output.",
        ),
    ] = None,
    trust_pickle: TrustPickleOpt = False,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Hold one volume in memory at a time: each file is read once into a temporary HDF5 cache (in "
            "TMPDIR) and training reads its patches from there; the same model, for collections larger than memory.",
        ),
    ] = False,
    overwrite: OverwriteOpt = False,
    verbose: VerboseOpt = 0,
    read_options: ReadOptions,
) -> None:
    """Train a C2S model on noisy files (no clean data needed) and save it.

    Unset options keep the estimator's defaults (with --resume: the model's). Image sizes may
    differ between files. Co-registered contrasts of each subject are given with --contrast or
    --group-by-study. Interrupted (Ctrl-C, SIGTERM), the weights reached so far are saved as a
    partial model ("partial": true) and the exit status is 130; --resume continues it.

    Launched by torchrun (torchrun --nproc-per-node N -m c2s_denoise fit ...), the N processes
    train one model with DistributedDataParallel (gloo on CPU, NCCL on GPUs), each drawing its own
    --batch-size patches per step; rank 0 writes the model and prints the summary.
    """
    setup_logging(verbose)
    order = parse_names(contrasts, "--contrasts")
    values = {
        "sigma": parse_sigmas(sigma),
        "noise_model": noise_model,
        "n_coils": n_coils,
        "target_contrasts": parse_names(target_contrasts, "--target-contrasts"),
        "context_slices": context_slices_for(context_slices, parse_dims(dims)),
        "spatial_dims": parse_dims(dims),
        "refinement": refinement,
        "max_iter": max_iter,
        "init": init,
        "max_time": parse_duration(max_time),
        "batch_size": batch_size,
        "patch_size": patch_size,
        "learning_rate": learning_rate,
        "width": width,
        "tau_max": tau_max,
        "device": parse_device(device),
        "random_state": seed,
    }
    params = {key: value for key, value in values.items() if value is not None}
    if verbose:
        params["verbose"] = 1
    with known_errors(verbose), progress_bar("reading") as progress:
        from ..workflows import fit_files

        files = input_files(inputs, contrast, group_by_study, order)
        summary = fit_files(
            files,
            output,
            params=params,
            read_options=read_options,
            overwrite=overwrite,
            progress=progress,
            resume=resume,
            trust_pickle=trust_pickle,
            stream=stream,
            threads=threads,
            noise_map=noise_map,
        )
    if "rank" not in summary:  # under torchrun, rank 0 alone reports (and writes the model)
        emit(summary)
    if summary["partial"]:
        typer.echo(f"interrupted; saved the partial model to {summary['model']} (continue it with --resume)", err=True)
        raise typer.Exit(130)
