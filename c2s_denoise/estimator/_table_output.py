"""Feature names and table outputs (``set_output``) for models fitted on 2-D rows, on scikit-learn's public API.

The output container is the one :meth:`set_output` chose for this estimator (kept through
``clone`` by ``__sklearn_clone__``), else the global ``sklearn.get_config()["transform_output"]``;
scikit-learn's ``TransformerMixin`` wraps the output of ``transform`` in it.
"""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.base import OneToOneFeatureMixin
from sklearn.utils.validation import check_is_fitted

from ._layouts import is_rows

__all__ = ["TableOutputMixin"]


class TableOutputMixin(OneToOneFeatureMixin):
    """``get_feature_names_out`` and the check that a table output (pandas, polars) gets 2-D rows."""

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns, for a model fitted on 2-D rows (one output column per input column).

        Parameters
        ----------
        input_features : array-like of str, optional
            The input's column names; default ``feature_names_in_``, else ``x0, x1, ...``.

        Returns
        -------
        ndarray of str
            The input's column names (the denoised pixels keep their places).
        """
        check_is_fitted(self)
        if not hasattr(self, "n_features_in_"):
            raise ValueError(
                "get_feature_names_out needs a model fitted on 2-D input (n_samples, n_features); this one was "
                "fitted on images, whose pixels are not named features"
            )
        return super().get_feature_names_out(input_features)

    def set_output(self, *, transform=None):
        """Set the output container of ``transform`` and ``fit_transform``: tables need 2-D rows.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"}, optional
            ``"default"``: arrays, lists and dicts as the input; ``"pandas"`` or ``"polars"``: a
            DataFrame, for models fitted on 2-D rows only; None: unchanged.

        Returns
        -------
        self : estimator instance
        """
        super().set_output(transform=transform)
        if transform is not None:
            self._transform_output = transform
        return self

    def __sklearn_clone__(self):
        """A clone keeps the output container :meth:`set_output` chose (as scikit-learn's own estimators do)."""
        clone = super().__sklearn_clone__()
        if hasattr(self, "_transform_output"):
            clone._transform_output = self._transform_output
        return clone

    def _transform_container(self) -> str:
        """The container ``transform`` returns: this estimator's :meth:`set_output`, else the global setting."""
        return getattr(self, "_transform_output", None) or sklearn.get_config()["transform_output"]

    def _check_table_output(self, X) -> None:
        """Refuse a ``set_output`` container (pandas, polars) for images: a table holds 2-D rows only."""
        container = self._transform_container()
        if container != "default" and (self.contrasts is not None or not is_rows(X)):
            raise ValueError(
                f"transform output {container!r} (set_output or set_config) is a table and needs 2-D input "
                "(n_samples, n_features), but X holds images or volumes; call set_output(transform='default') "
                "to denoise them"
            )
