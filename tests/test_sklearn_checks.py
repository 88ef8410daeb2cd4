"""scikit-learn's common estimator checks on a tiny C2SDenoiser."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from c2s_denoise import C2SDenoiser

# A tiny network and a handful of steps: the checks test the API contract, not denoising quality.
TINY = dict(max_iter=3, width=4, depth=2, batch_size=2, patch_size=8, random_state=0, device="cpu")

_Y_IS_REFERENCE = (
    "score(X, y) reads y as the clean reference images of X (same layout) and rejects the 1-D "
    "label vector this check passes; score(X) with y=None is the self-supervised score that "
    "Pipeline and GridSearchCV use without clean data, and it is tested in test_estimator.py"
)
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_fit_score_takes_y": _Y_IS_REFERENCE,
    "check_pipeline_consistency": _Y_IS_REFERENCE,
    "check_array_api_input": _Y_IS_REFERENCE,
}


@parametrize_with_checks([C2SDenoiser(**TINY)], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
