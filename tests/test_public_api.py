"""The package uses scikit-learn's public API only, and checks its parameters itself.

scikit-learn's parameter validation (``sklearn.utils._param_validation``) and output configuration
(``sklearn.utils._set_output``) are private modules that may change in any release. The package
has its own small checks (:mod:`c2s_denoise.estimator._parameters`), tested here the way
scikit-learn's ``check_param_validation`` tests its own estimators.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from c2s_denoise import C2SDenoiser, InvalidParameterError
from c2s_denoise.estimator._parameters import PARAMETER_CONSTRAINTS, Interval, StrOptions

PACKAGE = Path(__file__).resolve().parents[1] / "c2s_denoise"
TINY = dict(max_iter=2, width=4, depth=2, batch_size=2, patch_size=8, random_state=0, device="cpu", n_coils=1)


def _private_sklearn_imports(source: str) -> list[str]:
    """The imports of ``sklearn.<...>._private`` modules or names in ``source`` (function-local ones too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            dotted = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        else:
            continue
        private = [name for name in dotted if name.split(".")[0] == "sklearn" and "._" in name]
        if private:
            found.append(f"line {node.lineno}: {private[-1]}")
    return found


def test_no_private_sklearn_imports() -> None:
    offending = [
        f"{path.relative_to(PACKAGE.parent)} {hit}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for hit in _private_sklearn_imports(path.read_text())
    ]
    assert not offending, "private scikit-learn API imported:\n" + "\n".join(offending)


def test_the_import_check_sees_private_imports() -> None:
    """The check above finds every form of a private import (so it cannot pass vacuously)."""
    source = (
        "from sklearn.utils._param_validation import Interval\n"
        "import sklearn.utils._set_output\n"
        "from sklearn.utils.validation import _check_feature_names_in\n"
        "from sklearn.utils.validation import check_array\n"
        "from ._layouts import is_rows\n"
        "def f():\n    from sklearn import _config\n"
    )
    assert [hit.split(":")[0] for hit in _private_sklearn_imports(source)] == ["line 1", "line 2", "line 3", "line 7"]


# ----------------------------------------------------------------------------- our parameter validation
def test_every_parameter_has_constraints() -> None:
    assert set(PARAMETER_CONSTRAINTS) == set(C2SDenoiser().get_params(deep=False))


def _invalid_value(constraint) -> object:
    """A value of the right type that the constraint refuses, or None when there is none."""
    if isinstance(constraint, StrOptions):
        return "not-an-option"
    if isinstance(constraint, Interval):
        if constraint.left is not None:
            return constraint.left - 1
        if constraint.right is not None:
            return constraint.right + 1
        return np.inf
    return None


@pytest.mark.parametrize("name", sorted(PARAMETER_CONSTRAINTS))
def test_bad_parameters_raise_an_informative_error(name: str) -> None:
    """What scikit-learn's ``check_param_validation`` asks of its own estimators: a value of no valid type,
    and a value of a valid type outside every constraint, raise at ``fit`` an ``InvalidParameterError``
    that names the parameter, what it may be and the value."""
    X = np.random.default_rng(0).random((2, 8, 8))
    match = rf"The '{name}' parameter of C2SDenoiser must be .* Got .* instead\."
    with pytest.raises(InvalidParameterError, match=match):
        C2SDenoiser(**{**TINY, name: type("BadType", (), {})()}).fit(X)
    for constraint in PARAMETER_CONSTRAINTS[name]:
        bad = _invalid_value(constraint)
        if bad is None or any(other.accepts(bad) for other in PARAMETER_CONSTRAINTS[name]):
            continue
        with pytest.raises(InvalidParameterError, match=match):
            C2SDenoiser(**{**TINY, name: bad}).fit(X)


def test_the_error_is_a_value_and_a_type_error() -> None:
    with pytest.raises(ValueError, match=re.escape("an int in the range [1, inf). Got 0 instead.")):
        C2SDenoiser(batch_size=0)._validate_params()
    with pytest.raises(TypeError, match=r"'depth' parameter .* an int in the range \[1, 8\]\. Got 2\.5 instead"):
        C2SDenoiser(depth=2.5)._validate_params()


@pytest.mark.parametrize(
    ("name", "value"),
    [("width", True), ("sigma", np.nan), ("loss_alpha", np.inf), ("max_time", 0), ("verbose", -1)],
)
def test_edge_values_are_refused(name: str, value: object) -> None:
    """Booleans are not numbers, NaN and infinities are outside every range, open bounds are open."""
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        C2SDenoiser(**{name: value})._validate_params()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sigma", np.float32(0.1)),
        ("n_coils", 8),
        ("n_coils", 2.5),
        ("width", np.int64(8)),
        ("verbose", True),
        ("verbose", 2),
        ("random_state", np.random.RandomState(0)),
        ("attention", np.bool_(True)),
        ("max_time", None),
        ("tau_max", 100),
    ],
)
def test_valid_values_pass(name: str, value: object) -> None:
    C2SDenoiser(**{name: value})._validate_params()


def test_a_per_contrast_sigma_is_checked_value_by_value() -> None:
    with pytest.raises(InvalidParameterError, match=r"sigma\['T2'\].* Got -1 instead"):
        C2SDenoiser(contrasts=("T1", "T2"), sigma={"T1": 0.1, "T2": -1})._validate_params()


# ----------------------------------------------------------------------------- set_output, public API
def test_set_output_survives_clone_and_refuses_images() -> None:
    from sklearn.base import clone

    pytest.importorskip("pandas")
    rows = np.random.default_rng(0).random((6, 16))
    model = C2SDenoiser(**TINY).set_output(transform="pandas")
    assert clone(model)._transform_container() == "pandas"
    table = model.fit_transform(rows)
    assert list(table.columns) == [f"x{i}" for i in range(16)]
    with pytest.raises(ValueError, match="is a table and needs 2-D input"):
        clone(model).fit(rows.reshape(6, 4, 4)).transform(rows.reshape(6, 4, 4))
