"""The read options of the commands that read files, declared once.

``--crop``, ``--slice-axis``, ``--npz-key``, ``--h5-dataset`` and (for commands that may read
k-space as complex images) ``--combine``. :func:`reads_files` adds them to a command, which takes
them as one :class:`~c2s_denoise.io.ReadOptions`, its ``read_options`` parameter. Their defaults
are ``ReadOptions``'s, and ``ReadOptions`` checks their values.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from ..io.options import COMBINE_MODES, MAGNITUDE_READ, ReadOptions
from .flags import as_flags

__all__ = ["CombineOpt", "CropOpt", "DatasetOpt", "NpzKeyOpt", "SliceAxisOpt", "reads_files"]

Command = TypeVar("Command", bound=Callable[..., Any])

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
        metavar="|".join(COMBINE_MODES),
        help="HDF5 k-space: 'complex' prewhitens the coils and combines them into complex images with known, "
        "Gaussian noise (what 'auto' does for files with kspace); 'rss' reads the stored reconstruction or the "
        "root-sum-of-squares of the coils (magnitude, noncentral-chi noise).",
    ),
]

_DEFAULT = ReadOptions()


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


#: The options in the order ``--help`` lists them; an unset ``--crop`` keeps whole slices.
_OPTIONS = (
    _option("crop", CropOpt, None),
    _option("slice_axis", SliceAxisOpt, _DEFAULT.slice_axis),
    _option("npz_key", NpzKeyOpt, _DEFAULT.npz_key),
    _option("h5_dataset", DatasetOpt, _DEFAULT.dataset),
)
_COMBINE = _option("combine", CombineOpt, _DEFAULT.combine)


def _parse_crop(value: str | None) -> tuple[int, int] | None:
    """``HxW`` (or ``H,W``) as ``(h, w)``."""
    if value is None:
        return None
    parts = value.lower().replace(",", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(f"expected HxW such as 320x320, got {value!r}") from None
    return h, w


def _read_options(
    crop: str | None, slice_axis: int, npz_key: str | None, h5_dataset: str | None, combine: str
) -> ReadOptions:
    """The read options given, as ``ReadOptions`` (whose errors are usage errors here)."""
    try:
        return ReadOptions(
            crop=_parse_crop(crop), slice_axis=slice_axis, npz_key=npz_key, dataset=h5_dataset, combine=combine
        )
    except ValueError as exc:
        raise typer.BadParameter(as_flags(str(exc))) from None


def reads_files(*, combine: bool) -> Callable[[Command], Command]:
    """Give a command the read options, in place of its (keyword-only) ``read_options: ReadOptions`` parameter.

    Typer finds the options in the signature of the command returned, which calls the command
    with the ``ReadOptions`` they make. Without ``combine`` the command has no ``--combine`` and
    reads magnitude images, as :func:`~c2s_denoise.io.load_image` does by default.
    """
    added = (*_OPTIONS, _COMBINE) if combine else _OPTIONS
    names = [option.name for option in added]

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        if "read_options" not in signature.parameters:
            raise TypeError(f"{command.__name__} takes no read_options parameter")
        parameters = []
        for parameter in signature.parameters.values():
            if parameter.name == "read_options":
                parameters += [option.replace(kind=parameter.kind) for option in added]
            else:
                parameters.append(parameter)

        @functools.wraps(command)
        def with_read_options(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            given.setdefault("combine", MAGNITUDE_READ.combine)
            return command(**kwargs, read_options=_read_options(**given))

        with_read_options.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        with_read_options.__annotations__ = {p.name: p.annotation for p in parameters}
        return with_read_options  # type: ignore[return-value]

    return decorate
