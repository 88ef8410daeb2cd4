"""What ``fit`` does: read ``X``, measure its noise, train one network per denoised contrast, store the result.

``fit -> _fit -> _train_networks -> _train_network``, then ``_store_fit``; ``_warm_networks`` and
``_continue_fit`` for ``warm_start``. Part of :class:`~c2s_denoise.estimator.C2SDenoiser`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_random_state

from ..engine import (
    LOSS_WEIGHTINGS,
    GDSMLoss,
    NoiseConditionedUNet,
    NoiseSchedule,
    TrainingConfig,
    TrainingResult,
    resolve_device,
    resolve_training_dtype,
    train_gdsm,
)
from ..engine.distributed import rank_seed, ranks_agree
from ..engine.patches import patch_shape
from ..engine.prior import (
    FROM_RANDOM_WEIGHTS,
    FROM_TRAINED_WEIGHTS,
    initialise_from_prior,
    prior_steps,
    takes_prior,
)
from ..physics.noise import resolve_noise_model
from ._channels import as_parts, demodulated, resolve_context_slices
from ._layouts import check_kind, item_scales
from ._lazy_layouts import lazy_statistics, lazy_volumes, volume_depth
from ._magnitude_path import air_factor
from ._noise_levels import resolve_coils, warn_if_correlated, warn_if_noise_varies
from ._noise_maps import check_map_support, is_map_rule
from ._reading import Items, Names
from ._volumes import check_volumes, resolve_spatial_dims
from .rules import kind_mismatch

__all__ = ["AUTO_STEPS", "FittingMixin"]

#: Steps of a fit with ``max_iter="auto"`` from random weights, and the most from trained ones.
AUTO_STEPS = 8000


def _warn(message: str) -> None:
    """A UserWarning about training, shown at the caller of ``fit`` (from ``_train_networks``)."""
    warnings.warn(message, UserWarning, stacklevel=5)


class FittingMixin:
    """The private steps of ``fit``."""

    def _fit(self, X):
        """Read ``X``, measure its noise, train one network per denoised contrast, store the fitted attributes."""
        names = self._contrast_names()
        for attribute in ("n_features_in_", "feature_names_in_"):  # set again by 2-D rows only
            self.__dict__.pop(attribute, None)
        with ranks_agree("checking X and measuring its noise"):  # distributed: every rank stops if one fails
            self.magnitude_correction_ = self._resolve_correction()
            volumes = lazy_volumes(X) if names is None else None
            if volumes is not None:  # read on demand: statistics one volume at a time, patches as drawn
                if is_map_rule(self.sigma):
                    check_map_support(None, lazy=True)
                if self.spatial_dims == 3:
                    raise ValueError(
                        "spatial_dims=3 trains on volumes held in memory; lazily readable volumes "
                        "(h5py datasets, memory maps) are trained slice by slice: pass arrays, or spatial_dims=2"
                    )
                dims = 2
                self.context_slices_ = self._resolve_context([volume_depth(volume) for volume in volumes], dims)
                self.n_coils_ = self._resolve_coils(volumes, pool=False)
                stats = lazy_statistics(volumes, self.sigma, self.noise_model, self.n_coils_, self.context_slices_)
                parts, is_complex, self.noise_model_ = volumes, stats.is_complex, stats.noise_model
                self.phase_demodulated_ = is_complex  # each patch with its slice's smooth phase (LazySlice)
                sigmas, methods, scales = stats.sigmas, stats.methods, stats.scales
                part_sigmas, part_scales = sigmas, scales
            else:
                items, _ = self._split(X, names, reset=True, context_slices=self.context_slices)
                dims = resolve_spatial_dims(self.spatial_dims, items, self.context_slices)
                self.context_slices_ = self._resolve_context([item.shape[1] for item in items], dims)
                if dims == 3:
                    check_volumes(items, self.depth)
                is_complex = check_kind(items, None)
                maps = self._noise_maps(items, names)
                if maps is not None:  # white noise of one level per item from here on (_noise_maps)
                    items = maps.flatten(items)
                self.n_coils_ = self._resolve_coils([item[c] for item in items for c in range(item.shape[0])])
                self.noise_model_ = resolve_noise_model(items, self.noise_model, n_coils=self.n_coils_)
                sigmas, methods = self._noise_levels(items, names, maps)
                warn_if_correlated(items, sigmas, self.noise_model_, self.n_coils_)
                if maps is None:
                    warn_if_noise_varies(items, self.noise_model_, self.n_coils_)
                scales = item_scales(items)  # of the magnitude: the phase does not change it
                self.phase_demodulated_ = is_complex
                if is_complex:  # the anatomy into the real part (physics.phase)
                    items, _ = demodulated(items, sigmas)
                parts, part_sigmas, part_scales = as_parts(items, sigmas, scales, is_complex)
            denoised_contrasts = self._denoised_contrasts(names)
            start = self._warm_networks(names, is_complex, denoised_contrasts)
            history = (self.n_iter_, list(self.loss_curve_), self.fit_time_, self.init_) if start else None
        results = self._train_networks(
            parts, part_sigmas, part_scales, denoised_contrasts, names, is_complex, start, dims
        )
        self._store_fit(results, names, sigmas, scales, methods, is_complex)
        if history is not None:
            self._continue_fit(start, history, names)
        return self

    def _resolve_context(self, depths: list[int], dims: int) -> int:
        """``context_slices`` for this fit: a warm start keeps the fitted one; ``"auto"`` is
        :func:`~c2s_denoise.estimator._channels.resolve_context_slices`."""
        if self._continues_a_fit():
            fitted = self.context_slices_
            if self.context_slices not in ("auto", fitted):
                raise ValueError(
                    f"warm_start: the model was fitted with context_slices={fitted}, this fit asks for "
                    f"context_slices={self.context_slices}"
                )
            return fitted
        return resolve_context_slices(self.context_slices, dims, depths)

    def _continues_a_fit(self) -> bool:
        """Whether this fit starts from the fitted model (``warm_start`` and a model already fitted)."""
        return bool(self.warm_start) and hasattr(self, "n_iter_")

    def _resolve_coils(self, volumes: list, pool: bool = True) -> float:
        """``n_coils`` for this fit: a number as given; ``"auto"`` fitted to the air of the magnitude volumes
        (:func:`~c2s_denoise.estimator._noise_levels.effective_coils`); a warm start keeps the fitted number."""
        if self._continues_a_fit():
            return self.n_coils_
        return resolve_coils(self.n_coils, self.noise_model, volumes, pool=pool)

    def _resolve_correction(self) -> str:
        """``magnitude_correction`` for this fit: a warm start must keep the fitted one."""
        if self._continues_a_fit():
            fitted = self.magnitude_correction_
            if self.magnitude_correction != fitted:
                raise ValueError(
                    f"warm_start: the model was fitted with magnitude_correction={fitted!r}, this fit asks for "
                    f"magnitude_correction={self.magnitude_correction!r}"
                )
        return self.magnitude_correction

    def _warm_networks(
        self, names: Names, is_complex: bool, denoised_contrasts: list[int]
    ) -> dict[int, torch.nn.Module]:
        """With ``warm_start`` and a fitted model: its network of each denoised contrast, checked to fit ``X``."""
        if not self._continues_a_fit():
            return {}
        fitted_names = self.contrasts_
        if (None if fitted_names is None else tuple(fitted_names)) != names:
            raise ValueError(
                f"warm_start: the model was fitted with contrasts {fitted_names}, this fit has contrasts {names}"
            )
        problem = kind_mismatch(self.complex_input_, is_complex)
        if problem:
            raise ValueError(f"warm_start: {problem}")
        networks = self._fitted_networks()
        if sorted(networks) != denoised_contrasts:
            fitted_targets = [names[c] for c in networks] if names else []
            wanted = [names[c] for c in denoised_contrasts] if names else []
            raise ValueError(f"warm_start: the model denoises contrasts {fitted_targets}, this fit asks for {wanted}")
        return networks

    def _continue_fit(self, start: dict[int, torch.nn.Module], history: tuple, names: Names) -> None:
        """After a warm start: add up steps, losses and time; keep the networks an interrupted fit did not reach."""
        n_iter, loss_curve, fit_time, init = history
        self.init_ = init
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

    def _steps(self, inputs: list, adapting: bool) -> int:
        """Steps of this network's training: ``max_iter``, or for ``"auto"`` :data:`AUTO_STEPS` from random
        weights and :func:`~c2s_denoise.engine.prior.prior_steps` when ``adapting`` trained ones (prior, warm start)."""
        if self.max_iter != "auto":
            return int(self.max_iter)
        if not adapting:
            return AUTO_STEPS
        shapes = [tuple(item.shape) for item in inputs]
        depth = self.patch_depth if len(shapes[0]) == 4 else None  # volumes: patch_depth slices per patch
        pixels = sum(math.prod(shape[1:]) for shape in shapes)
        return prior_steps(pixels, math.prod(patch_shape(shapes, self.patch_size, depth)), self.batch_size, AUTO_STEPS)

    def _training_config(self, device: torch.device, steps: int, adapting: bool) -> TrainingConfig:
        """The engine's settings; ``"auto"`` learning rate and air weight follow ``adapting`` trained weights."""
        auto = FROM_TRAINED_WEIGHTS if adapting else FROM_RANDOM_WEIGHTS
        return TrainingConfig(
            max_iter=steps,
            max_time=None if self.max_time is None else float(self.max_time),
            batch_size=self.batch_size,
            patch_size=self.patch_size,
            learning_rate=auto["learning_rate"] if self.learning_rate == "auto" else float(self.learning_rate),
            ema_decay=self.ema_decay,
            refinement=float(self.refinement),
            air_weight=auto["air_weight"] if self.air_weight == "auto" else float(self.air_weight),
            compute_dtype=resolve_training_dtype(self.precision, device),
            patch_depth=self.patch_depth,
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
                    f"fit interrupted after {result.n_iter} of {result.planned_steps} steps; keeping the averaged (EMA) "
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
                separable=dims == 3 and self.conv3d == "separable",
            )
        if initial is not None:
            if initial.config != network.config:
                raise ValueError(
                    f"warm_start: the fitted network {initial.config} does not match the one these parameters "
                    f"and X build {network.config}"
                )
            network.load_state_dict(initial.state_dict())
        from_prior = initial is None and self.init == "prior" and initialise_from_prior(network)
        device = resolve_device(self.device)
        adapting = initial is not None or from_prior
        return train_gdsm(
            network,
            inputs,
            levels,
            config=self._training_config(device, self._steps(inputs, adapting), adapting),
            schedule=NoiseSchedule(self.noise_schedule, self.tau_max),
            loss_fn=GDSMLoss(alpha=self.loss_alpha, lambda_out_power=LOSS_WEIGHTINGS[self.loss_weighting]),
            generator=torch.Generator().manual_seed(rank_seed(seed)),  # its own patches on each rank
            device=device,
            verbose=self.verbose,
            air_rms=levels * air_factor(self.noise_model_, self.n_coils_, self.magnitude_correction_),
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
            self.networks_ = {None: results[0].network}
            self.contrasts_ = self.target_contrasts_ = None
            self.sigma_, self.scales_, self.sigma_methods_ = sigmas[:, 0], scales[:, 0], methods[:, 0]
        else:
            self.networks_ = {names[contrast]: result.network for contrast, result in results.items()}
            self.contrasts_ = names
            self.target_contrasts_ = tuple(self.networks_)
            self.sigma_, self.scales_, self.sigma_methods_ = sigmas, scales, methods
        self.complex_input_ = is_complex
        from_prior = self.init == "prior" and all(takes_prior(r.network.config) for r in results.values())
        self.init_ = "prior" if from_prior else "random"  # a warm start keeps its own (_continue_fit)
        self.interrupted_ = any(result.interrupted for result in results.values())
        self.n_iter_ = sum(result.n_iter for result in results.values())
        self.loss_curve_ = [value for result in results.values() for value in result.loss_curve]
        self.fit_time_ = sum((result.seconds for result in results.values()), 0.0)
        self.device_ = str(resolve_device(self.device))
        self.training_dtype_ = str(resolve_training_dtype(self.precision, resolve_device(self.device))).removeprefix(
            "torch."
        )
