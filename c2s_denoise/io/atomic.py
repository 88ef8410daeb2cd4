"""Atomic file writes and output-path safety checks.

Every file the package writes goes through :func:`atomic_write`: the content
is written to a temporary file in the target folder, flushed to disk, and only
then renamed over the final name with :func:`os.replace`. A reader therefore
sees either no file or a complete one, never a torn one, even if the process
is interrupted. Temporary files are named ``.c2s-tmp-<random>-<final name>``
(keeping the final suffix, which some writers use to pick the format) and are
removed when the write fails or is interrupted by an exception or SIGINT.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import C2SInputError

__all__ = [
    "TEMP_PREFIX",
    "atomic_write",
    "check_output_path",
    "same_file",
]

#: Prefix of the temporary files created next to an output while it is written.
TEMP_PREFIX = ".c2s-tmp-"


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once, at import, in the main thread: os.umask is process-wide state.
_UMASK = _read_umask()


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Return whether two paths name the same file.

    Parameters
    ----------
    a, b : str or path-like
        Paths to compare; they need not exist.

    Returns
    -------
    bool
        True when both exist and are the same file (also through links), or
        when their resolved absolute paths are equal.
    """
    pa, pb = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    return pa.resolve() == pb.resolve()


def check_output_path(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> Path:
    """Check that ``path`` may be written, before any work is done.

    Parameters
    ----------
    path : str or path-like
        The output file.
    inputs : iterable of path-like, optional
        Input files of the same run; an input is never an output.
    overwrite : bool, default False
        Whether an existing output may be replaced.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    C2SInputError
        If ``path`` is one of ``inputs``, is an existing folder, or exists
        while ``overwrite`` is False.
    """
    out = Path(path)
    for inp in inputs:
        if same_file(out, inp):
            raise C2SInputError(out, "output would overwrite an input file; choose another output")
    if out.is_dir():
        raise C2SInputError(out, "output path is an existing folder")
    if out.exists() and not overwrite:
        raise C2SInputError(out, "output exists; pass --overwrite to replace it")
    return out


def _fsync_path(path: Path) -> None:
    with open(path, "rb+") as handle:
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform allows opening a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Write a file atomically.

    Yields the path of a temporary file in the target folder; the caller
    writes the complete content there (with any library that takes a path).
    When the ``with`` block ends normally the file is fsynced and renamed to
    ``path``. When it raises (including ``KeyboardInterrupt``), the temporary
    file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        Final file name. Its folder must exist.
    overwrite : bool, default False
        Whether an existing ``path`` may be replaced. Checked both before and
        after writing (the file may have appeared in the meantime).

    Yields
    ------
    pathlib.Path
        The temporary file to write to. It exists (empty) when yielded.

    Raises
    ------
    C2SInputError
        If ``path`` exists and ``overwrite`` is False, or its folder is missing.

    Examples
    --------
    >>> import numpy as np
    >>> with atomic_write("out.npy") as tmp:  # doctest: +SKIP
    ...     np.save(tmp, np.zeros(3))
    """
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise C2SInputError(final, "output folder does not exist")
    if final.exists() and not overwrite:
        raise C2SInputError(final, "output exists; pass --overwrite to replace it")
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=f"-{final.name}", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        if overwrite:
            os.replace(tmp, final)
        else:
            _rename_no_clobber(tmp, final)
        _fsync_dir(folder)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _rename_no_clobber(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final``, failing if ``final`` exists (where the OS allows)."""
    try:
        os.link(tmp, final)  # atomic and fails if ``final`` exists
    except FileExistsError:
        raise C2SInputError(final, "output exists; pass --overwrite to replace it") from None
    except OSError:
        # File systems without hard links: a check-then-rename is the best we can do.
        if final.exists():
            raise C2SInputError(final, "output exists; pass --overwrite to replace it") from None
        os.replace(tmp, final)
    # After a successful link, the ``finally`` of atomic_write removes ``tmp``.
