"""Library messages in the command line's words: a parameter ``name=value`` becomes the flag a user types.

The library names its Python parameters in its messages: ``overwrite=True``, ``combine='rss'``,
``spatial_dims=2``, ``sigma=...`` (``...``: no value meant). :func:`as_flags` rewrites them as
``--overwrite``, ``--combine rss``, ``--dims 2`` and ``--sigma``. A parameter's flag is the first
long name of the application's option of that Python name (``n_coils``: ``--n-coils``), or of the
option named in :data:`ALIASES` for the parameters whose option has another name.
"""

from __future__ import annotations

import functools
import re
import shlex
from typing import NamedTuple

__all__ = ["ALIASES", "VALUES", "WITHOUT_VALUE", "as_flags", "flag_table"]

#: Library parameters whose command-line option has another Python name.
ALIASES = {
    "spatial_dims": "dims",  # C2SDenoiser
    "random_state": "seed",  # C2SDenoiser
    "dataset": "h5_dataset",  # ReadOptions
    "references": "reference",  # evaluate_files
    "out_dir": "out",  # run_demo
}
#: Parameter values the command line spells with another option: a noise map estimated per pixel.
VALUES = {("sigma", "local"): "--noise-map auto"}
#: ``contrasts=...``, the files of every contrast, are what repeated ``--contrast NAME=PATH`` give;
#: ``contrasts`` with a value is the order of the contrasts, ``--contrasts A,B,...``.
WITHOUT_VALUE = {"contrasts": "contrast"}

_VALUE = r"True|\.\.\.|'[^'\\]*'|\"[^\"\\]*\"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
#: ``name=value``, a word of its own: not inside a path or an identifier, not followed by more of a word.
_PARAMETER = re.compile(
    rf"(?<![^\s(\[{{,;'\"`])(?P<name>[A-Za-z_]\w*)=(?P<value>{_VALUE})(?=$|[\s)\]}},;:'\"`]|\.(?!\w))"
)


class _Option(NamedTuple):
    flag: str  # the first long name, e.g. --n-coils
    is_flag: bool  # takes no value (an on/off flag or a counter)
    metavar: str | None


@functools.cache
def _options() -> dict[str, _Option]:
    """The application's options by Python name; a name whose flags differ between commands is left out.

    The commands are on the application by then: importing :mod:`c2s_denoise.cli` registers them.
    """
    import typer.main

    from .app import app

    found: dict[str, dict[tuple[str, bool], _Option]] = {}
    for command in typer.main.get_command(app).commands.values():  # type: ignore[attr-defined]
        for param in command.params:
            long = [name for name in param.opts if name.startswith("--")]
            if param.param_type_name == "option" and param.name and long:
                option = _Option(long[0], bool(param.is_flag or param.count), param.metavar)
                found.setdefault(param.name, {}).setdefault(option[:2], option)
    return {name: next(iter(options.values())) for name, options in found.items() if len(options) == 1}


def flag_table() -> dict[str, str]:
    """Every parameter :func:`as_flags` rewrites, with its flag (aliases included)."""
    options = _options()
    table = {name: option.flag for name, option in options.items()}
    table.update({name: options[option].flag for name, option in ALIASES.items() if option in options})
    return table


def _as_flag(match: re.Match[str]) -> str:
    name, value = match["name"], match["value"]
    if (name, value.strip("'\"")) in VALUES:
        return VALUES[name, value.strip("'\"")]
    options = _options()
    if value == "..." and name in WITHOUT_VALUE and WITHOUT_VALUE[name] in options:
        option = options[WITHOUT_VALUE[name]]
        return f"{option.flag} {option.metavar}" if option.metavar else option.flag
    option = options.get(ALIASES.get(name, name))
    if option is None:
        return match[0]
    if value == "..." or (value == "True" and option.is_flag):
        return option.flag
    if value == "True" or option.is_flag:
        return match[0]  # a value for an option that takes none, or True for one that takes a value
    text = value[1:-1] if value[0] in "'\"" else value
    return f"{option.flag} {shlex.quote(text)}"


def as_flags(message: str) -> str:
    """``message`` with every ``name=value`` of a known parameter written as its flag.

    ``True`` and ``...`` give the bare flag (``overwrite=True``: ``--overwrite``), a quoted string
    or a number the flag and the value (``combine='rss'``: ``--combine rss``); the values of
    :data:`VALUES` their own option (``sigma='local'``: ``--noise-map auto``). Unknown names, other
    values (``overwrite=False``) and all other text stay as they are.
    """
    return _PARAMETER.sub(_as_flag, message) if "=" in message else message
