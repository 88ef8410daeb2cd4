"""Feature names and table outputs (``set_output``) for models fitted on 2-D rows."""

from __future__ import annotations

import numpy as np
from sklearn.utils._set_output import _get_output_config
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._layouts import is_rows

__all__ = ["TableOutputMixin"]


class TableOutputMixin:
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
        return _check_feature_names_in(self, input_features)

    def _check_table_output(self, X) -> None:
        """Refuse a ``set_output`` container (pandas, polars) for images: a table holds 2-D rows only."""
        container = _get_output_config("transform", self)["dense"]
        if container != "default" and (self.contrasts is not None or not is_rows(X)):
            raise ValueError(
                f"transform output {container!r} (set_output or set_config) is a table and needs 2-D input "
                "(n_samples, n_features), but X holds images or volumes; call set_output(transform='default') "
                "to denoise them"
            )
