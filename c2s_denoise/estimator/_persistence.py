"""Persistence of :class:`~c2s_denoise.C2SDenoiser`: ``save``/``load`` and pickling.

``save`` and ``load`` write and read the code-free model file
(:mod:`c2s_denoise.estimator.model_file`, the default). Pickles (``joblib.dump``/``pickle``;
trusted files only): the networks travel as their saved state (configuration and weights), with the package and torch
versions; models pickled by older versions are brought up to date by
:mod:`c2s_denoise.estimator.legacy` and load with the behaviour they had then.
"""

from __future__ import annotations

import torch

from .._version import __version__
from ..engine import network_from_state, network_state
from .legacy import upgrade_fitted, upgrade_params, upgrade_pickled_networks, version_warnings
from .model_file import load_model_file, save_model_file

__all__ = ["PersistenceMixin"]


class PersistenceMixin:
    """``save``/``load``, and ``__getstate__``/``__setstate__`` that store the networks as state dicts, not modules."""

    def save(self, path, *, overwrite: bool = True):
        """Save the fitted model as one safetensors file (no pickle; see :mod:`c2s_denoise.estimator.model_file`).

        Parameters
        ----------
        path : str or path-like
            Where to write it (atomically), ``.c2s`` by convention.
        overwrite : bool, default=True
            Replace an existing file.

        Returns
        -------
        pathlib.Path
        """
        return save_model_file(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`; nothing in the file is executed.

        Parameters
        ----------
        path : str or path-like
            The model file.

        Returns
        -------
        C2SDenoiser
            The fitted model; it transforms bitwise like the saved one.

        Raises
        ------
        c2s_denoise.io.C2SInputError
            (a ValueError naming the file) for a missing, foreign, corrupt or invalid file.
        """
        return load_model_file(path, cls)

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: the live estimator keeps its networks
        networks = state.pop("networks_", None)
        if networks is not None:
            state["_networks_state"] = {name: network_state(net) for name, net in networks.items()}
        state["_c2s_version"] = __version__
        state["_torch_version"] = torch.__version__
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        version_warnings(state.pop("_c2s_version", None), state.pop("_torch_version", None), stacklevel=3)
        saved_networks = upgrade_pickled_networks(state)
        upgrade_params(state)
        super().__setstate__(state)
        if saved_networks is not None:
            self.networks_ = {name: network_from_state(saved) for name, saved in saved_networks.items()}
            upgrade_fitted(self)
