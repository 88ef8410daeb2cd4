"""The ``c2s-denoise`` command line (Typer).

Each command parses its arguments and makes one call into
:mod:`c2s_denoise.workflows`. Logs, tables and progress bars go to stderr; a
JSON summary goes to stdout. Exit status: 0 on success, 1 on a known error
(a one-line ``error: <file>: <problem>`` on stderr, no traceback), 2 on a
usage error (multi-contrast files that do not fit together or with the model
included, also reported in one ``error:`` line), 130 when interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from .options import (
    CombineOpt,
    ContrastOpt,
    CropOpt,
    DatasetOpt,
    GroupOpt,
    NCoilsOpt,
    NoiseModelOpt,
    NpzKeyOpt,
    OverwriteOpt,
    SliceAxisOpt,
    TrustPickleOpt,
    VerboseOpt,
    context_slices_for,
    input_files,
    parse_device,
    parse_dims,
    parse_duration,
    parse_names,
    parse_sigmas,
    read_options,
)
from .output import emit, fmt, known_errors, progress_bar, setup_logging, table

__all__ = ["app", "main"]

app = typer.Typer(
    name="c2s-denoise",
    help="Corruption2Self (C2S): self-supervised MRI denoising from noisy scans only.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

logger = logging.getLogger("c2s_denoise")


def _version_callback(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"c2s-denoise {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Corruption2Self (C2S): self-supervised MRI denoising from noisy scans only.

    Reads fastMRI/M4Raw HDF5 (.h5), NIfTI (.nii, .nii.gz; needs nibabel) and
    NumPy (.npy, .npz) files. Prints a JSON summary on stdout; logs on stderr.
    """


# ----------------------------------------------------------------------------- commands
@app.command()
def fit(
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
            help="Noise level in the input's units, or auto/wavelet/background/foreground/rayleigh to estimate it "
            "per file; with contrasts also NAME=VALUE, repeated for every contrast. Not for k-space combined as "
            "complex images, whose noise level is known (1).",
            show_default=False,
        ),
    ] = None,
    noise_model: NoiseModelOpt = None,
    n_coils: NCoilsOpt = None,
    refinement: Annotated[
        float | None, typer.Option(help="Detail refinement rho in [0, 1); 0 = full denoising.")
    ] = None,
    max_iter: Annotated[int | None, typer.Option("--max-iter", help="Training steps.")] = None,
    max_time: Annotated[
        str | None,
        typer.Option(
            "--max-time", help="Training time budget per network (300, 90s, 5m, 1.5h); stops at whichever comes first."
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Patches per step.")] = None,
    patch_size: Annotated[int | None, typer.Option("--patch-size", help="Side of the square patches.")] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", help="Peak learning rate.")] = None,
    width: Annotated[int | None, typer.Option(help="U-Net channels at the first level.")] = None,
    tau_max: Annotated[
        float | None, typer.Option("--tau-max", help="Largest added training noise, in multiples of sigma.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Torch device: auto, cpu, cuda, cuda:1, mps.")] = None,
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
    crop: CropOpt = None,
    slice_axis: SliceAxisOpt = -1,
    npz_key: NpzKeyOpt = None,
    h5_dataset: DatasetOpt = None,
    combine: CombineOpt = "auto",
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
    options = read_options(crop, slice_axis, npz_key, h5_dataset, combine)
    with known_errors(verbose), progress_bar("reading") as progress:
        from ..workflows import fit_files

        files = input_files(inputs, contrast, group_by_study, order)
        summary = fit_files(
            files,
            output,
            params=params,
            read_options=options,
            overwrite=overwrite,
            progress=progress,
            resume=resume,
            trust_pickle=trust_pickle,
            stream=stream,
        )
    if "rank" not in summary:  # under torchrun, rank 0 alone reports (and writes the model)
        emit(summary)
    if summary["partial"]:
        typer.echo(f"interrupted; saved the partial model to {summary['model']} (continue it with --resume)", err=True)
        raise typer.Exit(130)


@app.command()
def apply(
    model: Annotated[Path, typer.Argument(help="Model file written by 'c2s-denoise fit'.", show_default=False)],
    outdir: Annotated[
        Path, typer.Option("--outdir", "-o", help="Output folder; outputs keep the input's name and format.")
    ],
    inputs: Annotated[list[Path] | None, typer.Argument(help="Files to denoise.", show_default=False)] = None,
    contrast: ContrastOpt = None,
    group_by_study: GroupOpt = False,
    n_jobs: Annotated[int, typer.Option("--n-jobs", "-j", help="Files processed in parallel (-1: all cores).")] = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Denoise the files on the Dask cluster at ADDRESS (e.g. tcp://host:8786; needs the dask extra); "
            "paths must be the same on every worker.",
        ),
    ] = None,
    scheduler_timeout: Annotated[
        float, typer.Option("--scheduler-timeout", min=0.1, help="Seconds to wait for the Dask scheduler.")
    ] = 10.0,
    overwrite: OverwriteOpt = False,
    verbose: VerboseOpt = 0,
    crop: CropOpt = None,
    slice_axis: SliceAxisOpt = -1,
    npz_key: NpzKeyOpt = None,
    h5_dataset: DatasetOpt = None,
    combine: CombineOpt = "auto",
    save_complex: Annotated[
        bool,
        typer.Option(
            "--save-complex",
            help="K-space inputs: also write the denoised complex images (dataset reconstruction_complex).",
        ),
    ] = False,
    trust_pickle: TrustPickleOpt = False,
) -> None:
    """Denoise files with a saved model, writing OUTDIR/<input name> in the input's format.

    K-space combined as complex images is written as the magnitude on the scale of the
    root-sum-of-squares image (dataset reconstruction), comparable with reconstruction_rss.

    A pickled model (joblib) is refused unless --trust-pickle is given. Outputs are written
    atomically: an interrupted run leaves finished outputs whole and no partial file.
    A multi-contrast model needs its contrasts (any order) for every subject, given
    with --contrast or --group-by-study; the outputs of its target contrasts are written.

    --n-jobs runs files in parallel processes of this machine; --scheduler runs them on a Dask
    cluster (dask-scheduler / dask-worker, or any dask.distributed cluster) with the same checks,
    atomic writes and summary; an unreachable scheduler is reported before anything is written.
    """
    setup_logging(verbose)
    if n_jobs == 0:
        raise typer.BadParameter("must not be 0", param_hint="--n-jobs")
    if scheduler is not None and n_jobs != 1:
        raise typer.BadParameter("--n-jobs is for one machine; with --scheduler the cluster's workers run the files")
    options = read_options(crop, slice_axis, npz_key, h5_dataset, combine)
    with known_errors(verbose), progress_bar("denoising") as progress:
        from ..workflows import apply_files

        files = input_files(inputs, contrast, group_by_study)
        summary = apply_files(
            model,
            files,
            outdir,
            n_jobs=n_jobs,
            overwrite=overwrite,
            read_options=options,
            progress=progress,
            save_complex=save_complex,
            trust_pickle=trust_pickle,
            scheduler=scheduler,
            scheduler_timeout=scheduler_timeout,
        )
    emit(summary)


@app.command()
def evaluate(
    denoised: Annotated[list[Path], typer.Argument(help="Denoised files or folders.", show_default=False)],
    reference: Annotated[
        list[Path],
        typer.Option(
            "--reference", "-r", help="Reference file or folder; repeat the option for several.", show_default=False
        ),
    ],
    reference_average: Annotated[
        bool,
        typer.Option(
            "--reference-average",
            help="M4Raw: the reference is the mean of all repetitions <study>_<contrast>NN of the same study and "
            "contrast.",
        ),
    ] = False,
    verbose: VerboseOpt = 0,
    crop: CropOpt = None,
    slice_axis: SliceAxisOpt = -1,
    npz_key: NpzKeyOpt = None,
    h5_dataset: DatasetOpt = None,
) -> None:
    """PSNR and SSIM of denoised files against references (range = reference max - min).

    Files are paired by name (a lone file with a lone reference are paired as they are).
    """
    setup_logging(verbose)
    options = read_options(crop, slice_axis, npz_key, h5_dataset)
    with known_errors(verbose), progress_bar("scoring") as progress:
        from ..workflows import evaluate_files

        summary = evaluate_files(
            denoised, reference, reference_average=reference_average, read_options=options, progress=progress
        )
    rows = [[Path(r["file"]).name, fmt(r["psnr"], 2), fmt(r["ssim"], 4)] for r in summary["results"]]
    rows.append(["mean", fmt(summary["mean_psnr"], 2), fmt(summary["mean_ssim"], 4)])
    table(["file", "PSNR/dB", "SSIM"], rows)
    emit(summary)


@app.command("estimate-noise")
def estimate_noise(
    inputs: Annotated[list[Path], typer.Argument(help="Image files.", show_default=False)],
    verbose: VerboseOpt = 0,
    crop: CropOpt = None,
    slice_axis: SliceAxisOpt = -1,
    npz_key: NpzKeyOpt = None,
    h5_dataset: DatasetOpt = None,
    combine: CombineOpt = "auto",
    n_coils: Annotated[
        int, typer.Option("--n-coils", min=1, help="Coils behind a root-sum-of-squares magnitude image.")
    ] = 1,
    noise_model: Annotated[
        str, typer.Option("--noise-model", metavar="auto|gaussian|rician|ncchi", help="Noise model for 'auto'.")
    ] = "auto",
) -> None:
    """Estimate each file's noise level (input units) with every estimator; k-space files also get their coil noise.

    The magnitude estimators see the image a magnitude reader sees (stored reconstruction, or RSS of the coils).
    """
    setup_logging(verbose)
    if noise_model not in ("auto", "gaussian", "rician", "ncchi"):
        raise typer.BadParameter(
            f"expected auto, gaussian, rician or ncchi, got {noise_model!r}", param_hint="--noise-model"
        )
    options = read_options(crop, slice_axis, npz_key, h5_dataset, combine)
    with known_errors(verbose), progress_bar("estimating") as progress:
        from ..workflows import estimate_noise_files

        summary = estimate_noise_files(
            inputs, read_options=options, progress=progress, n_coils=n_coils, noise_model=noise_model
        )
    methods = ("wavelet", "background", "foreground")
    rows = [
        [Path(r["file"]).name, *(fmt(r[f"sigma_{m}"], 6) for m in methods), r["auto"]["estimator"] or "-"]
        + [fmt(r["kspace_noise"]["sigma_mean"], 6) if "kspace_noise" in r else "-"]
        for r in summary["results"]
    ]
    table(["file", *(f"sigma_{m}" for m in methods), "auto", "coil_sigma"], rows)
    emit(summary)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the figure, data and model.")] = Path("c2s-demo"),
    max_iter: Annotated[int | None, typer.Option("--max-iter", min=1, help="Training steps (default 1500).")] = None,
    size: Annotated[int | None, typer.Option(help="Phantom image size in pixels (default 96).")] = None,
    device: Annotated[str, typer.Option(help="Torch device: auto, cpu, cuda, cuda:N, mps.")] = "auto",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the phantom, the noise and the training.")] = 0,
    overwrite: OverwriteOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Denoise a built-in brain phantom with added noise (sigma 0.08) and write a before/after PNG.

    No download or data file is needed; takes about a minute on two CPU cores.
    """
    setup_logging(verbose)
    from ..workflows import DemoSettings, run_demo

    changes: dict[str, Any] = {"device": parse_device(device), "seed": seed}
    if max_iter is not None:
        changes["max_iter"] = max_iter
    if size is not None:
        if size < 16:
            raise typer.BadParameter("must be at least 16", param_hint="--size")
        changes["size"] = size
    settings = DemoSettings(**changes)
    with known_errors(verbose):
        logger.info("writing the demo to %s", out)
        summary = run_demo(out, settings, overwrite=overwrite, verbose=1 if verbose else 0)
    typer.echo(
        f"PSNR noisy {summary['psnr_noisy']:.2f} dB -> denoised {summary['psnr_denoised']:.2f} dB; "
        f"figure: {summary['files']['before_after.png']}",
        err=True,
    )
    emit(summary)


# ----------------------------------------------------------------------------- entry point
def _terminate(signum: int, frame: Any) -> None:
    # Turn SIGTERM into an exception so that atomic writes remove their temporary files.
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point (``c2s-denoise``): no exception leaves it as a traceback."""
    with contextlib.suppress(ValueError, AttributeError):  # not in the main thread / no SIGTERM
        signal.signal(signal.SIGTERM, _terminate)
    try:
        with known_errors():  # the last resort; each command also handles its own errors
            app(prog_name="c2s-denoise")
    except typer.Exit as exit_:
        raise SystemExit(exit_.exit_code) from None
