"""``c2s-denoise apply``: denoise files with a saved model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..io.options import OUTPUT_DTYPES, ReadOptions
from .machine import DeviceOpt, ThreadsOpt
from .options import (
    ContrastOpt,
    GroupOpt,
    NoiseMapOpt,
    OverwriteOpt,
    TrustPickleOpt,
    VerboseOpt,
    input_files,
    one_of,
    parse_device,
)
from .output import emit, known_errors, progress_bar, setup_logging
from .reading import reads_files

__all__ = ["apply"]


@reads_files(combine=True)
def apply(
    *,
    model: Annotated[Path, typer.Argument(help="Model file written by 'c2s-denoise fit'.", show_default=False)],
    outdir: Annotated[
        Path, typer.Option("--outdir", "-o", help="Output folder; outputs keep the input's name and format.")
    ],
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="Files or DICOM series folders to denoise.", show_default=False)
    ] = None,
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
    read_options: ReadOptions,
    save_complex: Annotated[
        bool,
        typer.Option(
            "--save-complex",
            help="K-space inputs: also write the denoised complex images (dataset reconstruction_complex).",
        ),
    ] = False,
    trust_pickle: TrustPickleOpt = False,
    mask: Annotated[
        str | None,
        typer.Option(
            "--mask",
            metavar="FILE|auto",
            help="Denoise inside a mask only: a file of the inputs' shape (nonzero inside), or auto (each input's "
            "head). Outside it, the output is the input unchanged.",
            show_default=False,
        ),
    ] = None,
    noise_map: NoiseMapOpt = None,
    save_noise_map: Annotated[
        bool,
        typer.Option(
            "--save-noise-map",
            help="Also write the noise level of each voxel (<name>_noisemap): the map used, with --noise-map.",
        ),
    ] = False,
    save_residual: Annotated[
        bool, typer.Option("--save-residual", help="Also write input minus output (<name>_residual).")
    ] = False,
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            metavar="|".join(OUTPUT_DTYPES),
            help="Type of the outputs: float32, or keep the input's stored type (integers rounded and clipped).",
        ),
    ] = "float32",
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    adapt: Annotated[
        int,
        typer.Option(
            "--adapt",
            min=0,
            metavar="STEPS",
            help="Before denoising each file, train the model STEPS more steps on that file's noisy images "
            "(no clean data; the model file is not changed): a model fitted on other scans catches up.",
        ),
    ] = 0,
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
    if dtype not in OUTPUT_DTYPES:
        raise typer.BadParameter(f"expected {one_of(OUTPUT_DTYPES)}, got {dtype!r}", param_hint="--dtype")
    if n_jobs == 0:
        raise typer.BadParameter("must not be 0", param_hint="--n-jobs")
    if scheduler is not None and n_jobs != 1:
        raise typer.BadParameter("--n-jobs is for one machine; with --scheduler the cluster's workers run the files")
    with known_errors(verbose), progress_bar("denoising") as progress:
        from ..workflows import apply_files

        files = input_files(inputs, contrast, group_by_study)
        summary = apply_files(
            model,
            files,
            outdir,
            n_jobs=n_jobs,
            overwrite=overwrite,
            read_options=read_options,
            progress=progress,
            save_complex=save_complex,
            trust_pickle=trust_pickle,
            scheduler=scheduler,
            scheduler_timeout=scheduler_timeout,
            mask=mask,
            noise_map=noise_map,
            save_noise_map=save_noise_map,
            save_residual=save_residual,
            dtype=dtype,
            device=parse_device(device),
            threads=threads,
            adapt=adapt,
        )
    emit(summary)
