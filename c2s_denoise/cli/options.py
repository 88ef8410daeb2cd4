"""Options of the ``c2s-denoise`` command line: the shared option types and the parsing of their values.

The read options (``--crop``, ``--combine``, ...) are in :mod:`.reading`. The names a noise model
or ``--sigma`` may take are the library's (:mod:`c2s_denoise.estimator.rules`).

Parsing turns the words given into values for the library and raises
:class:`typer.BadParameter` (exit status 2) for words it cannot parse; rules on the
values themselves are the library's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from ..estimator.rules import NOISE_MODELS, SIGMA_METHODS


def one_of(names: Sequence[str]) -> str:
    """``a, b or c``: the names a value may take, for a message."""
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)


NoiseModelOpt = Annotated[
    str | None,
    typer.Option(
        "--noise-model",
        metavar="|".join(NOISE_MODELS),
        help="Noise of the images: magnitude images are Rician (1 coil) or noncentral chi (--n-coils); 'auto': "
        "Gaussian for complex or signed data, else noncentral chi.",
    ),
]


def _parse_coils(value: str | None) -> float | str | None:
    """``auto`` or a number of coils >= 1 (an effective, non-integer number is accepted)."""
    if value is None or value == "auto":
        return value
    try:
        n_coils = float(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number of coils >= 1 or auto, got {value!r}") from None
    if not n_coils >= 1 or not math.isfinite(n_coils):
        raise typer.BadParameter(f"the number of coils must be >= 1, got {value!r}")
    return int(n_coils) if n_coils.is_integer() else n_coils


NCoilsOpt = Annotated[
    str | None,
    typer.Option(
        "--n-coils",
        metavar="N|auto",
        parser=_parse_coils,
        help="Coils behind a root-sum-of-squares magnitude image (noise model ncchi); auto: fitted to the air.",
    ),
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
TrustPickleOpt = Annotated[
    bool,
    typer.Option(
        "--trust-pickle",
        help="Also load a model saved as a pickle (joblib): unpickling can run code, so only for files you trust. "
        "Models written by 'c2s-denoise fit' (.c2s) never need it.",
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
NoiseMapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--noise-map",
        metavar="FILE|auto",
        help="Noise that varies across the image (accelerated or intensity-corrected scans): a file of the local "
        "noise level (the input's shape and, for NIfTI, affine; read like the inputs), given once for every input "
        "or once per input in the inputs' order; or auto to estimate a map per volume. Not with --sigma or "
        "contrasts.",
        show_default=False,
    ),
]
#: A counter, ``-v`` or ``-vv`` (``--verbose`` counts too): it takes no value, so ``-v 1`` is ``-v`` and a file
#: ``1``. ``metavar=""`` keeps the help from showing a value (Typer's rich help would show ``<int>``).
VerboseOpt = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        metavar="",
        show_default=False,
        help="Log progress on stderr and, with an error, its traceback; a flag, repeatable (-vv), takes no value.",
    ),
]


def _parse_sigma(value: str | None) -> float | str | None:
    """A positive number, or the name of a noise estimator."""
    if value is None:
        return None
    if value in SIGMA_METHODS:
        return value
    try:
        sigma = float(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number or {'/'.join(SIGMA_METHODS)}, got {value!r}") from None
    if not sigma > 0 or not math.isfinite(sigma):
        raise typer.BadParameter(f"sigma must be a positive number, got {value!r}")
    return sigma


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
_DURATION = re.compile(r"(?P<number>\d+(\.\d*)?|\.\d+)\s*(?P<unit>s|sec|m|min|h)?")
_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(value: str | None) -> float | None:
    """A time budget in seconds from ``300``, ``90s``, ``5m``, ``1.5h``."""
    if value is None:
        return None
    match = _DURATION.fullmatch(value.strip().lower())
    seconds = float(match["number"]) * _SECONDS[match["unit"]] if match else 0.0
    if not seconds > 0:
        raise typer.BadParameter(
            f"expected a positive duration such as 300, 90s, 5m or 1.5h, got {value!r}", param_hint="--max-time"
        )
    return seconds


def parse_device(value: str | None) -> str | None:
    """A torch device name: auto, cpu, cuda, cuda:N or mps (whether it is available is checked later)."""
    if value is None:
        return None
    device = value.strip().lower()
    if not _DEVICE.fullmatch(device):
        raise typer.BadParameter(
            f"expected auto, cpu, cuda, cuda:N (N = 0, 1, ...) or mps, got {value!r}", param_hint="--device"
        )
    return device


def parse_sigmas(values: list[str] | None) -> float | str | dict[str, float | str] | None:
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


def parse_dims(value: str | None) -> int | str | None:
    """``--dims``: 2, 3 or ``auto`` (the estimator's ``spatial_dims``)."""
    if value is None:
        return None
    text = value.strip().lower()
    if text not in ("2", "3", "auto"):
        raise typer.BadParameter(f"expected 2, 3 or auto, got {value!r}", param_hint="--dims")
    return text if text == "auto" else int(text)


def context_slices_for(context_slices: int | None, dims: int | str | None) -> int | None:
    """``--context-slices``, or 0 with ``--dims 2`` when it is not given (``--dims 2``: each slice alone).

    Neither given: None, and the estimator's default applies (neighbouring slices for volumes).
    """
    if context_slices is None and dims == 2:
        return 0
    return context_slices


def parse_names(value: str | None, option: str) -> tuple[str, ...] | None:
    """A comma-separated list of contrast names, such as ``T1,T2,FLAIR``."""
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise typer.BadParameter(f"expected contrast names such as T1,T2, got {value!r}", param_hint=option)
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


def input_files(
    inputs: list[Path] | None, contrast: list[str] | None, group_by_study: bool, order: tuple[str, ...] | None = None
) -> list[Path] | dict[str, list[Path]]:
    """The input files: positional ones, ``{contrast: files}`` from --contrast, or M4Raw files grouped by study."""
    if inputs and contrast:
        raise typer.BadParameter("give the files either as arguments or with --contrast, not both", param_hint="INPUTS")
    if group_by_study:
        if not inputs:
            raise typer.BadParameter("--group-by-study needs the files as arguments", param_hint="INPUTS")
        from ..workflows import group_m4raw_files

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
