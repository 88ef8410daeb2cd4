"""File-level workflows behind the ``c2s-denoise`` command line.

Each function does one whole job on files and returns a JSON-serialisable
summary; one module per job:

- :mod:`.fit` -- :func:`fit_files`: fit a model on files and save it;
- :mod:`.apply` -- :func:`apply_files`: denoise files with a saved model;
- :mod:`.evaluate` -- :func:`evaluate_files`: score results against references;
- :mod:`.noise_report` -- :func:`estimate_noise_files`: estimate noise levels;
- :mod:`.demo` -- :func:`run_demo`: the phantom demo;
- :mod:`.model_files` -- :func:`save_model`, :func:`load_model`, :func:`file_sha256`;
- :mod:`.contrasts` -- multi-contrast subjects, :func:`group_m4raw_files`, :class:`ContrastError`.

They are usable from Python as well as through :mod:`c2s_denoise.cli.commands`, which
only parses arguments and prints. Every problem with a file raises
:class:`~c2s_denoise.io.C2SInputError` *before* any output is written where it
can be detected up front (missing or unreadable inputs, existing outputs, an
output that is an input, a bad model file); all writes are atomic.

:func:`fit_files` and :func:`apply_files` also take multi-contrast inputs: a
mapping ``{contrast: [file of subject 0, file of subject 1, ...]}`` (the i-th
file of every contrast belongs to subject i), for which the model is a
multi-contrast :class:`~c2s_denoise.C2SDenoiser`; :func:`group_m4raw_files`
builds such a mapping from M4Raw file names. Inputs that do not form valid
subjects, or do not match the model's contrasts, raise :class:`ContrastError`.
"""

from ..io import ReadOptions
from ._common import Inputs, PathLike, Progress
from .apply import apply_files
from .contrasts import ContrastError, group_m4raw_files
from .demo import DEMO_FILES, DemoSettings, run_demo
from .evaluate import evaluate_files
from .fit import fit_files
from .model_files import file_sha256, load_model, save_model
from .noise_report import estimate_noise_files

__all__ = [
    "DEMO_FILES",
    "ContrastError",
    "DemoSettings",
    "Inputs",
    "PathLike",
    "Progress",
    "ReadOptions",
    "apply_files",
    "estimate_noise_files",
    "evaluate_files",
    "file_sha256",
    "fit_files",
    "group_m4raw_files",
    "load_model",
    "run_demo",
    "save_model",
]
