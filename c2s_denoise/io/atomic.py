"""Atomic file writes and output-path safety checks.

Every file the package writes goes through :func:`atomic_write`: the content
is written to a temporary file in the target folder, flushed to disk, and only
then renamed over the final name with :func:`os.replace`. A reader therefore
sees either no file or a complete one, never a torn one, even if the process
is interrupted. Temporary files are named ``.c2s-tmp-<8 random characters><suffix>``
(keeping the final name's short suffix, such as ``.nii.gz``, which some writers use
to pick the format, but never longer than the file system allows, however long the
final name) and are removed when the write fails or is interrupted by an exception
or SIGINT.

:func:`check_output_path` checks, before any work is done, everything about an
output that can be checked without writing it: that it is not an input, not an
existing file (without ``overwrite``) or folder, that its folder (or the nearest
existing folder above it) is a folder where a file can be created (a probe file is
created and removed), and that the final and temporary names fit the file
system's ``NAME_MAX``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import C2SInputError

__all__ = [
    "TEMP_PREFIX",
    "atomic_folder",
    "atomic_write",
    "check_output_path",
    "check_output_folder",
    "same_file",
    "temp_name_suffix",
]

#: Prefix of the temporary files created next to an output while it is written.
TEMP_PREFIX = ".c2s-tmp-"

# The longest suffix kept in a temporary name (".nii.gz", ".joblib", ...); longer ones are dropped.
_MAX_TEMP_SUFFIX = 16
# Random characters in a temporary name (those of tempfile.mkstemp).
_TEMP_RANDOM = 8
# Assumed when the file system does not say (POSIX's smallest NAME_MAX is 14; every common one has 255).
_DEFAULT_NAME_MAX = 255


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
        while ``overwrite`` is False; if its folder (or the nearest existing
        folder above it) is a file or not writable; or if a name to be
        created (folders, the file, its temporary file) is longer than the
        file system's ``NAME_MAX``.
    """
    out = Path(path)
    existing = check_output_folder(out.parent if str(out.parent) else Path("."))
    _check_name_lengths(out, existing)  # first: the OS refuses to even look up a name that is too long
    for inp in inputs:
        if same_file(out, inp):
            raise C2SInputError(out, "output would overwrite an input file; choose another output")
    if out.is_dir():
        raise C2SInputError(out, "output path is an existing folder")
    if out.exists() and not overwrite:
        raise C2SInputError(out, "output exists; pass overwrite=True to replace it")
    return out


def check_output_folder(folder: str | os.PathLike[str]) -> Path:
    """Check that files can be created in ``folder``, which need not exist yet.

    The nearest existing folder at or above ``folder`` must be a folder (not a
    file) in which a file can be created: a probe file is created there and
    removed at once, so a read-only file system, a missing permission or a
    full inode table is found before any work is done.

    Parameters
    ----------
    folder : str or path-like
        The output folder; created later by the caller if missing.

    Returns
    -------
    pathlib.Path
        The nearest existing folder at or above ``folder``.

    Raises
    ------
    C2SInputError
        If an existing path on the way is a file, or no file can be created.
    """
    start = Path(folder) if str(folder) else Path(".")
    for parent in (start, *start.absolute().parents):
        if _exists(parent):
            if not parent.is_dir():
                raise C2SInputError(parent, "output folder is an existing file")
            _probe_writable(parent)
            return parent
    raise C2SInputError(start, "output folder does not exist")  # pragma: no cover - "/" always exists


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the OS refuses to look up (too long) does not."""
    try:
        return path.exists()
    except OSError:
        return False


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in ``folder``; any failure is a :class:`C2SInputError`."""
    try:
        fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}probe-", dir=folder)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise C2SInputError(folder, f"output folder is not writable ({reason})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def _name_max(folder: Path) -> int:
    """The longest file name (in bytes) that ``folder``'s file system allows."""
    try:
        value = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # not every platform or file system says
        return _DEFAULT_NAME_MAX
    return int(value) if value and value > 0 else _DEFAULT_NAME_MAX


def temp_name_suffix(final: Path) -> str:
    """The suffix kept in the temporary name of ``final``: its last one or two suffixes, if short."""
    for count in (2, 1):
        suffix = "".join(final.suffixes[-count:])
        if suffix and len(os.fsencode(suffix)) <= _MAX_TEMP_SUFFIX and suffix != final.name:
            return suffix
    return ""


def _check_name_lengths(out: Path, existing: Path) -> None:
    """Every name still to be created (folders, the file, its temporary file) must fit NAME_MAX."""
    limit = _name_max(existing)
    absolute = out.absolute()
    to_create = absolute.relative_to(existing.absolute()).parts if absolute.is_relative_to(existing.absolute()) else ()
    for name in to_create or (out.name,):
        size = len(os.fsencode(name))
        if size > limit:
            raise C2SInputError(
                out, f"file name {name[:40]!r}... is {size} bytes; this file system allows at most {limit}"
            )
    temp_size = len(os.fsencode(TEMP_PREFIX + "x" * _TEMP_RANDOM + temp_name_suffix(out)))
    if temp_size > limit:  # pragma: no cover - only on file systems with very short names
        raise C2SInputError(out, f"temporary file names of {temp_size} bytes exceed this file system's {limit}")


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
        raise C2SInputError(final, "output exists; pass overwrite=True to replace it")
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=temp_name_suffix(final), dir=folder)
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
        raise C2SInputError(final, "output exists; pass overwrite=True to replace it") from None
    except OSError:
        # File systems without hard links: a check-then-rename is the best we can do.
        if final.exists():
            raise C2SInputError(final, "output exists; pass overwrite=True to replace it") from None
        os.replace(tmp, final)
    # After a successful link, the ``finally`` of atomic_write removes ``tmp``.


@contextlib.contextmanager
def atomic_folder(final: Path, *, overwrite: bool) -> Iterator[Path]:
    """Write a folder atomically: a temporary folder beside ``final``, renamed to ``final`` when complete.

    Like :func:`atomic_write` for a folder of files (a DICOM series): every file is fsynced, and
    with ``overwrite`` an existing ``final`` is replaced only after the new folder is whole.
    """
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=final.parent if str(final.parent) else "."))
    try:
        yield tmp
        for entry in tmp.iterdir():
            with open(entry, "rb+") as handle:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o777 & ~_UMASK)
        _fsync_dir(tmp)
        if final.exists() or final.is_symlink():
            if not overwrite:
                raise C2SInputError(final, "output exists; pass overwrite=True to replace it")
            old = tmp.with_name(tmp.name + "-old")
            os.rename(final, old)
            try:
                os.rename(tmp, final)
            except BaseException:
                os.rename(old, final)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing left after a successful rename
