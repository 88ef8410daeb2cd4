"""Exceptions raised by the file and command-line layer."""

from __future__ import annotations

from os import PathLike

__all__ = ["C2SInputError", "describe_exception"]


class C2SInputError(ValueError):
    """A problem with a file given to the package, described in one line.

    The message always names the file and the problem, so that the command
    line can print it as is (without a traceback) and exit with status 1.

    Parameters
    ----------
    path : str or path-like or None
        The file concerned; ``None`` for problems that concern no single file.
    problem : str
        What is wrong, in a few words (no trailing full stop needed).
    """

    def __init__(self, path: str | PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = _one_line(problem)
        message = self.problem if self.path is None else f"{self.path}: {self.problem}"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[C2SInputError], tuple[str | None, str]]:
        # Keep the exception picklable (it crosses process boundaries in ``apply``).
        return (type(self), (self.path, self.problem))


def describe_exception(exc: BaseException) -> str:
    """Return a one-line description of a third-party exception.

    Parameters
    ----------
    exc : BaseException
        Exception raised by a reader (h5py, nibabel, numpy, joblib, ...).

    Returns
    -------
    str
        ``"<ExceptionType>: <first line of the message>"``, or just the type
        name when the message is empty.
    """
    text = _one_line(str(exc))
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= 300 else line[:297] + "..."
