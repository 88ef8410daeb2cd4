"""Optional dependencies of the benchmark data loaders (``pip install 'c2s-denoise[bench]'``)."""

from __future__ import annotations

__all__ = ["require"]


def require(module: str) -> None:
    try:
        __import__(module)
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"the benchmark data loaders need {module!r}: pip install 'c2s-denoise[bench]' (or pip install {module})"
        ) from error
