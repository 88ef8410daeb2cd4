"""The Typer application of ``c2s-denoise`` and its root callback; :mod:`.commands` adds the commands."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    name="c2s-denoise",
    help="Corruption2Self (C2S): self-supervised MRI denoising from noisy scans only.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
