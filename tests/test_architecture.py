"""The house rules of the package, checked on its source: imports go downwards, modules stay small,
only the command line names flags.

Imports are read with :mod:`ast`, function-local ones included, so a cycle hidden inside a function
is still a cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "c2s_denoise"
MAX_LINES = 400
#: Each area of the package and its layer: a module imports only from its own area or lower layers.
LAYERS = {
    "_version": 0,
    "physics": 0,
    "engine": 0,
    "metrics": 0,
    "sure_weights": 0,
    "sure_filter": 0,
    "io": 1,
    "estimator": 2,
    "workflows": 3,
    "cli": 4,
    "__init__": 5,
    "__main__": 5,
}
FLAG = re.compile(r"(?:^|[\s(\"'])--[a-z][a-z-]+")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    return modules


MODULES = _modules()


def _imported(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports (a package stands for its ``__init__``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in MODULES:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


GRAPH = {name: _imported(name, path) for name, path in MODULES.items()}


def _area(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_area_has_a_layer() -> None:
    assert {_area(name) for name in MODULES} <= set(LAYERS)


def test_no_import_cycle() -> None:
    """No module reaches itself through imports (a package importing its own submodules excepted)."""

    def reaches(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            current, trail = stack.pop()
            for target in GRAPH[current]:
                if target == start and not start.startswith(current + ".") and not current.startswith(start + "."):
                    return [*trail, target]
                if target not in seen and not start.startswith(target + "."):
                    seen.add(target)
                    stack.append((target, [*trail, target]))
        return None

    cycles = [cycle for name in MODULES if (cycle := reaches(name))]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles[:3])


def test_imports_go_downwards() -> None:
    upwards = [
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if LAYERS[_area(target)] > LAYERS[_area(name)]
    ]
    assert not upwards, f"imports that go up a layer: {upwards}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines (at most {MAX_LINES})"


def _strings_outside_docstrings(tree: ast.AST) -> list[str]:
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_only_the_command_line_names_flags() -> None:
    """Library messages name parameters (``overwrite=True``); the CLI shows them as flags (``--overwrite``)."""
    offending = [
        f"{name}: {text!r}"
        for name, path in MODULES.items()
        if _area(name) not in ("cli", "__main__")
        for text in _strings_outside_docstrings(ast.parse(path.read_text()))
        if FLAG.search(text)
    ]
    assert not offending, f"flags named outside c2s_denoise/cli: {offending}"


def test_the_checks_see_what_they_check() -> None:
    """The graph holds the edges the package is known to have, so the checks above cannot pass vacuously."""
    assert "c2s_denoise.estimator.model_file" in GRAPH["c2s_denoise.estimator._persistence"]
    assert "c2s_denoise.engine.distributed" in GRAPH["c2s_denoise.estimator._fitting"]  # a from-import
    assert any(_area(target) == "workflows" for target in GRAPH["c2s_denoise.cli.commands"])  # function-local
    assert len(MODULES) > 50
