"""Reading ``X`` for the networks: contrasts, layouts, noise levels, network inputs, the fitted networks.

Part of :class:`~c2s_denoise.estimator.C2SDenoiser` (a mixin of its private steps, as
scikit-learn's ``BaseMultilayerPerceptron`` is of ``MLPRegressor``); every fitted attribute it
reads exists, old models included (:mod:`c2s_denoise.estimator.legacy`).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data

from ..engine import NoiseConditionedUNet
from ..physics.noise import resolve_noise_model
from ._channels import network_inputs
from ._layouts import (
    Layout,
    check_fitted_contrasts,
    check_kind,
    check_min_depth,
    item_scales,
    join_contrast_items,
    join_volumes,
    split_contrast_items,
    split_volumes,
)
from ._lazy_layouts import is_lazy, lazy_network_inputs
from ._magnitude_path import to_network
from ._noise_levels import MIN_RELATIVE_SIGMA, coils, noise_levels, resolve_coils
from ._noise_maps import NoiseMaps, check_map_support, is_map_rule, noise_maps
from ._volumes import check_volumes, slices_to_volumes
from .rules import check_contrast_names

__all__ = ["Items", "Names", "ReadingMixin"]

#: Items ``(n_contrasts, D, H, W)``, one per image/volume (complex ones as parts in the networks' steps).
Items = list[np.ndarray]
#: The contrast names, None without named contrasts.
Names = tuple[str, ...] | None


class ReadingMixin:
    """How ``X`` reaches the networks, and the fitted networks by contrast index."""

    def __sklearn_tags__(self):
        """What ``X`` may be: 3-D arrays (images), no NaN, float64/float32 kept; no ``y``."""
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        return tags

    @property
    def network_(self) -> NoiseConditionedUNet:
        """The network of a model with one network: the only entry of ``networks_``."""
        check_is_fitted(self)
        if len(self.networks_) != 1:
            raise AttributeError(
                f"this model has {len(self.networks_)} networks, one per target contrast: use networks_"
            )
        return next(iter(self.networks_.values()))

    @property
    def spatial_dims_(self) -> int:
        """Spatial dimensions of the fitted networks: 2 (slice by slice) or 3 (volumes)."""
        check_is_fitted(self)
        return self._fitted_dims()

    def _fitted_dims(self) -> int:
        """Spatial dimensions of the fitted networks (2 for models saved before 3-D networks existed)."""
        return next(iter(self.networks_.values())).spatial_dims

    def _fitted_networks_depth(self) -> int:
        return next(iter(self.networks_.values())).depth

    def _fitted_networks(self) -> dict[int, torch.nn.Module]:
        """Network of each denoised contrast, by contrast index."""
        return {
            (0 if name is None else self.contrasts_.index(name)): network for name, network in self.networks_.items()
        }

    def _contrast_names(self) -> tuple[str, ...] | None:
        """Validated ``contrasts`` (None for single-contrast input)."""
        return check_contrast_names(self.contrasts, self.target_contrasts, self.sigma)

    def _split(
        self, X, names: tuple[str, ...] | None, *, reset: bool, context_slices: int | str | None
    ) -> tuple[list[np.ndarray], Layout]:
        """Items ``(n_contrasts, D, H, W)`` (``n_contrasts = 1`` without contrasts) and the layout.

        ``context_slices``: the neighbouring slices the network takes, whose volume depth is
        checked for training (``"auto"`` is resolved later from the items and needs no check); None
        for a fitted model, which takes volumes of any depth (:mod:`._channels`).
        """
        if names is not None:
            items, layout = split_contrast_items(X, names)
        else:

            def validate_rows(rows):
                return validate_data(self, rows, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=True)

            volumes, layout = split_volumes(X, self.image_shape, validate_rows)
            items = [volume[None] for volume in volumes]
        if context_slices is not None:
            check_min_depth([item.shape[1] for item in items], context_slices)
        return items, layout

    def _read_fitted(
        self, X
    ) -> tuple[list[np.ndarray], Layout, tuple[str, ...] | None, np.ndarray, np.ndarray, NoiseMaps | None]:
        """``X`` for a fitted model: items, layout, contrast names, noise levels, intensity scales and noise maps.

        With noise maps (``sigma`` as arrays or ``"local"``) the items come flattened to one noise level
        each (:class:`~c2s_denoise.estimator._noise_maps.NoiseMaps`), and the maps are returned to restore
        the outputs; otherwise the maps are None.
        """
        check_is_fitted(self)
        names = check_fitted_contrasts(self._contrast_names(), self.contrasts_)
        items, layout = self._split(X, names, reset=False, context_slices=None)  # thin volumes too
        if self._fitted_dims() == 3:
            check_volumes(items, self._fitted_networks_depth())
        check_kind(items, self.complex_input_)
        maps = self._noise_maps(items, names, fitted=True)
        if maps is not None:  # white noise of one level per item; the outputs are multiplied back (maps.restore)
            items = maps.flatten(items)
        sigmas, _ = self._noise_levels(items, names, maps)
        return items, layout, names, sigmas, item_scales(items), maps

    @staticmethod
    def _join(items: list[np.ndarray], layout: Layout, names: tuple[str, ...] | None):
        if names is None:
            return join_volumes([item[0] for item in items], layout)
        return join_contrast_items(items, layout, names)

    def _noise_maps(self, items: list[np.ndarray], names: Names, fitted: bool = False) -> NoiseMaps | None:
        """The items' noise maps when ``sigma`` gives maps (arrays or ``"local"``), else None.

        ``"local"`` estimates them under the fitted noise model (``fitted``), or, while fitting, the one
        ``noise_model`` and ``n_coils`` give the raw items.
        """
        if not is_map_rule(self.sigma):
            return None
        check_map_support(names, lazy=False)
        if fitted:
            noise_model, n_coils = self.noise_model_, self.n_coils_
        else:
            n_coils = resolve_coils(self.n_coils, self.noise_model, [item[0] for item in items])
            noise_model = resolve_noise_model(items, self.noise_model, n_coils=n_coils)
        return noise_maps(
            self.sigma,
            items,
            image_shape=self.image_shape,
            noise_model=noise_model,
            n_coils=coils(noise_model, n_coils),
        )

    def _noise_levels(
        self, items: list[np.ndarray], names: tuple[str, ...] | None, maps: NoiseMaps | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Noise level of each item and contrast ``(n_items, n_contrasts)`` in input units, and how it was obtained.

        With noise ``maps`` the items are flattened ones and their level is the maps' reference level.
        """
        if maps is not None:
            return maps.levels[:, None].copy(), np.full((len(items), 1), maps.method)
        noise_model = getattr(self, "noise_model_", None)
        return noise_levels(
            items, names, self.sigma, noise_model, noise_model_rule=self.noise_model, n_coils=self.n_coils_
        )

    def _network_inputs(
        self, parts: Items, sigmas: np.ndarray, scales: np.ndarray, contrast: int, is_complex: bool, dims: int = 2
    ) -> tuple[list[torch.Tensor], torch.Tensor, int]:
        """Input tensors ``(n_channels, H, W)`` of every slice (``dims=3``: ``(n_channels, D, H, W)`` of every
        item), the contrast's normalised noise levels, ``n_channels``.

        Lazily read volumes give a :class:`~c2s_denoise.estimator._lazy_layouts.LazySlice` per slice instead.
        """
        if parts and is_lazy(parts[0]):
            lazy, levels, n_channels = lazy_network_inputs(
                parts,
                sigmas,
                scales,
                is_complex,
                self.context_slices_,
                MIN_RELATIVE_SIGMA,
                to_network=lambda window, sigma: self._stabilised([window], sigma)[0],
                demodulate=bool(getattr(self, "phase_demodulated_", False)),
            )
            return lazy, torch.tensor(levels, dtype=torch.float32), n_channels
        return self._slice_inputs(self._stabilised(parts, sigmas), sigmas, scales, contrast, is_complex, dims)

    def _stabilised(self, parts: Items, sigmas: np.ndarray) -> Items:
        """``parts`` as the network sees them (:func:`~._magnitude_path.to_network`); new arrays, or ``parts``."""
        return to_network(parts, sigmas, self.noise_model_, self.n_coils_, self.magnitude_correction_)

    def _slice_inputs(
        self, parts: Items, sigmas: np.ndarray, scales: np.ndarray, contrast: int, is_complex: bool, dims: int = 2
    ) -> tuple[list[torch.Tensor], torch.Tensor, int]:
        """:meth:`_network_inputs` of parts already in the network's domain (:meth:`_stabilised`), held in memory."""
        inputs, levels, n_channels = network_inputs(
            parts,
            sigmas,
            scales,
            contrast,
            self.context_slices_,
            is_complex=is_complex,
            min_relative_sigma=MIN_RELATIVE_SIGMA,
        )
        tensors, levels = [torch.from_numpy(array) for array in inputs], torch.tensor(levels, dtype=torch.float32)
        if dims == 3:
            tensors, levels = slices_to_volumes(tensors, levels, [part.shape[1] for part in parts])
        return tensors, levels, n_channels
