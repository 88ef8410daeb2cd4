"""The machinery behind :class:`~c2s_denoise.estimator.C2SDenoiser`: the numpy-torch boundary.

:class:`C2SBase` holds the private steps of ``fit`` (``fit -> _fit -> _train_networks ->
_train_network``, then ``_store_fit``; ``_warm_networks`` and ``_continue_fit`` for
``warm_start``), of ``transform`` (``_denoise_items``), of the self-supervised score
(``_sure_psnrs``); pickling is in :mod:`c2s_denoise._pickling`, feature names in
:mod:`c2s_denoise._table_output`; :class:`~c2s_denoise.estimator.C2SDenoiser`
adds the parameters and the public methods, as scikit-learn's ``BaseMultilayerPerceptron`` and
``MLPRegressor`` do.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from ._channels import as_parts, min_depth, network_inputs, resolve_context_slices
from ._inputs import (
    Layout,
    check_contrast_names,
    check_fitted_contrasts,
    check_kind,
    check_min_depth,
    item_scales,
    join_contrast_items,
    join_volumes,
    split_contrast_items,
    split_volumes,
)
from ._lazy_inputs import is_lazy, lazy_network_inputs, lazy_statistics, lazy_volumes, volume_depth
from ._magnitude_path import LEGACY_MAGNITUDE_CORRECTION, air_factor, from_network, to_network
from ._noise_levels import MIN_RELATIVE_SIGMA, effective_coils, noise_levels, warn_if_correlated
from ._pickling import PicklingMixin
from ._table_output import TableOutputMixin
from ._volumes import check_volumes, resolve_spatial_dims, slices_to_volumes, volumes_to_slices
from .engine import (
    LOSS_WEIGHTINGS,
    GDSMLoss,
    NoiseConditionedUNet,
    NoiseSchedule,
    TrainingConfig,
    TrainingResult,
    denoise_images,
    resolve_device,
    resolve_training_dtype,
    train_gdsm,
)
from .engine.distributed import rank_seed, ranks_agree
from .metrics import data_range, psnr, sure_psnr
from .noise import resolve_noise_model

__all__ = ["C2SBase"]

#: Items ``(n_contrasts, D, H, W)``, one per image/volume (complex ones as parts in the networks' steps).
Items = list[np.ndarray]
#: The contrast names, None without named contrasts.
Names = tuple[str, ...] | None


def _warn(message: str) -> None:
    """A UserWarning about training, shown at the caller of ``fit`` (from ``_train_networks``)."""
    warnings.warn(message, UserWarning, stacklevel=5)


class C2SBase(TableOutputMixin, PicklingMixin, TransformerMixin, BaseEstimator):
    """Private steps of :class:`~c2s_denoise.estimator.C2SDenoiser` (not for direct use)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        return tags

    def _validate_params(self) -> None:
        """scikit-learn's parameter validation, and each value of a per-contrast ``sigma`` dict like ``sigma``."""
        super()._validate_params()
        if isinstance(self.sigma, dict):
            value_constraints = [c for c in self._parameter_constraints["sigma"] if c is not dict]
            for name, value in self.sigma.items():
                key = f"sigma[{name!r}]"
                validate_parameter_constraints({key: value_constraints}, {key: value}, type(self).__name__)

    # ------------------------------------------------------------------ input handling
    def _contrast_names(self) -> tuple[str, ...] | None:
        """Validated ``contrasts`` (None for single-contrast input)."""
        return check_contrast_names(self.contrasts, self.target_contrasts, self.sigma)

    def _split(
        self, X, names: tuple[str, ...] | None, *, reset: bool, context_slices: int | str
    ) -> tuple[list[np.ndarray], Layout]:
        """Items ``(n_contrasts, D, H, W)`` (``n_contrasts = 1`` without contrasts) and the layout.

        ``context_slices``: the neighbouring slices the network takes, whose volume depth is
        checked (``"auto"`` is resolved later from the items and needs no check).
        """
        if names is not None:
            items, layout = split_contrast_items(X, names)
        else:

            def validate_rows(rows):
                return validate_data(self, rows, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=True)

            volumes, layout = split_volumes(X, self.image_shape, validate_rows)
            items = [volume[None] for volume in volumes]
        if context_slices != "auto":
            check_min_depth(items, min_depth(int(context_slices)), int(context_slices))
        return items, layout

    def _read_fitted(self, X) -> tuple[list[np.ndarray], Layout, tuple[str, ...] | None, np.ndarray, np.ndarray]:
        """``X`` for a fitted model: items, layout, contrast names, noise levels and intensity scales."""
        check_is_fitted(self)
        names = check_fitted_contrasts(self._contrast_names(), getattr(self, "contrasts_", None))
        items, layout = self._split(X, names, reset=False, context_slices=self._fitted_context())
        if self._fitted_dims() == 3:
            check_volumes(items, self._fitted_networks_depth())
        check_kind(items, self._fitted_complex())
        sigmas, _ = self._noise_levels(items, names)
        return items, layout, names, sigmas, item_scales(items)

    @staticmethod
    def _join(items: list[np.ndarray], layout: Layout, names: tuple[str, ...] | None):
        if names is None:
            return join_volumes([item[0] for item in items], layout)
        return join_contrast_items(items, layout, names)

    @property
    def spatial_dims_(self) -> int:
        """Spatial dimensions of the fitted networks: 2 (slice by slice) or 3 (volumes)."""
        check_is_fitted(self)
        return self._fitted_dims()

    def _fitted_dims(self) -> int:
        """Spatial dimensions of the fitted networks (2 for models saved before 3-D networks existed)."""
        return next(iter(self._fitted_networks().values())).config.get("spatial_dims", 2)

    def _fitted_context(self) -> int:
        """Neighbouring slices each side that the fitted networks take (``context_slices`` for models
        saved before ``context_slices_`` existed, when it was always a number)."""
        fitted = getattr(self, "context_slices_", None)
        return int(self.context_slices) if fitted is None else int(fitted)

    def _resolve_context(self, depths: list[int], dims: int) -> int:
        """``context_slices`` for this fit: a warm start keeps the fitted one; ``"auto"`` is
        :func:`~c2s_denoise._channels.resolve_context_slices`."""
        if self._continues_a_fit():
            fitted = self._fitted_context()
            if self.context_slices not in ("auto", fitted):
                raise ValueError(
                    f"warm_start: the model was fitted with context_slices={fitted}, this fit asks for "
                    f"context_slices={self.context_slices}"
                )
            return fitted
        return resolve_context_slices(self.context_slices, dims, depths)

    def _continues_a_fit(self) -> bool:
        """Whether this fit starts from the fitted model (``warm_start`` and a model already fitted)."""
        return bool(getattr(self, "warm_start", False)) and hasattr(self, "n_iter_")

    def _fitted_correction(self) -> str:
        """How magnitude noise is handled (``magnitude_correction_``; the first-moment inversion for models
        saved before it existed)."""
        return getattr(self, "magnitude_correction_", LEGACY_MAGNITUDE_CORRECTION)

    def _fitted_coils(self) -> float:
        """Coils behind the magnitude images: ``n_coils_`` (``n_coils`` for models saved before it existed)."""
        fitted = getattr(self, "n_coils_", None)
        return float(self.n_coils) if fitted is None else float(fitted)

    def _resolve_coils(self, volumes: list, pool: bool = True) -> float:
        """``n_coils`` for this fit: a number as given; ``"auto"`` fitted to the air of the magnitude volumes
        (:func:`~c2s_denoise._noise_levels.effective_coils`); a warm start keeps the fitted number."""
        if self._continues_a_fit():
            return self._fitted_coils()
        if self.n_coils == "auto":
            return 1.0 if self.noise_model == "gaussian" else effective_coils(volumes, pool=pool)
        return float(self.n_coils)

    def _resolve_correction(self) -> str:
        """``magnitude_correction`` for this fit: a warm start must keep the fitted one."""
        if self._continues_a_fit():
            fitted = self._fitted_correction()
            if self.magnitude_correction != fitted:
                raise ValueError(
                    f"warm_start: the model was fitted with magnitude_correction={fitted!r}, this fit asks for "
                    f"magnitude_correction={self.magnitude_correction!r}"
                )
        return self.magnitude_correction

    def _fitted_networks_depth(self) -> int:
        return next(iter(self._fitted_networks().values())).config["depth"]

    def _fitted_complex(self) -> bool:
        return bool(getattr(self, "complex_input_", False))

    def _noise_levels(self, items: list[np.ndarray], names: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        """Noise level of each item and contrast ``(n_items, n_contrasts)`` in input units, and how it was obtained."""
        noise_model = getattr(self, "noise_model_", None)
        return noise_levels(
            items, names, self.sigma, noise_model, noise_model_rule=self.noise_model, n_coils=self._fitted_coils()
        )

    # ------------------------------------------------------------------ networks
    def _network_inputs(
        self, parts: Items, sigmas: np.ndarray, scales: np.ndarray, contrast: int, is_complex: bool, dims: int = 2
    ) -> tuple[list[torch.Tensor], torch.Tensor, int]:
        """Input tensors ``(n_channels, H, W)`` of every slice (``dims=3``: ``(n_channels, D, H, W)`` of every
        item), the contrast's normalised noise levels, ``n_channels``.

        Lazily read volumes give a :class:`~c2s_denoise._lazy_inputs.LazySlice` per slice instead.
        """
        noise_model = getattr(self, "noise_model_", "gaussian")  # models saved before noise models existed
        correction, n_coils = self._fitted_correction(), self._fitted_coils()
        if parts and is_lazy(parts[0]):
            lazy, levels, n_channels = lazy_network_inputs(
                parts,
                sigmas,
                scales,
                is_complex,
                self._fitted_context(),
                MIN_RELATIVE_SIGMA,
                to_network=lambda window, sigma: to_network([window], sigma, noise_model, n_coils, correction)[0],
            )
            return lazy, torch.tensor(levels, dtype=torch.float32), n_channels
        inputs, levels, n_channels = network_inputs(
            to_network(parts, sigmas, noise_model, n_coils, correction),
            sigmas,
            scales,
            contrast,
            self._fitted_context(),
            is_complex=is_complex,
            min_relative_sigma=MIN_RELATIVE_SIGMA,
        )
        tensors, levels = [torch.from_numpy(array) for array in inputs], torch.tensor(levels, dtype=torch.float32)
        if dims == 3:
            tensors, levels = slices_to_volumes(tensors, levels, [part.shape[1] for part in parts])
        return tensors, levels, n_channels

    def _fitted_networks(self) -> dict[int, torch.nn.Module]:
        """Network of each denoised contrast, by contrast index."""
        if getattr(self, "contrasts_", None) is None:
            return {0: self.network_}
        return {self.contrasts_.index(name): network for name, network in self.networks_.items()}

    def _fit(self, X) -> C2SBase:
        """Read ``X``, measure its noise, train one network per denoised contrast, store the fitted attributes."""
        names = self._contrast_names()
        for attribute in ("n_features_in_", "feature_names_in_"):  # set again by 2-D rows only
            self.__dict__.pop(attribute, None)
        with ranks_agree("checking X and measuring its noise"):  # distributed: every rank stops if one fails
            self.magnitude_correction_ = self._resolve_correction()
            volumes = lazy_volumes(X) if names is None else None
            if volumes is not None:  # read on demand: statistics one volume at a time, patches as drawn
                if getattr(self, "spatial_dims", 2) == 3:
                    raise ValueError(
                        "spatial_dims=3 trains on volumes held in memory; lazily readable volumes "
                        "(h5py datasets, memory maps) are trained slice by slice: pass arrays, or spatial_dims=2"
                    )
                dims = 2
                self.context_slices_ = self._resolve_context([volume_depth(volume) for volume in volumes], dims)
                self.n_coils_ = self._resolve_coils(volumes, pool=False)
                stats = lazy_statistics(volumes, self.sigma, self.noise_model, self.n_coils_, self.context_slices_)
                parts, is_complex, self.noise_model_ = volumes, stats.is_complex, stats.noise_model
                sigmas, methods, scales = stats.sigmas, stats.methods, stats.scales
                part_sigmas, part_scales = sigmas, scales
            else:
                items, _ = self._split(X, names, reset=True, context_slices=self.context_slices)
                dims = resolve_spatial_dims(getattr(self, "spatial_dims", 2), items, self.context_slices)
                self.context_slices_ = self._resolve_context([item.shape[1] for item in items], dims)
                if dims == 3:
                    check_volumes(items, self.depth)
                is_complex = check_kind(items, None)
                self.n_coils_ = self._resolve_coils([item[c] for item in items for c in range(item.shape[0])])
                self.noise_model_ = resolve_noise_model(items, self.noise_model, n_coils=self.n_coils_)
                sigmas, methods = self._noise_levels(items, names)
                warn_if_correlated(items, sigmas, self.noise_model_, self.n_coils_)
                scales = item_scales(items)
                parts, part_sigmas, part_scales = as_parts(items, sigmas, scales, is_complex)
            denoised_contrasts = self._denoised_contrasts(names)
            start = self._warm_networks(names, is_complex, denoised_contrasts)
            history = (self.n_iter_, list(self.loss_curve_), self.fit_time_) if start else None
        results = self._train_networks(
            parts, part_sigmas, part_scales, denoised_contrasts, names, is_complex, start, dims
        )
        self._store_fit(results, names, sigmas, scales, methods, is_complex)
        if history is not None:
            self._continue_fit(start, history, names)
        return self

    def _warm_networks(
        self, names: Names, is_complex: bool, denoised_contrasts: list[int]
    ) -> dict[int, torch.nn.Module]:
        """With ``warm_start`` and a fitted model: its network of each denoised contrast, checked to fit ``X``."""
        if not self._continues_a_fit():
            return {}
        fitted_names = getattr(self, "contrasts_", None)
        if (None if fitted_names is None else tuple(fitted_names)) != names:
            raise ValueError(
                f"warm_start: the model was fitted with contrasts {fitted_names}, this fit has contrasts {names}"
            )
        if self._fitted_complex() != is_complex:
            kinds = ("real", "complex")
            raise ValueError(
                f"warm_start: the model was fitted on {kinds[self._fitted_complex()]} images, X is {kinds[is_complex]}"
            )
        networks = self._fitted_networks()
        if sorted(networks) != denoised_contrasts:
            fitted_targets = [names[c] for c in networks] if names else []
            wanted = [names[c] for c in denoised_contrasts] if names else []
            raise ValueError(f"warm_start: the model denoises contrasts {fitted_targets}, this fit asks for {wanted}")
        return networks

    def _continue_fit(self, start: dict[int, torch.nn.Module], history: tuple, names: Names) -> None:
        """After a warm start: add up steps, losses and time; keep the networks an interrupted fit did not reach."""
        n_iter, loss_curve, fit_time = history
        self.n_iter_ += n_iter
        self.loss_curve_ = loss_curve + self.loss_curve_
        self.fit_time_ += fit_time
        if names is not None:
            trained = self.networks_
            self.networks_ = {names[c]: trained.get(names[c], network) for c, network in sorted(start.items())}
            self.target_contrasts_ = tuple(self.networks_)

    def _denoised_contrasts(self, names: tuple[str, ...] | None) -> list[int]:
        """Indices of the contrasts that get a network (``target_contrasts``, or all)."""
        if names is None:
            return [0]
        wanted = names if self.target_contrasts is None else tuple(self.target_contrasts)
        return [index for index, name in enumerate(names) if name in wanted]

    def _training_config(self, device: torch.device) -> TrainingConfig:
        return TrainingConfig(
            max_iter=self.max_iter,
            max_time=None if self.max_time is None else float(self.max_time),
            batch_size=self.batch_size,
            patch_size=self.patch_size,
            learning_rate=self.learning_rate,
            ema_decay=self.ema_decay,
            refinement=float(self.refinement),
            air_weight=float(self.air_weight),
            compute_dtype=resolve_training_dtype(self.precision, device),
            patch_depth=getattr(self, "patch_depth", 16),
        )

    def _train_networks(
        self,
        parts: Items,
        sigmas: np.ndarray,
        scales: np.ndarray,
        denoised_contrasts: list[int],
        names: Names,
        is_complex: bool,
        start: dict[int, torch.nn.Module] | None = None,
        dims: int = 2,
    ) -> dict[int, TrainingResult]:
        """Train the network of each denoised contrast in turn (the rest are skipped once a fit is interrupted).

        ``start``: networks whose weights training starts from (``warm_start``), by contrast index;
        ``dims``: 2 (slice by slice) or 3 (volumes).
        """
        random_state = check_random_state(self.random_state)
        results: dict[int, TrainingResult] = {}
        for contrast in denoised_contrasts:
            seed = int(random_state.randint(np.iinfo(np.int32).max))
            initial = (start or {}).get(contrast)
            result = results[contrast] = self._train_network(
                parts, sigmas, scales, contrast, is_complex, seed, initial, dims
            )
            of_contrast = f" for contrast {names[contrast]!r}" if names else ""
            if result.rollbacks:
                _warn(
                    f"training diverged {result.rollbacks} time(s){of_contrast}; each time the last healthy weights "
                    "were restored and the learning rate halved (a lower learning_rate avoids this)"
                )
            if result.skipped_steps:
                _warn(
                    f"{result.skipped_steps} training step(s){of_contrast} had a non-finite gradient with a finite "
                    "loss and were skipped (seen with bfloat16 arithmetic; precision='float32' avoids it)"
                )
            if result.interrupted:
                left = [names[c] for c in denoised_contrasts if c not in results] if names else []
                warnings.warn(
                    f"fit interrupted after {result.n_iter} of {self.max_iter} steps; keeping the averaged (EMA) "
                    "weights reached so far"
                    + (f"; contrasts {left} were not trained and are returned unchanged" if left else ""),
                    UserWarning,
                    stacklevel=4,
                )
                break
        return results

    def _train_network(
        self,
        parts: Items,
        sigmas: np.ndarray,
        scales: np.ndarray,
        contrast: int,
        is_complex: bool,
        seed: int,
        initial: torch.nn.Module | None = None,
        dims: int = 2,
    ) -> TrainingResult:
        """Build the network of one contrast (weights seeded by ``seed``, or those of ``initial``), train it with GDSM."""
        inputs, levels, n_channels = self._network_inputs(parts, sigmas, scales, contrast, is_complex, dims)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = NoiseConditionedUNet(
                in_channels=n_channels,
                out_channels=2 if is_complex else 1,
                width=self.width,
                depth=self.depth,
                attention=self.attention,
                noise_conditioning=self.noise_conditioning,
                spatial_dims=dims,
                separable=dims == 3 and getattr(self, "conv3d", "full") == "separable",
            )
        if initial is not None:
            if initial.config != network.config:
                raise ValueError(
                    f"warm_start: the fitted network {initial.config} does not match the one these parameters "
                    f"and X build {network.config}"
                )
            network.load_state_dict(initial.state_dict())
        device = resolve_device(self.device)
        return train_gdsm(
            network,
            inputs,
            levels,
            config=self._training_config(device),
            schedule=NoiseSchedule(self.noise_schedule, self.tau_max),
            loss_fn=GDSMLoss(alpha=self.loss_alpha, lambda_out_power=LOSS_WEIGHTINGS[self.loss_weighting]),
            generator=torch.Generator().manual_seed(rank_seed(seed)),  # its own patches on each rank
            device=device,
            verbose=self.verbose,
            air_rms=levels * air_factor(self.noise_model_, self._fitted_coils(), self._fitted_correction()),
        )

    def _store_fit(
        self,
        results: dict[int, TrainingResult],
        names: Names,
        sigmas: np.ndarray,
        scales: np.ndarray,
        methods: np.ndarray,
        is_complex: bool,
    ) -> None:
        """Set the fitted attributes from the training results."""
        if names is None:
            self.network_ = results[0].network
            self.sigma_, self.scales_, self.sigma_methods_ = sigmas[:, 0], scales[:, 0], methods[:, 0]
        else:
            self.networks_ = {names[contrast]: result.network for contrast, result in results.items()}
            self.contrasts_ = names
            self.target_contrasts_ = tuple(self.networks_)
            self.sigma_, self.scales_, self.sigma_methods_ = sigmas, scales, methods
        self.complex_input_ = is_complex
        self.interrupted_ = any(result.interrupted for result in results.values())
        self.n_iter_ = sum(result.n_iter for result in results.values())
        self.loss_curve_ = [value for result in results.values() for value in result.loss_curve]
        self.fit_time_ = sum((result.seconds for result in results.values()), 0.0)
        self.device_ = str(resolve_device(self.device))
        self.training_dtype_ = str(self._training_config(resolve_device(self.device)).compute_dtype).removeprefix(
            "torch."
        )

    # ------------------------------------------------------------------ transform
    def _denoise_items(
        self, items: Items, sigmas: np.ndarray, scales: np.ndarray, contrasts: list[int] | None = None
    ) -> Items:
        """Denoised copies of ``items`` (float64 or complex128, input units); contrasts without a network are copied.

        Complex items are denoised as (real, imaginary) channels; magnitude items get their
        noise bias removed (``noise_model_`` "rician"/"ncchi"). ``contrasts`` limits the
        denoising to those contrast indices.
        """
        is_complex = self._fitted_complex()
        parts, part_sigmas, part_scales = as_parts(items, sigmas, scales, is_complex)
        outputs = [item.astype(np.float64, copy=True) for item in parts]
        n_denoised_channels = 2 if is_complex else 1
        noise_model = getattr(self, "noise_model_", "gaussian")  # models saved before noise models existed
        for contrast, network in self._fitted_networks().items():
            if contrasts is not None and contrast not in contrasts:
                continue
            dims = network.config.get("spatial_dims", 2)
            inputs, levels, _ = self._network_inputs(parts, part_sigmas, part_scales, contrast, is_complex, dims)
            denoised = denoise_images(
                network,
                inputs,
                levels,
                device=resolve_device(self.device),
                batch_size=self.inference_batch_size,
                self_ensemble=self.self_ensemble,
            )
            if dims == 3:
                denoised = volumes_to_slices(denoised)
            position = 0
            for output, scale, sigma in zip(outputs, part_scales, part_sigmas):
                depth = output.shape[1]
                stack = torch.stack(denoised[position : position + depth], dim=1).numpy()  # (channels, D, H, W)
                channels = slice(contrast, contrast + n_denoised_channels)
                output[channels] = stack * scale[channels, None, None, None]
                output[contrast] = from_network(
                    output[contrast],
                    float(sigma[contrast]),
                    noise_model,
                    self._fitted_coils(),
                    self._fitted_correction(),
                    float(getattr(self, "floor_shrinkage", 0.0)),
                )
                position += depth
        if is_complex:
            return [(output[0] + 1j * output[1])[None] for output in outputs]
        return outputs

    def _read_references(self, y, items: list[np.ndarray], names: tuple[str, ...] | None) -> list[np.ndarray]:
        """Clean references ``y`` as items like ``items`` (same layout and shapes, or a ValueError)."""
        if names is None:
            references = [volume[None] for volume in split_volumes(y, self.image_shape, np.asarray)[0]]
        else:
            references = split_contrast_items(y, names)[0]
        if [r.shape for r in references] != [i.shape for i in items]:
            raise ValueError("y must have the same layout and shapes as X")
        return references

    def _reference_psnrs(self, X, y) -> list[float]:
        """PSNR of each denoised item (and target contrast) of ``X`` against the clean ``y``, with ``y``'s range."""
        items, _, names, sigmas, scales = self._read_fitted(X)
        denoised = self._denoise_items(items, sigmas, scales)
        references = self._read_references(y, items, names)
        return [
            psnr(output[c], reference[c], range_=data_range(np.abs(reference[c])) or 1.0)
            for reference, output in zip(references, denoised)
            for c in self._fitted_networks()
        ]

    def _sure_psnrs(
        self, items: Items, denoised: Items, sigmas: np.ndarray, scales: np.ndarray, contrasts: list[int]
    ) -> list[float]:
        """:func:`~c2s_denoise.metrics.sure_psnr` of each item and denoised contrast."""
        probe_rng = np.random.default_rng(0)
        scores = []
        for item, output, sigma_row, scale_row in zip(items, denoised, sigmas, scales):
            for contrast in contrasts:
                sigma = max(float(sigma_row[contrast]), MIN_RELATIVE_SIGMA * scale_row[contrast])
                denoise = functools.partial(self._denoise_channel, item, sigma_row, scale_row, contrast)
                scores.append(
                    sure_psnr(item[contrast], output[contrast], sigma, scale_row[contrast], denoise, probe_rng)
                )
        return scores

    def _denoise_channel(
        self, item: np.ndarray, sigma_row: np.ndarray, scale_row: np.ndarray, contrast: int, channel: np.ndarray
    ) -> np.ndarray:
        """The denoised ``contrast`` of ``item`` with that contrast replaced by ``channel``."""
        replaced = item.astype(channel.dtype, copy=True)
        replaced[contrast] = channel
        return self._denoise_items([replaced], sigma_row[None], scale_row[None], [contrast])[0][contrast]
