"""Saving a trained model without losing it: a fallback path when the intended one cannot be written.

Every output path is checked before training (:func:`~c2s_denoise.io.check_output_path`), but
the disk may fill up or the folder may vanish while a model trains. Training is the expensive
part, so a model that cannot be written where asked is written, with the same
:func:`~c2s_denoise.workflows.save_model`, next to the intended file, else in the current
folder, else in the temporary folder, under a new unique name; the error then names it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from ..io import C2SInputError
from ..io.errors import describe_exception
from ._common import logger
from .model_files import save_model

__all__ = ["ModelNotWrittenError", "fallback_candidates", "save_model_or_fallback"]


class ModelNotWrittenError(C2SInputError):
    """The model could not be written where asked; ``saved_to`` is where it was saved instead (or None)."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str, saved_to: str | None = None) -> None:
        super().__init__(path, problem)
        self.saved_to = saved_to

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.problem, self.saved_to))


def _reason(exc: BaseException) -> str:
    """The OS's words for a failed write ("No space left on device"), else the exception in one line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, C2SInputError):
        return exc.problem
    return describe_exception(exc)


def fallback_candidates(intended: Path) -> list[Path]:
    """Where a model that cannot be written to ``intended`` is tried instead, in order (unique new names)."""
    token = secrets.token_hex(4)
    suffix = intended.suffix if 0 < len(intended.suffix) <= 16 else ""
    stem = intended.stem[:40] or "model"
    return [
        intended.parent / f"{stem}-recovered-{token}{suffix}",
        Path.cwd() / f"c2s-model-{token}{suffix}",
        Path(tempfile.gettempdir()) / f"c2s-model-{token}{suffix}",
    ]


def save_model_or_fallback(model: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Save a trained model to ``path``; if that fails, to a fallback path, and say where.

    Parameters
    ----------
    model : C2SDenoiser
        The fitted estimator.
    path : path-like
        The intended model file; its folder is created if missing.
    overwrite : bool, default False
        Whether an existing file at ``path`` may be replaced.

    Returns
    -------
    pathlib.Path
        ``path``, when the model was written there.

    Raises
    ------
    ModelNotWrittenError
        When ``path`` could not be written. The message names ``path``, the
        reason and the fallback file the model was saved to (its
        ``saved_to``), or says that no fallback could be written either.
    """
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return save_model(model, out, overwrite=overwrite)
    except (OSError, C2SInputError) as exc:
        failure = exc
    reason = _reason(failure)
    for candidate in fallback_candidates(out):
        try:
            saved = save_model(model, candidate, overwrite=False)
        except (OSError, C2SInputError) as exc:
            logger.info("could not save the model to the fallback %s either (%s)", candidate, _reason(exc))
            continue
        raise ModelNotWrittenError(
            None, f"could not write {out} ({reason}); the trained model was saved to {saved}", str(saved)
        ) from None
    raise ModelNotWrittenError(
        None, f"could not write {out} ({reason}), nor a fallback copy next to it, here or in the temporary folder"
    ) from None
