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
import json
import logging
import math
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from .io.errors import C2SInputError

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


# ----------------------------------------------------------------------------- helpers
class _StderrHandler(logging.Handler):
    """Writes to the *current* ``sys.stderr`` (which test runners swap per call)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _setup_logging(verbose: int) -> None:
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("c2s-denoise: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if verbose > 0 else logging.WARNING)


def _jsonable(value: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _emit(summary: dict[str, Any]) -> None:
    typer.echo(json.dumps(_jsonable(summary), indent=2))


@contextlib.contextmanager
def _known_errors() -> Iterator[None]:
    """Turn known errors into a one-line message and exit status 1 (130 if interrupted)."""
    try:
        yield
    except C2SInputError as exc:
        from .workflows import ContrastError

        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, ContrastError) else 1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; finished outputs are complete, unfinished ones were not written", err=True)
        raise typer.Exit(130) from None


@contextlib.contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress callback drawing a tqdm bar on stderr (only when stderr is a terminal)."""
    from tqdm.auto import tqdm

    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=description, unit="file", file=sys.stderr, disable=None, leave=False)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def _parse_crop(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.lower().replace(",", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(f"expected HxW such as 320x320, got {value!r}") from None
    if h <= 0 or w <= 0:
        raise typer.BadParameter(f"crop sizes must be positive, got {value!r}")
    return h, w


def _parse_sigma(value: str | None) -> float | str | None:
    if value is None:
        return None
    if value in ("auto", "wavelet", "background", "foreground", "rayleigh"):
        return value
    try:
        sigma = float(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number or auto/wavelet/background/foreground/rayleigh, got {value!r}") from None
    if not sigma > 0 or not math.isfinite(sigma):
        raise typer.BadParameter(f"sigma must be a positive number, got {value!r}")
    return sigma


def _parse_sigmas(values: list[str] | None) -> float | str | dict[str, float | str] | None:
    """One ``--sigma VALUE`` for every contrast, or ``--sigma NAME=VALUE`` once per contrast."""
    if not values:
        return None
    named = [value for value in values if "=" in value]
    if not named:
        if len(values) > 1:
            raise typer.BadParameter(
                "give one value for all contrasts, or NAME=VALUE per contrast", param_hint="--sigma"
            )
        return _parse_sigma(values[0])
    if len(named) != len(values):
        raise typer.BadParameter(
            "give either one value for all contrasts or NAME=VALUE per contrast, not both", param_hint="--sigma"
        )
    sigmas: dict[str, float | str] = {}
    for value in values:
        name, _, level = (part.strip() for part in value.partition("="))
        if not name:
            raise typer.BadParameter(f"expected NAME=VALUE such as T1=0.05, got {value!r}", param_hint="--sigma")
        if name in sigmas:
            raise typer.BadParameter(f"contrast {name!r} is given twice", param_hint="--sigma")
        sigmas[name] = _parse_sigma(level)  # type: ignore[assignment]
    return sigmas


def _parse_names(value: str | None, option: str) -> tuple[str, ...] | None:
    """A comma-separated list of contrast names, such as ``T1,T2,FLAIR``."""
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise typer.BadParameter(f"expected contrast names such as T1,T2, got {value!r}", param_hint=option)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise typer.BadParameter(f"contrast {duplicates[0]!r} is given twice", param_hint=option)
    return names


def _parse_contrast_files(values: list[str]) -> dict[str, list[Path]]:
    """``--contrast NAME=PATH`` options as ``{name: paths}``, names in order of first appearance."""
    files: dict[str, list[Path]] = {}
    for value in values:
        name, _, path = value.partition("=")
        name = name.strip()
        if not name or not path:
            raise typer.BadParameter(
                f"expected NAME=PATH such as T1=sub1_t1.nii.gz, got {value!r}", param_hint="--contrast"
            )
        files.setdefault(name, []).append(Path(path))
    return files


def _inputs(
    inputs: list[Path] | None, contrast: list[str] | None, group_by_study: bool, order: tuple[str, ...] | None = None
) -> list[Path] | dict[str, list[Path]]:
    """The input files: positional ones, ``{contrast: files}`` from --contrast, or M4Raw files grouped by study."""
    if inputs and contrast:
        raise typer.BadParameter("give the files either as arguments or with --contrast, not both", param_hint="INPUTS")
    if group_by_study:
        if not inputs:
            raise typer.BadParameter("--group-by-study needs the files as arguments", param_hint="INPUTS")
        from .workflows import group_m4raw_files

        return group_m4raw_files(inputs, order)
    if order is not None:
        raise typer.BadParameter(
            "only with --group-by-study (with --contrast, the order is that of the options)", param_hint="--contrasts"
        )
    if contrast:
        return _parse_contrast_files(contrast)
    if not inputs:
        raise typer.BadParameter("give the files as arguments, or with --contrast NAME=PATH", param_hint="INPUTS")
    return inputs


def _read_options(
    crop: str | None, slice_axis: int, npz_key: str | None, dataset: str | None, combine: str = "rss"
) -> Any:
    from .workflows import ReadOptions

    if combine not in ("auto", "complex", "rss"):
        raise typer.BadParameter(f"expected auto, complex or rss, got {combine!r}", param_hint="--combine")
    return ReadOptions(crop=_parse_crop(crop), slice_axis=slice_axis, npz_key=npz_key, dataset=dataset, combine=combine)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), err=True)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------- shared options
CropOpt = Annotated[
    str | None,
    typer.Option("--crop", metavar="HxW", help="Centre-crop every slice to HxW (e.g. 320x320 for fastMRI knee)."),
]
SliceAxisOpt = Annotated[int, typer.Option("--slice-axis", help="NIfTI: stored axis along which 2-D slices are taken.")]
NpzKeyOpt = Annotated[
    str | None,
    typer.Option("--npz-key", help="NPZ: array to read (default: the only array, else 'image', else 'data')."),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--h5-dataset",
        help="HDF5: dataset to read (default: reconstruction_rss, reconstruction_esc, reconstruction, then kspace).",
    ),
]
CombineOpt = Annotated[
    str,
    typer.Option(
        "--combine",
        metavar="auto|complex|rss",
        help="HDF5 k-space: 'complex' prewhitens the coils and combines them into complex images with known, "
        "Gaussian noise (what 'auto' does for files with kspace); 'rss' reads the stored reconstruction or the "
        "root-sum-of-squares of the coils (magnitude, noncentral-chi noise).",
    ),
]
NoiseModelOpt = Annotated[
    str | None,
    typer.Option(
        "--noise-model",
        metavar="auto|gaussian|rician|ncchi",
        help="Noise of the images: magnitude images are Rician (1 coil) or noncentral chi (--n-coils); 'auto': "
        "Gaussian for complex or signed data, else noncentral chi.",
    ),
]
NCoilsOpt = Annotated[
    int | None,
    typer.Option("--n-coils", min=1, help="Coils behind a root-sum-of-squares magnitude image (noise model ncchi)."),
]
ContrastOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--contrast",
        metavar="NAME=PATH",
        help="A file of one contrast, e.g. T1=sub1_t1.nii.gz; repeat for every contrast and subject (the i-th "
        "file of each contrast belongs to subject i). Use instead of INPUTS.",
        show_default=False,
    ),
]
GroupOpt = Annotated[
    bool,
    typer.Option(
        "--group-by-study",
        help="INPUTS are M4Raw files <study>_<T1|T2|FLAIR><NN>: those of one study and repetition form one "
        "multi-contrast subject.",
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="Log progress on stderr.")]


def _version_callback(value: bool) -> None:
    if value:
        from ._version import __version__

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
    output: Annotated[Path, typer.Option("--output", "-o", help="Model file to write (joblib), e.g. model.joblib.")],
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
            help="K > 0: slices z-K..z+K condition the denoising of slice z (volumes need at least 2K slices).",
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
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Patches per step.")] = None,
    patch_size: Annotated[int | None, typer.Option("--patch-size", help="Side of the square patches.")] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", help="Peak learning rate.")] = None,
    width: Annotated[int | None, typer.Option(help="U-Net channels at the first level.")] = None,
    tau_max: Annotated[
        float | None, typer.Option("--tau-max", help="Largest added training noise, in multiples of sigma.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Torch device: auto, cpu, cuda, cuda:1, mps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible model.")] = None,
    overwrite: OverwriteOpt = False,
    verbose: VerboseOpt = 0,
    crop: CropOpt = None,
    slice_axis: SliceAxisOpt = -1,
    npz_key: NpzKeyOpt = None,
    h5_dataset: DatasetOpt = None,
    combine: CombineOpt = "auto",
) -> None:
    """Train a C2S model on noisy files (no clean data needed) and save it.

    Unset options keep the estimator's defaults. Image sizes may differ between files.
    Co-registered contrasts of each subject are given with --contrast or --group-by-study.
    """
    _setup_logging(verbose)
    order = _parse_names(contrasts, "--contrasts")
    values = {
        "sigma": _parse_sigmas(sigma),
        "noise_model": noise_model,
        "n_coils": n_coils,
        "target_contrasts": _parse_names(target_contrasts, "--target-contrasts"),
        "context_slices": context_slices,
        "refinement": refinement,
        "max_iter": max_iter,
        "batch_size": batch_size,
        "patch_size": patch_size,
        "learning_rate": learning_rate,
        "width": width,
        "tau_max": tau_max,
        "device": device,
        "random_state": seed,
    }
    params = {key: value for key, value in values.items() if value is not None}
    if verbose:
        params["verbose"] = 1
    options = _read_options(crop, slice_axis, npz_key, h5_dataset, combine)
    with _known_errors(), _progress("reading") as progress:
        from .workflows import fit_files

        files = _inputs(inputs, contrast, group_by_study, order)
        summary = fit_files(files, output, params=params, read_options=options, overwrite=overwrite, progress=progress)
    _emit(summary)


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
) -> None:
    """Denoise files with a saved model, writing OUTDIR/<input name> in the input's format.

    K-space combined as complex images is written as the magnitude on the scale of the
    root-sum-of-squares image (dataset reconstruction), comparable with reconstruction_rss.

    Only load model files you trust (they are Python pickles). Outputs are written
    atomically: an interrupted run leaves finished outputs whole and no partial file.
    A multi-contrast model needs its contrasts (any order) for every subject, given
    with --contrast or --group-by-study; the outputs of its target contrasts are written.
    """
    _setup_logging(verbose)
    if n_jobs == 0:
        raise typer.BadParameter("must not be 0", param_hint="--n-jobs")
    options = _read_options(crop, slice_axis, npz_key, h5_dataset, combine)
    with _known_errors(), _progress("denoising") as progress:
        from .workflows import apply_files

        files = _inputs(inputs, contrast, group_by_study)
        summary = apply_files(
            model,
            files,
            outdir,
            n_jobs=n_jobs,
            overwrite=overwrite,
            read_options=options,
            progress=progress,
            save_complex=save_complex,
        )
    _emit(summary)


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
    _setup_logging(verbose)
    options = _read_options(crop, slice_axis, npz_key, h5_dataset)
    with _known_errors(), _progress("scoring") as progress:
        from .workflows import evaluate_files

        summary = evaluate_files(
            denoised, reference, reference_average=reference_average, read_options=options, progress=progress
        )
    rows = [[Path(r["file"]).name, _fmt(r["psnr"], 2), _fmt(r["ssim"], 4)] for r in summary["results"]]
    rows.append(["mean", _fmt(summary["mean_psnr"], 2), _fmt(summary["mean_ssim"], 4)])
    _table(["file", "PSNR/dB", "SSIM"], rows)
    _emit(summary)


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
    _setup_logging(verbose)
    if noise_model not in ("auto", "gaussian", "rician", "ncchi"):
        raise typer.BadParameter(f"expected auto, gaussian, rician or ncchi, got {noise_model!r}", param_hint="--noise-model")
    options = _read_options(crop, slice_axis, npz_key, h5_dataset, combine)
    with _known_errors(), _progress("estimating") as progress:
        from .workflows import estimate_noise_files

        summary = estimate_noise_files(
            inputs, read_options=options, progress=progress, n_coils=n_coils, noise_model=noise_model
        )
    methods = ("wavelet", "background", "foreground")
    rows = [
        [Path(r["file"]).name, *(_fmt(r[f"sigma_{m}"], 6) for m in methods), r["auto"]["estimator"] or "-"]
        + [_fmt(r["kspace_noise"]["sigma_mean"], 6) if "kspace_noise" in r else "-"]
        for r in summary["results"]
    ]
    _table(["file", *(f"sigma_{m}" for m in methods), "auto", "coil_sigma"], rows)
    _emit(summary)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the figure, data and model.")] = Path("c2s-demo"),
    max_iter: Annotated[int | None, typer.Option("--max-iter", help="Training steps (default 500).")] = None,
    size: Annotated[int | None, typer.Option(help="Phantom image size in pixels (default 96).")] = None,
    device: Annotated[str, typer.Option(help="Torch device: auto, cpu, cuda, mps.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the phantom, the noise and the training.")] = 0,
    overwrite: OverwriteOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Denoise a built-in brain phantom with added noise (sigma 0.08) and write a before/after PNG.

    No download or data file is needed; takes about a minute on two CPU cores.
    """
    _setup_logging(verbose)
    from .workflows import DemoSettings, run_demo

    changes: dict[str, Any] = {"device": device, "seed": seed}
    if max_iter is not None:
        changes["max_iter"] = max_iter
    if size is not None:
        if size < 16:
            raise typer.BadParameter("must be at least 16", param_hint="--size")
        changes["size"] = size
    settings = DemoSettings(**changes)
    with _known_errors():
        logger.info("writing the demo to %s", out)
        summary = run_demo(out, settings, overwrite=overwrite, verbose=1 if verbose else 0)
    typer.echo(
        f"PSNR noisy {summary['psnr_noisy']:.2f} dB -> denoised {summary['psnr_denoised']:.2f} dB; "
        f"figure: {summary['files']['before_after.png']}",
        err=True,
    )
    _emit(summary)


# ----------------------------------------------------------------------------- entry point
def _terminate(signum: int, frame: Any) -> None:
    # Turn SIGTERM into an exception so that atomic writes remove their temporary files.
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point (``c2s-denoise``)."""
    with contextlib.suppress(ValueError, AttributeError):  # not in the main thread / no SIGTERM
        signal.signal(signal.SIGTERM, _terminate)
    app(prog_name="c2s-denoise")
