"""Model files: save and load a fitted :class:`~c2s_denoise.C2SDenoiser`, their checksum, and a per-process cache."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from ..io import C2SInputError
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
    """Save a fitted model in the safe model format (one safetensors file, no pickle), atomically.

    Parameters
    ----------
    model : C2SDenoiser
        The fitted estimator.
    path : str or path-like
        Model file (``.c2s`` by convention; the format is the same whatever the name). Its
        folder must exist.
    overwrite : bool, default False
        Whether an existing file may be replaced.

    Returns
    -------
    pathlib.Path
        The model file written.
    """
    from ..estimator.model_file import save_model_file

    return save_model_file(model, path, overwrite=overwrite)


def load_model(path: PathLike, *, trust_pickle: bool = False) -> Any:
    """Load a fitted :class:`~c2s_denoise.C2SDenoiser`, recognising the file's format by its content.

    A model in the safe format (:func:`save_model`, :meth:`~c2s_denoise.C2SDenoiser.save`) is
    read without executing anything from the file. A pickle (``joblib.dump``) is refused unless
    ``trust_pickle``: unpickling can run any code the file holds.

    Parameters
    ----------
    path : str or path-like
        Model file.
    trust_pickle : bool, default False
        Also load pickled models (only for files you trust).

    Returns
    -------
    C2SDenoiser
        The fitted estimator.

    Raises
    ------
    C2SInputError
        If the file is missing or unreadable, a pickle without ``trust_pickle``, not a model
        file, corrupt, or holds something other than a fitted ``C2SDenoiser``.
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from ..estimator.model_file import is_model_file, load_model_file

    p = Path(path)
    if not p.exists():
        raise C2SInputError(p, "model file not found")
    if not p.is_file():
        raise C2SInputError(p, "model path is not a regular file")
    if is_model_file(p):
        return load_model_file(p, estimator_class())
    if not trust_pickle:
        if _looks_pickled(p):
            raise C2SInputError(
                p,
                "is a pickled model; pickles can run code when loaded: pass trust_pickle=True only for files you trust",
            )
        raise C2SInputError(p, "not a c2s-denoise model file (neither the safe model format nor a pickle)")
    model = _unpickle(p)
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise C2SInputError(p, "the model in this file is not fitted; run 'c2s-denoise fit' first") from None
    return model


#: First bytes of a pickle (protocol 2 or later) and of joblib's compressed pickles (zlib, gzip, bz2, xz, lzma, lz4).
_PICKLE_MAGIC = (b"\x80", b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x5d\x00\x00", b"\x04\x22\x4d\x18")


def _looks_pickled(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(6).startswith(_PICKLE_MAGIC)


def _unpickle(path: Path) -> Any:
    """A trusted pickle's C2SDenoiser (joblib runs Python's unpickler)."""
    import joblib

    try:
        model = joblib.load(path)
    except Exception as exc:  # unpickling errors come in many types
        raise C2SInputError(path, f"not a c2s-denoise model file ({describe_exception(exc)})") from None
    if not isinstance(model, estimator_class()):
        raise C2SInputError(
            path, f"not a c2s-denoise model file (it holds a {type(model).__name__}, not a C2SDenoiser)"
        )
    return model


@functools.lru_cache(maxsize=2)
def cached_model(path: str, sha256: str, trust_pickle: bool = False) -> Any:
    """The model in ``path`` loaded once per process (parallel ``apply`` workers), checked against its hash."""
    model = load_model(path, trust_pickle=trust_pickle)
    if file_sha256(path) != sha256:
        raise C2SInputError(path, "model file changed while it was being applied")
    return model
