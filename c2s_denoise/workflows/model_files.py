"""Model files: save and load a fitted :class:`~c2s_denoise.C2SDenoiser`, their checksum, and a per-process cache."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from ..io import C2SInputError, atomic_write
from ..io.errors import describe_exception
from ._common import PathLike, estimator_class

__all__ = ["cached_model", "file_sha256", "load_model", "save_model"]


def file_sha256(path: PathLike) -> str:
    """Return the SHA-256 hex digest of a file's content.

    Parameters
    ----------
    path : str or path-like
        File to hash.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model: Any, path: PathLike, *, overwrite: bool = False) -> Path:
    """Save a fitted model with joblib, atomically.

    Parameters
    ----------
    model : C2SDenoiser
        The fitted estimator.
    path : str or path-like
        Model file (``.joblib`` by convention). Its folder must exist.
    overwrite : bool, default False
        Whether an existing file may be replaced.

    Returns
    -------
    pathlib.Path
        The model file written.
    """
    import joblib

    out = Path(path)
    with atomic_write(out, overwrite=overwrite) as tmp:
        joblib.dump(model, tmp)
    return out


def load_model(path: PathLike) -> Any:
    """Load a fitted :class:`~c2s_denoise.C2SDenoiser` saved with joblib.

    Loading runs Python's unpickler: only load model files you trust.

    Parameters
    ----------
    path : str or path-like
        Model file written by :func:`save_model` or ``joblib.dump``.

    Returns
    -------
    C2SDenoiser
        The fitted estimator.

    Raises
    ------
    C2SInputError
        If the file is missing or unreadable, is not a joblib/pickle file, or
        holds something other than a fitted ``C2SDenoiser``.
    """
    import joblib
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    p = Path(path)
    if not p.exists():
        raise C2SInputError(p, "model file not found")
    if not p.is_file():
        raise C2SInputError(p, "model path is not a regular file")
    try:
        model = joblib.load(p)
    except Exception as exc:  # unpickling errors come in many types
        raise C2SInputError(p, f"not a c2s-denoise model file ({describe_exception(exc)})") from None
    if not isinstance(model, estimator_class()):
        raise C2SInputError(p, f"not a c2s-denoise model file (it holds a {type(model).__name__}, not a C2SDenoiser)")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise C2SInputError(p, "the model in this file is not fitted; run 'c2s-denoise fit' first") from None
    return model


@functools.lru_cache(maxsize=2)
def cached_model(path: str, sha256: str) -> Any:
    """The model in ``path`` loaded once per process (parallel ``apply`` workers), checked against its hash."""
    model = load_model(path)
    if file_sha256(path) != sha256:
        raise C2SInputError(path, "model file changed while it was being applied")
    return model
