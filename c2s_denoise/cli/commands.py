"""The ``c2s-denoise`` command line (Typer): the application's commands and :func:`main`.

Each command parses its arguments and makes one call into
:mod:`c2s_denoise.workflows`. Logs, tables and progress bars go to stderr; a
JSON summary goes to stdout. Exit status: 0 on success, 1 on a known error
(a one-line ``error: <file>: <problem>`` on stderr, no traceback), 2 on a
usage error (multi-contrast files that do not fit together or with the model
included, also reported in one ``error:`` line), 130 when interrupted.

``fit`` and ``apply``, the commands with most options, are in :mod:`.fit_command` and
:mod:`.apply_command`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from ..estimator.rules import NOISE_MODELS
from ..io.options import ReadOptions
from ..metrics import DEFAULT_SSIM, SSIM_CONVENTIONS
from ..physics.names import NOISE_ESTIMATORS
from .app import app
from .apply_command import apply
from .fit_command import fit
from .options import NCoilsOpt, OverwriteOpt, VerboseOpt, one_of, parse_device
from .output import emit, fmt, known_errors, progress_bar, setup_logging, table
from .reading import reads_files

__all__ = ["app", "main"]

logger = logging.getLogger("c2s_denoise")

# ----------------------------------------------------------------------------- commands
app.command()(fit)
app.command()(apply)


@app.command()
@reads_files(combine=False)
def evaluate(
    *,
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
    ssim: Annotated[
        str,
        typer.Option(
            "--ssim",
            metavar="|".join(SSIM_CONVENTIONS),
            help="gaussian: 11-tap Gaussian window, range max - min; fastmri: the fastMRI challenge's SSIM (7x7 "
            "uniform window, range = reference max per volume), to compare with published fastMRI numbers.",
        ),
    ] = DEFAULT_SSIM,
    verbose: VerboseOpt = 0,
    read_options: ReadOptions,
) -> None:
    """PSNR and SSIM of denoised files against references (range = reference max - min; see --ssim).

    Files are paired by name (a lone file with a lone reference are paired as they are).
    """
    setup_logging(verbose)
    if ssim not in SSIM_CONVENTIONS:
        raise typer.BadParameter(f"expected {one_of(SSIM_CONVENTIONS)}, got {ssim!r}", param_hint="--ssim")
    with known_errors(verbose), progress_bar("scoring") as progress:
        from ..workflows import evaluate_files

        summary = evaluate_files(
            denoised,
            reference,
            reference_average=reference_average,
            ssim=ssim,
            read_options=read_options,
            progress=progress,
        )
    rows = [[Path(r["file"]).name, fmt(r["psnr"], 2), fmt(r["ssim"], 4)] for r in summary["results"]]
    rows.append(["mean", fmt(summary["mean_psnr"], 2), fmt(summary["mean_ssim"], 4)])
    table(["file", "PSNR/dB", f"SSIM ({ssim})"], rows)
    emit(summary)


@app.command("estimate-noise")
@reads_files(combine=True)
def estimate_noise(
    *,
    inputs: Annotated[list[Path], typer.Argument(help="Image files.", show_default=False)],
    verbose: VerboseOpt = 0,
    read_options: ReadOptions,
    n_coils: NCoilsOpt = None,
    noise_model: Annotated[
        str, typer.Option("--noise-model", metavar="|".join(NOISE_MODELS), help="Noise model for 'auto'.")
    ] = "auto",
) -> None:
    """Estimate each file's noise level (input units) with every estimator; k-space files also get their coil noise.

    The magnitude estimators see the image a magnitude reader sees (stored reconstruction, or RSS of the coils).
    """
    setup_logging(verbose)
    if noise_model not in NOISE_MODELS:
        raise typer.BadParameter(f"expected {one_of(NOISE_MODELS)}, got {noise_model!r}", param_hint="--noise-model")
    with known_errors(verbose), progress_bar("estimating") as progress:
        from ..workflows import estimate_noise_files

        coils = {} if n_coils is None else {"n_coils": n_coils}  # unset: the workflow's default, auto
        summary = estimate_noise_files(
            inputs, read_options=read_options, progress=progress, noise_model=noise_model, **coils
        )
    methods = NOISE_ESTIMATORS  # the workflow reports sigma_<method> for each
    rows = [
        [Path(r["file"]).name, fmt(r["n_coils"], 2), *(fmt(r[f"sigma_{m}"], 6) for m in methods)]
        + [r["auto"]["estimator"] or "-", fmt(r["kspace_noise"]["sigma_mean"], 6) if "kspace_noise" in r else "-"]
        for r in summary["results"]
    ]
    table(["file", "coils", *(f"sigma_{m}" for m in methods), "auto", "coil_sigma"], rows)
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
