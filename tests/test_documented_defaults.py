"""The defaults the documentation states are the code's, and its relative links resolve.

- ``docs/estimator.md`` holds the one table of ``C2SDenoiser``'s parameters (``Parameter |
  Default | Meaning``); every row's default must be the signature's.
- The class docstring's ``Parameters`` section (``name : type, default=value``) must state the
  signature's defaults too.
- ``docs/command-line.md`` lists every option of every command with its default; each must be
  the Typer application's.
- A ``C2SDenoiser(*, ...)`` signature written out in the README or a guide must match.
- Every relative link in ``README.md`` and ``docs/*.md`` points to an existing file (and, for a
  link into a markdown file, to an existing heading).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from c2s_denoise import C2SDenoiser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ESTIMATOR_DOC = DOCS / "estimator.md"
COMMAND_LINE_DOC = DOCS / "command-line.md"
MARKDOWN_FILES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

PARAMETER_HEADER = ["Parameter", "Default", "Meaning"]
OPTION_HEADER = ["Option", "Default", "Meaning"]
SHARED_OPTION_HEADER = ["Option", "Commands", "Default", "Meaning"]


def cli_app():
    """The Typer application of ``c2s-denoise``: the one place that imports the command line."""
    from c2s_denoise.cli import app

    return app


def cli_commands() -> dict:
    """The click commands of the command line, by name."""
    import typer.main

    return dict(typer.main.get_command(cli_app()).commands)


# ----------------------------------------------------------------------------- markdown
def _without_code_blocks(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks (a fence line becomes empty)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return lines


def _cells(line: str) -> list[str]:
    """The cells of a table row; ``\\|`` is a literal pipe."""
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [part.strip().replace("\\|", "|") for part in parts]


def markdown_tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every table of a markdown text as ``(heading above it, header cells, body rows)``."""
    tables, heading, block = [], "", []
    for line in [*_without_code_blocks(text), ""]:
        if line.startswith("|"):
            block.append(_cells(line))
            continue
        if len(block) >= 2:
            tables.append((heading, block[0], block[2:]))
        block = []
        if line.startswith("#"):
            heading = line
    return tables


def code_span(cell: str) -> str:
    """The text of a cell that is one code span, such as ``"auto"`` in backticks."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected one code span, got {cell!r}"
    return match[1]


def code_spans(cell: str) -> list[str]:
    """Every code span in a cell."""
    return re.findall(r"`([^`]+)`", cell)


def same_value(documented: object, actual: object) -> bool:
    """Equal and of the same type (so that ``0`` does not pass for ``0.0``, nor ``1`` for ``True``)."""
    return type(documented) is type(actual) and documented == actual


def signature_defaults() -> dict[str, object]:
    """``C2SDenoiser``'s parameters and their defaults, from its signature."""
    return {name: p.default for name, p in inspect.signature(C2SDenoiser).parameters.items()}


# ----------------------------------------------------------------------------- the estimator's table
def parameter_table() -> list[list[str]]:
    """The rows of the one ``Parameter | Default | Meaning`` table of docs/estimator.md."""
    tables = [rows for _, header, rows in markdown_tables(ESTIMATOR_DOC.read_text()) if header == PARAMETER_HEADER]
    assert len(tables) == 1, f"{ESTIMATOR_DOC.name} needs exactly one parameter table, found {len(tables)}"
    return tables[0]


def test_parameter_table_names_every_parameter_once():
    """The table has one row per parameter of the signature, and no other row."""
    names = [code_span(row[0]) for row in parameter_table()]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"documented more than once: {duplicates}"
    expected = set(signature_defaults())
    assert not expected - set(names), f"missing from the table: {sorted(expected - set(names))}"
    assert not set(names) - expected, f"not parameters of C2SDenoiser: {sorted(set(names) - expected)}"


def test_parameter_table_defaults_are_the_signatures():
    """Each row's Default, read as a Python literal, equals the signature's default."""
    defaults = signature_defaults()
    drift = []
    for row in parameter_table():
        name, cell = code_span(row[0]), code_span(row[1])
        if name in defaults and not same_value(ast.literal_eval(cell), defaults[name]):
            drift.append(f"{name}: documented {cell}, code {defaults[name]!r}")
    assert not drift, "docs/estimator.md disagrees with the signature:\n" + "\n".join(drift)


# ----------------------------------------------------------------------------- the docstring
def docstring_parameters() -> dict[str, str]:
    """The type line of each entry in the ``Parameters`` section of ``C2SDenoiser``'s docstring."""
    doc = inspect.getdoc(C2SDenoiser)
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[^\n]*\n-+\n|\Z)", doc, re.S | re.M)
    assert section, "C2SDenoiser's docstring has no Parameters section"
    return dict(re.findall(r"^(\w+) : (.*)$", section[1], re.M))


def test_docstring_documents_every_parameter():
    """The docstring has an entry for each parameter and no other."""
    assert set(docstring_parameters()) == set(signature_defaults())


def test_docstring_defaults_are_the_signatures():
    """Every ``default=...`` of the docstring equals the signature's default."""
    defaults = signature_defaults()
    drift = []
    for name, type_line in docstring_parameters().items():
        match = re.search(r"default=(.+)$", type_line)
        if match and name in defaults and not same_value(ast.literal_eval(match[1].strip()), defaults[name]):
            drift.append(f"{name}: docstring default={match[1]}, code {defaults[name]!r}")
    assert not drift, "C2SDenoiser's docstring disagrees with the signature:\n" + "\n".join(drift)


# ----------------------------------------------------------------------------- written-out signatures
def signature_blocks(text: str) -> list[str]:
    """Every ``C2SDenoiser(*, ...)`` written out in ``text``, as the text between the parentheses."""
    blocks = []
    for match in re.finditer(r"C2SDenoiser\(\s*\*\s*,", text):
        depth, start = 0, match.end() - len(match[0]) + len("C2SDenoiser(")
        for end in range(start - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                blocks.append(text[start:end])
                break
    return blocks


def block_defaults(block: str) -> dict[str, object]:
    """The defaults of a written-out keyword-only signature."""
    arguments = ast.parse(f"def f({block}): pass").body[0].args
    return {a.arg: ast.literal_eval(d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)}


def test_signature_blocks_are_recognised():
    """The helper finds a written-out signature and reads its defaults (so the next test can guard)."""
    text = 'x\nC2SDenoiser(*, sigma="auto",\n            max_iter=8000, max_time=None)\ny'
    assert [block_defaults(block) for block in signature_blocks(text)] == [
        {"sigma": "auto", "max_iter": 8000, "max_time": None}
    ]


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda path: path.name)
def test_written_out_signatures_match(path):
    """A ``C2SDenoiser(*, ...)`` signature in the README or a guide names every parameter with its default."""
    for block in signature_blocks(path.read_text()):
        assert block_defaults(block) == signature_defaults(), f"{path.name}: the written-out signature has drifted"


# ----------------------------------------------------------------------------- the command line
def option_rows() -> list[tuple[str, list[str], str]]:
    """``(command, option names, Default cell)`` for every row of the option tables of docs/command-line.md."""
    commands = set(cli_commands())
    rows = []
    for heading, header, body in markdown_tables(COMMAND_LINE_DOC.read_text()):
        if header == OPTION_HEADER:
            named = [name for name in code_spans(heading) if name in commands]
            assert named, f"the option table under {heading!r} names no command in its heading"
            rows += [(command, code_spans(row[0]), row[1]) for row in body for command in named]
        elif header == SHARED_OPTION_HEADER:
            for row in body:
                named = code_spans(row[1])
                assert named and set(named) <= commands, f"{row[0]}: unknown commands {named}"
                rows += [(command, code_spans(row[0]), row[2]) for command in named]
    return rows


def test_option_tables_name_every_option_once():
    """For each command, the tables list each of its options exactly once, and only its options."""
    documented: dict[str, list[str]] = {}
    for command, names, _ in option_rows():
        documented.setdefault(command, []).append(names[0])
    problems = []
    for name, command in cli_commands().items():
        options = [p.opts[0] for p in command.params if p.param_type_name == "option"]
        listed = documented.get(name, [])
        problems += [f"{name} {o}: listed {listed.count(o)} times" for o in set(listed) if listed.count(o) > 1]
        problems += [f"{name} {o}: not listed" for o in options if o not in listed]
        problems += [f"{name} {o}: not an option of the command" for o in listed if o not in options]
    assert not problems, "docs/command-line.md disagrees with the commands:\n" + "\n".join(problems)


def test_option_defaults_are_the_commands():
    """Each Default cell matches the option: ``required``, ``unset`` (None), ``off`` (a flag) or the value."""
    commands = cli_commands()
    drift = []
    for command, names, cell in option_rows():
        params = [p for p in commands[command].params if names[0] in p.opts]
        if not params:
            continue  # reported by the test above
        param = params[0]
        if sorted(names) != sorted(param.opts):
            drift.append(f"{command} {names[0]}: documented as {names}, defined as {param.opts}")
        if cell == "required":
            ok = param.required
        elif cell == "unset":
            ok = param.default is None and not param.required
        elif cell == "off":
            ok = param.is_flag and param.default is False
        else:
            ok = not param.required and str(param.default) == code_span(cell)
        if not ok:
            drift.append(f"{command} {names[0]}: documented {cell}, code default {param.default!r}")
    assert not drift, "docs/command-line.md disagrees with the commands:\n" + "\n".join(drift)


# ----------------------------------------------------------------------------- links
def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown file's headings."""
    return {heading_anchor(line) for line in _without_code_blocks(path.read_text()) if line.startswith("#")}


def relative_links(path: Path) -> list[str]:
    """The targets of the relative links and images of a markdown file (outside code)."""
    text = "\n".join(_without_code_blocks(path.read_text()))
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    return [target for target in targets if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda path: path.name)
def test_relative_links_resolve(path):
    """Every relative link points to an existing file, and a ``#anchor`` into markdown to a heading."""
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{path.relative_to(ROOT)}:\n" + "\n".join(broken)
