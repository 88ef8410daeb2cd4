"""The ``c2s-denoise`` command line: the only place that names flags.

- :mod:`.app` -- the Typer application; :mod:`.commands` adds its commands (:func:`main` is the
  console script), ``fit`` and ``apply`` from :mod:`.fit_command` and :mod:`.apply_command`;
- :mod:`.options` -- the shared option types and the parsing of option values;
- :mod:`.reading` -- the read options (``--crop``, ``--combine``, ...), declared once for every command;
- :mod:`.flags` -- library messages' parameters (``overwrite=True``) as flags (``--overwrite``);
- :mod:`.output` -- logging, tables, progress bars, error lines and the JSON summary.
"""

from .commands import app, main

__all__ = ["app", "main"]
