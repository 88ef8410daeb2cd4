"""Pickling of :class:`~c2s_denoise.C2SDenoiser` (``joblib.dump``/``pickle``; trusted files only).

The networks travel as their saved state (configuration and weights), with the package and torch
versions; models pickled by older versions load with the behaviour they had then. The default,
code-free model file is :mod:`c2s_denoise.model_file`.
"""

from __future__ import annotations

import torch

from ._magnitude_path import LEGACY_MAGNITUDE_CORRECTION
from ._version import __version__
from .engine import network_from_state, network_state
from .model_file import version_warnings

__all__ = ["PicklingMixin"]


class PicklingMixin:
    """``__getstate__``/``__setstate__`` that store the networks as state dicts, not modules."""

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: the live estimator keeps its network
        network = state.pop("network_", None)
        if network is not None:
            state["_network_state"] = network_state(network)
        networks = state.pop("networks_", None)
        if networks is not None:
            state["_networks_state"] = {name: network_state(net) for name, net in networks.items()}
        state["_c2s_version"] = __version__
        state["_torch_version"] = torch.__version__
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        saved_version = state.pop("_c2s_version", None)
        version_warnings(saved_version, state.pop("_torch_version", None), stacklevel=3)
        saved_network = state.pop("_network_state", None)
        saved_networks = state.pop("_networks_state", None)
        if saved_version is None or "noise_model" not in state:  # saved before noise models: Gaussian, as then
            state.setdefault("noise_model", "gaussian")
            state.setdefault("n_coils", 1)
            if "n_iter_" in state:
                state.setdefault("noise_model_", "gaussian")
                state.setdefault("complex_input_", False)
        state.setdefault("air_weight", 1.0)  # saved before air was down-weighted: patches were uniform
        if "magnitude_correction" not in state:  # saved before the stabilised path: the mean was inverted
            state["magnitude_correction"] = LEGACY_MAGNITUDE_CORRECTION
            state["floor_shrinkage"] = 0.0  # only the "vst" path uses it
            if "n_iter_" in state:
                state.setdefault("magnitude_correction_", LEGACY_MAGNITUDE_CORRECTION)
        state.setdefault("warm_start", False)
        state.setdefault("max_time", None)
        super().__setstate__(state)
        if saved_network is not None:
            self.network_ = network_from_state(saved_network)
        if saved_networks is not None:
            self.networks_ = {name: network_from_state(saved) for name, saved in saved_networks.items()}
