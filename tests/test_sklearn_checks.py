"""scikit-learn's common estimator checks on a tiny C2SDenoiser: the whole contract, no expected failures."""

import warnings
from unittest import SkipTest

import pytest
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from c2s_denoise import C2SDenoiser

# A tiny network and a handful of steps: the checks test the API contract, not denoising quality.
# n_coils=1: the checks' random images have no air to fit a coil number to (that would warn)
TINY = dict(max_iter=3, width=4, depth=2, batch_size=2, patch_size=8, random_state=0, device="cpu", n_coils=1)

# Skips that come from the environment, not from the estimator (an optional library not installed).
_MISSING_LIBRARY = ("not installed", "is required", "No module named")


@parametrize_with_checks([C2SDenoiser(**TINY)])
def test_sklearn_compatible_estimator(estimator, check):
    try:
        check(estimator)
    except pytest.skip.Exception as skip:  # only an absent optional library may skip a check
        assert any(reason in str(skip) for reason in _MISSING_LIBRARY), str(skip)
        raise


def test_check_estimator_runs_clean():
    """``check_estimator`` with its defaults: every check passes, none expected to fail, none skipped by us."""
    results = check_estimator(C2SDenoiser(**TINY), on_fail=None, on_skip=None)
    assert not [(r["check_name"], r["exception"]) for r in results if r["status"] not in ("passed", "skipped")]
    skipped = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "skipped"]
    assert all(any(reason in why for reason in _MISSING_LIBRARY) for _, why in skipped), skipped
    assert not any(r["expected_to_fail"] for r in results)


def test_check_estimator_at_the_defaults():
    """``check_estimator(C2SDenoiser(max_iter=5))``: the default network, ``n_coils="auto"`` and the
    self-ensemble pass every check too (subset invariance bitwise), none expected to fail."""
    with warnings.catch_warnings():  # the checks' random arrays have no air to fit a coil number to
        warnings.filterwarnings("ignore", message="n_coils='auto' found too little signal-free air")
        results = check_estimator(C2SDenoiser(max_iter=5), on_fail=None, on_skip=None)
    assert not [(r["check_name"], r["exception"]) for r in results if r["status"] not in ("passed", "skipped")]
    skipped = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "skipped"]
    assert all(any(reason in why for reason in _MISSING_LIBRARY) for _, why in skipped), skipped
    assert not any(r["expected_to_fail"] for r in results)
    assert "check_methods_subset_invariance" in {r["check_name"] for r in results if r["status"] == "passed"}


# Checks that scikit-learn runs on its own estimators outside the generator above (in 1.9):
# set_output (pandas; polars when installed), feature names. (Its check_param_validation needs
# scikit-learn's private constraint classes and error; the package has its own parameter checks,
# tested the same way in test_public_api.py.)
EXTRA_CHECKS = [
    "check_set_output_transform",
    "check_set_output_transform_pandas",
    "check_global_output_transform_pandas",
    "check_set_output_transform_polars",
    "check_global_set_output_transform_polars",
    "check_transformer_get_feature_names_out",
    "check_transformer_get_feature_names_out_pandas",
    "check_dataframe_column_names_consistency",
    "check_get_feature_names_out_error",
]


@pytest.mark.parametrize("check_name", EXTRA_CHECKS)
@pytest.mark.filterwarnings("ignore:X (does not have valid|has) feature names:UserWarning")  # the checks mix them
def test_extra_sklearn_checks(check_name):
    check = getattr(estimator_checks, check_name)
    try:
        check("C2SDenoiser", C2SDenoiser(**TINY))
    except SkipTest as skip:
        assert any(reason in str(skip) for reason in _MISSING_LIBRARY), str(skip)
        pytest.skip(str(skip))
