"""The ``c2s-denoise`` command line: the only place that names flags.

- :mod:`.commands` -- the Typer application and its commands (:func:`main` is the console script);
- :mod:`.options` -- parsing and checking option values;
- :mod:`.output` -- logging, tables, progress bars and the JSON summary.
"""

from .commands import app, main

__all__ = ["app", "main"]
