"""What the workflows share: types, the lazy estimator import, input and output-folder checks."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from ..estimator.rules import depth_problem
from ..io import C2SInputError, LoadedImage, ReadOptions, probe_image
from ..io.atomic import check_output_folder as check_output_folder  # re-exported for the workflows
from ..io.errors import describe_exception

logger = logging.getLogger("c2s_denoise")

#: Called after each finished item with (done, total); the CLI passes a progress bar's update.
Progress = Callable[[int, int], None]

PathLike = str | os.PathLike[str]

#: Input files: a sequence (one volume each), or ``{contrast: files}`` with one file per subject and contrast.
Inputs = Sequence[PathLike] | Mapping[str, Sequence[PathLike]]

#: The files of one subject by contrast; the contrast of a single-contrast file is None.
Subject = dict[str | None, Path]

_ITEM = re.compile(r"\bitem (\d+)\b")


def estimator_class() -> type:
    """:class:`~c2s_denoise.C2SDenoiser`, imported when first needed (it imports torch)."""
    from ..estimator import C2SDenoiser

    return C2SDenoiser


def package_version() -> str:
    from .._version import __version__

    return __version__


def check_device(device: object) -> None:
    """A torch device asked for must exist here (checked before any work; imports torch)."""
    if device is None or not isinstance(device, str):
        return
    from ..engine.device import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        raise C2SInputError(None, str(exc)) from None


def check_inputs(paths: Sequence[PathLike], options: ReadOptions) -> list[Path]:
    """Probe every input file before any work is done; the inputs as paths."""
    if not paths:
        raise C2SInputError(None, "no input files given")
    for path in paths:
        probe_image(path, options)
    return [Path(p) for p in paths]


def check_depth(image: LoadedImage, context_slices: int | str) -> None:
    """A volume must have enough slices for ``context_slices`` (the estimator's rule
    :func:`~c2s_denoise.estimator.rules.depth_problem`, checked before any work)."""
    problem = depth_problem(image.volumes[0].shape[0], context_slices)
    if problem:
        raise C2SInputError(image.source, problem)


def check_voxel_sizes(images: Sequence[LoadedImage], spatial_dims: object) -> None:
    """Files that train one 3-D network must share one voxel size (where their format records it).

    A 3-D network learns from voxels: volumes of different voxel sizes (e.g. 1 mm and 3 mm slices)
    show it the same anatomy at different scales along each axis. Checked for ``spatial_dims``
    3 or ``"auto"`` (which picks 3 for volumes) before any work; relative differences below 1%
    are rounding.
    """
    if spatial_dims not in (3, "auto"):
        return
    sized = [(image, image.meta["voxel_size"]) for image in images if len(image.meta.get("voxel_size", ())) == 3]
    if not sized:
        return
    first, reference = sized[0]
    for image, size in sized[1:]:
        if any(abs(a - b) > 0.01 * max(abs(a), abs(b)) for a, b in zip(size, reference)):
            raise C2SInputError(
                image.source,
                f"voxel size {_mm(size)} differs from {_mm(reference)} of {first.source} (the first file): a 3-D "
                "network (spatial_dims=3) learns from voxels, so its training files need one voxel size; resample them, "
                "or fit slice by slice with spatial_dims=2",
            )


def _mm(size: tuple[float, ...]) -> str:
    return " x ".join(f"{value:g}" for value in size) + " mm (slice, row, column)"


def item_error(exc: Exception, item_files: Sequence[Path], action: str) -> C2SInputError:
    """An estimator error as a file error: an error about item ``i`` names ``item_files[i]``.

    Parameters
    ----------
    exc : Exception
        Raised by the estimator; the item is its ``item`` attribute, or "item <i>" in its message.
    item_files : sequence of pathlib.Path
        The file of each item the estimator was given (with contrasts: a file of each subject).
    action : str
        What failed, e.g. ``"cannot fit"``; the message is ``"<action>: <exception>"``.
    """
    index = getattr(exc, "item", None)
    if index is None:
        found = _ITEM.search(str(exc))
        index = int(found.group(1)) if found else None
    path = item_files[index] if index is not None and 0 <= index < len(item_files) else None
    return C2SInputError(path, f"{action}: {describe_exception(exc)}")


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (None: as they are), then restore the count."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
