"""Output of the ``c2s-denoise`` command line: logging and tables on stderr, JSON on stdout, error lines, progress."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import typer

from ..io.errors import C2SInputError, describe_exception
from .flags import as_flags

logger = logging.getLogger("c2s_denoise")


class _StderrHandler(logging.Handler):
    """Writes to the *current* ``sys.stderr`` (which test runners swap per call)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def setup_logging(verbose: int) -> None:
    """Log the package's messages on stderr: progress with ``verbose`` > 0, else warnings only."""
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("c2s-denoise: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if verbose > 0 else logging.WARNING)


def _finite_json(value: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def emit(summary: dict[str, Any]) -> None:
    """Print a summary as JSON on stdout."""
    typer.echo(json.dumps(_finite_json(summary), indent=2))


#: Raised by the command line itself: usage errors (exit status 2) and deliberate exits pass through.
_CLI_EXITS = (typer.Exit, typer.Abort, typer.TyperException)


@contextlib.contextmanager
def known_errors(verbose: int = 0) -> Iterator[None]:
    """Turn every error into one ``error:`` line: exit status 1 (2 for contrast mismatches, 130 if interrupted).

    Known problems (:class:`~c2s_denoise.io.C2SInputError`) print their message; any other
    exception (OSError, ValueError, RuntimeError, FloatingPointError, a bug, ...) prints its type
    and first line, and with ``verbose`` its traceback first, for bug reports. The parameters a
    message names (``overwrite=True``) are printed as flags (``--overwrite``, :func:`.flags.as_flags`).
    Usage errors raised by the command line keep their exit status 2.
    """
    try:
        yield
    except _CLI_EXITS:
        raise
    except C2SInputError as exc:
        from ..workflows.contrasts import ContrastError

        typer.echo(f"error: {as_flags(str(exc))}", err=True)
        raise typer.Exit(2 if isinstance(exc, ContrastError) else 1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; finished outputs are complete, unfinished ones were not written", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        hint = "" if verbose else " (run with -v to see the traceback)"
        typer.echo(f"error: {as_flags(describe_exception(exc))}{hint}", err=True)
        raise typer.Exit(1) from None


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
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


def table(header: list[str], rows: list[list[str]]) -> None:
    """Print a table with aligned columns on stderr."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), err=True)


def fmt(value: float | None, digits: int) -> str:
    """A number with ``digits`` decimals, "-" for None or non-finite."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"
