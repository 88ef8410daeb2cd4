"""The scikit-learn estimator :class:`C2SDenoiser`: the only numpy-torch boundary."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from ._channels import channel_plan, complex_channel_plan, min_depth, slice_stacks
from ._inputs import intensity_scale, join_contrast_items, join_volumes, split_contrast_items, split_volumes
from ._version import __version__
from .engine import (
    NOISE_SCHEDULES,
    GDSMLoss,
    NoiseConditionedUNet,
    NoiseSchedule,
    TrainingConfig,
    denoise_images,
    resolve_device,
    train_gdsm,
)
from .magnitude import unbias_magnitude
from .metrics import data_range, psnr
from .noise import NOISE_ESTIMATORS, auto_noise_level, estimate_sigma, resolve_noise_model

__all__ = ["NOISE_MODELS", "C2SDenoiser"]

#: Noise models: "auto" resolves at fit time (see :meth:`C2SDenoiser.fit`).
NOISE_MODELS = ("auto", "gaussian", "rician", "ncchi")

# Noise levels below this (in normalised units, i.e. relative to the image's intensity scale) are
# raised to it: a zero level makes every GDSM coefficient 0/0.
_MIN_RELATIVE_SIGMA = 1e-3


class C2SDenoiser(TransformerMixin, BaseEstimator):
    """Corruption2Self (C2S): self-supervised, score-based denoiser for magnitude MRI.

    Trains a noise-level-conditioned U-Net on the noisy images themselves with the generalized
    denoising score matching (GDSM) loss of Tu, Shi & Lam (ICLR 2025), then denoises with one
    forward pass at the data noise level. No clean image is ever needed.

    Parameters
    ----------
    sigma : float, {"auto", "wavelet", "background", "foreground", "rayleigh"} or dict, default="auto"
        Noise standard deviation in the input's units (for complex or magnitude data: of each
        real component of the complex noise), or how to estimate it per image/volume:
        ``"wavelet"`` is the wavelet MAD estimator (the paper's), ``"background"`` fits the
        noncentral-chi background of magnitude images (with ``n_coils``), ``"foreground"`` the
        wavelet MAD over bright tissue only, ``"rayleigh"`` is ``"background"`` with one coil.
        ``"auto"`` picks ``"wavelet"`` for Gaussian noise and, for magnitude noise, the
        background estimator when the image has enough air and the foreground one otherwise
        (the choice is kept in ``sigma_methods_``). With ``contrasts``, a dict
        ``{contrast: float or method}`` sets it per contrast; a single value applies to every
        contrast (a method is then applied to each contrast separately).
    noise_model : {"auto", "gaussian", "rician", "ncchi"}, default="auto"
        Distribution of the noise. ``"gaussian"``: additive white Gaussian noise (complex data,
        real images with negative values). ``"rician"`` / ``"ncchi"``: magnitude images from
        one / ``n_coils`` coils combined by root-sum-of-squares; the network denoises the
        magnitude and the magnitude bias is then inverted (``E[M | A] = A`` solved for ``A``,
        docs/method.md section 10). ``"auto"``: Gaussian for complex input or input with
        negative values, otherwise noncentral chi with ``n_coils`` coils (Rician for 1).
    n_coils : int, default=1
        Coils behind a root-sum-of-squares magnitude image (``noise_model`` "ncchi" or "auto").
    refinement : float, default=0.0
        Detail refinement ``rho = sigma_target / sigma_data`` in ``[0, 1)``. 0 gives the MMSE
        denoiser; larger values keep a fraction ``rho**2`` of the noisy image's fine texture.
    tau_max : float, default=1.5
        Largest added training noise, as a multiple of the data noise level ``sigma_data``.
        Larger values cover more noise levels but need longer training (1.5 was best for
        1-minute CPU fits in our measurements; 5 lost 3 dB there).
    noise_schedule : {"added", "total", "fixed"}, default="added"
        ``"added"`` samples the added noise ``tau ~ U(0, tau_max sigma_data]`` (the paper's
        reparameterisation); ``"total"`` samples the total level uniformly (ablation);
        ``"fixed"`` uses ``tau = tau_max sigma_data`` (``tau_max=1``: Noisier2Noise).
    loss_alpha : float, default=0.0
        Exponent of the loss weight ``(sigma_t**2) ** loss_alpha``.
    width : int, default=16
        Channels of the U-Net's first level (doubled at each level).
    depth : int, default=3
        Resolution levels of the U-Net.
    attention : bool, default=False
        Self-attention at the U-Net's lowest resolution.
    noise_conditioning : bool, default=True
        Condition the network on the noise level (False: plain U-Net, for ablations).
    max_iter : int, default=4000
        Optimiser steps (about 2 minutes on 2 CPU cores with the default network).
    batch_size : int, default=8
        Training patches per step.
    patch_size : int, default=48
        Side of the square training patches.
    learning_rate : float, default=5e-3
        Peak learning rate (AdamW, linear warm-up then cosine decay).
    ema_decay : float, default=0.999
        Decay of the exponential moving average of the weights used for inference (with warm-up).
    air_weight : float, default=1.0
        Probability of keeping a drawn training patch that holds only background noise (air):
        patches whose root-mean-square is below the noise's own plus one ``sigma``. Lower values
        spend the training steps on tissue; 1 draws patches uniformly over the field of view.
    self_ensemble : bool, default=False
        Average the output over the 8 flips/rotations (8x slower inference).
    inference_batch_size : int, default=8
        Slices per forward pass in ``transform``.
    image_shape : tuple of int, default=None
        For 2-D input ``(n_samples, n_features)`` only: the shape of the image stored in each
        row. None reads each row as a one-pixel-high image ``(1, n_features)``.
    contrasts : tuple of str, default=None
        Names of co-registered contrasts (e.g. ``("T1", "T2", "FLAIR")``). X then carries a
        contrast axis at position 1, ``(n, n_contrasts, H, W)`` or ``(n, n_contrasts, D, H, W)``
        (or a list of such items, or a dict ``{name: images}``), and ``transform`` returns the
        same layout. Each target contrast gets its own network whose input is its slice (the
        only channel that is corrupted and regressed on) plus the other contrasts' slices as
        conditioning (docs/method.md section 6); training time grows with the number of targets.
    target_contrasts : tuple of str, default=None
        The contrasts to denoise (None: all); the others are only conditioning inputs and are
        returned unchanged.
    context_slices : int, default=0
        ``k > 0`` gives the network slices ``z - k .. z + k`` of every contrast as conditioning
        channels when it denoises slice ``z`` of a volume (2.5-D context; the loss acts on slice
        ``z`` only). Needs volumes of at least ``2k`` slices; a neighbour beyond the volume's
        end is replaced by its mirror about ``z``.
    device : str, default="auto"
        Torch device; ``"auto"`` picks CUDA, then MPS, then the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, patches and noise: the same value gives the same model on
        the same machine.
    verbose : int, default=0
        ``> 0`` shows a progress bar (step, loss, speed) on stderr.

    Attributes
    ----------
    complex_input_ : bool
        Whether the model was fitted on complex images (real and imaginary parts are two
        channels of one network with one noise level); it then denoises complex images only.
    noise_model_ : str
        The noise model used: "gaussian", "rician" or "ncchi".
    sigma_methods_ : ndarray of str, same shape as ``sigma_``
        How each noise level was obtained: an estimator's name, or "given".
    network_ : torch.nn.Module
        The trained network (EMA weights), in evaluation mode. Only without ``contrasts``.
    networks_ : dict of str to torch.nn.Module
        With ``contrasts``: the network of each target contrast.
    contrasts_ : tuple of str
        With ``contrasts``: the contrasts the model was fitted on, in order.
    target_contrasts_ : tuple of str
        With ``contrasts``: the contrasts that have a network.
    sigma_ : ndarray of shape (n_volumes,) or (n_volumes, n_contrasts)
        Noise level of each training image/volume (and contrast) in input units.
    scales_ : ndarray of shape (n_volumes,) or (n_volumes, n_contrasts)
        Intensity scale (99.5th percentile of the magnitude) of each training image/volume
        (and contrast).
    n_iter_ : int
        Optimiser steps done, summed over the target contrasts' networks (fewer than
        ``max_iter`` per network if the fit was interrupted).
    loss_curve_ : list of float
        GDSM loss at each step (the networks' curves one after the other).
    fit_time_ : float
        Seconds spent in the training loop.
    device_ : str
        Device the model was trained on.
    n_features_in_ : int
        Only for 2-D input: pixels per row.

    Notes
    -----
    Each image (3-D input) or volume (4-D input, list items) is normalised by its own intensity
    scale and has its own noise level; pass a volume as ``(1, D, H, W)`` or ``[volume]`` so that
    its slices share one scale. Outputs come back in the input's units, shape and float dtype.

    ``score(X)`` without clean references returns a SURE-based estimate (no clean data needed),
    see :meth:`score`.

    Examples
    --------
    >>> import numpy as np
    >>> from c2s_denoise import C2SDenoiser
    >>> rng = np.random.default_rng(0)
    >>> noisy = rng.normal(0.5, 0.1, size=(4, 32, 32))
    >>> model = C2SDenoiser(max_iter=5, width=8, random_state=0).fit(noisy)
    >>> model.transform(noisy).shape
    (4, 32, 32)
    """

    _parameter_constraints: dict = {
        "sigma": [Interval(Real, 0, None, closed="right"), StrOptions({"auto", *NOISE_ESTIMATORS}), dict],
        "noise_model": [StrOptions(set(NOISE_MODELS))],
        "n_coils": [Interval(Integral, 1, None, closed="left")],
        "refinement": [Interval(Real, 0, 1, closed="left")],
        "tau_max": [Interval(Real, 0, None, closed="neither")],
        "noise_schedule": [StrOptions(set(NOISE_SCHEDULES))],
        "loss_alpha": [Interval(Real, None, None, closed="neither")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, 8, closed="both")],
        "attention": ["boolean"],
        "noise_conditioning": ["boolean"],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "ema_decay": [Interval(Real, 0, 1, closed="left")],
        "air_weight": [Interval(Real, 0, 1, closed="right")],
        "self_ensemble": ["boolean"],
        "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
        "image_shape": [tuple, list, None],
        "contrasts": [tuple, list, None],
        "target_contrasts": [tuple, list, None],
        "context_slices": [Interval(Integral, 0, None, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        sigma="auto",
        noise_model="auto",
        n_coils=1,
        refinement=0.0,
        tau_max=1.5,
        noise_schedule="added",
        loss_alpha=0.0,
        width=16,
        depth=3,
        attention=False,
        noise_conditioning=True,
        max_iter=4000,
        batch_size=8,
        patch_size=48,
        learning_rate=5e-3,
        ema_decay=0.999,
        air_weight=1.0,
        self_ensemble=False,
        inference_batch_size=8,
        image_shape=None,
        contrasts=None,
        target_contrasts=None,
        context_slices=0,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.sigma = sigma
        self.noise_model = noise_model
        self.n_coils = n_coils
        self.refinement = refinement
        self.tau_max = tau_max
        self.noise_schedule = noise_schedule
        self.loss_alpha = loss_alpha
        self.width = width
        self.depth = depth
        self.attention = attention
        self.noise_conditioning = noise_conditioning
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.learning_rate = learning_rate
        self.ema_decay = ema_decay
        self.air_weight = air_weight
        self.self_ensemble = self_ensemble
        self.inference_batch_size = inference_batch_size
        self.image_shape = image_shape
        self.contrasts = contrasts
        self.target_contrasts = target_contrasts
        self.context_slices = context_slices
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ input handling
    def _contrast_names(self) -> tuple[str, ...] | None:
        """Validated ``contrasts`` (None for single-contrast input)."""
        if self.contrasts is None:
            if self.target_contrasts is not None:
                raise ValueError("target_contrasts needs contrasts (the names of the contrasts in X)")
            if isinstance(self.sigma, dict):
                raise ValueError("sigma can be a dict of per-contrast values only with contrasts")
            return None
        names = tuple(self.contrasts)
        if not names or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"contrasts must be a non-empty sequence of non-empty names, got {self.contrasts!r}")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"contrast {duplicates[0]!r} appears more than once in contrasts={names}")
        for name in self.target_contrasts or ():
            if name not in names:
                raise ValueError(f"target contrast {name!r} is not one of contrasts={names}")
        if isinstance(self.sigma, dict):
            for name in self.sigma:
                if name not in names:
                    raise ValueError(f"sigma has an entry for contrast {name!r}, which is not one of contrasts={names}")
            for name in names:
                if name not in self.sigma:
                    raise ValueError(f"sigma has no entry for contrast {name!r}")
        return names

    def _check_fitted_contrasts(self) -> tuple[str, ...] | None:
        """The fitted contrasts, after checking that the ``contrasts`` parameter still matches them."""
        names = self._contrast_names()
        fitted = getattr(self, "contrasts_", None)
        if names != fitted:
            if fitted is None or names is None:
                raise ValueError(f"contrasts={names} but the model was fitted with contrasts={fitted}")
            for position, (given, expected) in enumerate(zip(names, fitted)):
                if given != expected:
                    raise ValueError(
                        f"contrast {given!r} is at position {position} but the model was fitted with {expected!r} "
                        f"there (fitted order {fitted})"
                    )
            extra = set(names) ^ set(fitted)
            raise ValueError(f"contrast {sorted(extra)[0]!r} differs from the fitted contrasts {fitted}")
        return names

    def _split(self, X, names: tuple[str, ...] | None, *, reset: bool):
        """Items ``(n_contrasts, D, H, W)`` (``n_contrasts = 1`` without contrasts) and the layout."""
        if names is not None:
            items, layout = split_contrast_items(X, names)
        else:

            def validate_rows(rows):
                return validate_data(
                    self, rows, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=True
                )

            volumes, layout = split_volumes(X, self.image_shape, validate_rows)
            items = [volume[None] for volume in volumes]
        needed = min_depth(self.context_slices)
        for index, item in enumerate(items):
            if item.shape[1] < needed:
                raise ValueError(
                    f"context_slices={self.context_slices} needs volumes of at least {needed} slices; item {index} "
                    f"has {item.shape[1]} (pass volumes (n, D, H, W), or context_slices=0 for single images)"
                )
        return items, layout

    @staticmethod
    def _join(items: list[np.ndarray], layout, names: tuple[str, ...] | None):
        if names is None:
            return join_volumes([item[0] for item in items], layout)
        return join_contrast_items(items, layout, names)

    # ------------------------------------------------------------------ noise
    def _coils(self, noise_model: str) -> int:
        return self.n_coils if noise_model == "ncchi" else 1

    def _air_factor(self) -> float:
        """Root-mean-square of pure noise in units of sigma, per network target channel."""
        noise_model = getattr(self, "noise_model_", "gaussian")
        return 1.0 if noise_model == "gaussian" else float(np.sqrt(2 * self._coils(noise_model)))

    def _current_noise_model(self, volume: np.ndarray) -> str:
        fitted = getattr(self, "noise_model_", None)
        if fitted is not None:
            return fitted
        return resolve_noise_model([volume], self.noise_model, n_coils=self.n_coils)

    def _estimate_noise(self, volume, contrast: str | None = None) -> tuple[float, str]:
        """``(sigma, how)``: the noise level that the ``sigma`` rule gives, and the estimator used."""
        rule = self.sigma[contrast] if isinstance(self.sigma, dict) else self.sigma
        if isinstance(rule, str):
            volume = np.asarray(volume)
            noise_model = self._current_noise_model(volume)
            coils = self._coils(noise_model)
            if rule != "auto":
                return float(estimate_sigma(volume, rule, n_coils=1 if rule == "rayleigh" else coils)), rule
            return auto_noise_level(volume, noise_model, n_coils=coils)
        if isinstance(rule, Real) and not isinstance(rule, bool) and 0 < rule < np.inf:
            return float(rule), "given"
        raise ValueError(
            f"sigma for contrast {contrast!r} must be a finite positive number or a method name, got {rule!r}"
        )

    def noise_level(self, volume, contrast: str | None = None) -> float:
        """Noise level, in input units, that the ``sigma`` rule gives one image or volume.

        Parameters
        ----------
        volume : ndarray of shape (H, W) or (D, H, W)
            One image or volume (of ``contrast``, with named contrasts); real or complex.
        contrast : str, optional
            Its contrast, when ``sigma`` is a per-contrast dict.

        Returns
        -------
        float
            ``sigma`` itself, or its estimate on ``volume`` for a method name (per real
            component of the noise).
        """
        return self._estimate_noise(volume, contrast)[0]

    def _noise_levels(self, items: list[np.ndarray], names: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        """Noise level of each item and contrast ``(n_items, n_contrasts)`` in input units, and how it was obtained."""
        levels = np.empty((len(items), items[0].shape[0]), dtype=np.float64)
        methods = np.empty(levels.shape, dtype=object)
        for c in range(levels.shape[1]):
            for i, item in enumerate(items):
                contrast = names[c] if names else None
                try:
                    levels[i, c], methods[i, c] = self._estimate_noise(item[c], contrast)
                except ValueError as exc:
                    rule = self.sigma[contrast] if isinstance(self.sigma, dict) else self.sigma
                    if not isinstance(rule, str):
                        raise
                    warnings.warn(
                        f"item {i}" + (f", contrast {contrast!r}" if names else "") + f": {exc}; it is treated as "
                        f"nearly noise-free (sigma = {_MIN_RELATIVE_SIGMA:g} x its intensity scale) and comes back "
                        "almost unchanged",
                        UserWarning,
                        stacklevel=3,
                    )
                    levels[i, c], methods[i, c] = 0.0, "failed"
        return levels, methods.astype(str)

    @staticmethod
    def _scales(items: list[np.ndarray]) -> np.ndarray:
        return np.array([[intensity_scale(volume) for volume in item] for item in items])

    # ------------------------------------------------------------------ channels
    @staticmethod
    def _check_kind(items: list[np.ndarray], expected: bool | None) -> bool:
        """Whether the items are complex; all must be alike (and like the fitted model's input)."""
        kinds = [np.iscomplexobj(item) for item in items]
        if any(kinds) and not all(kinds):
            first = kinds.index(not kinds[0])
            raise ValueError(f"X mixes complex and real images (item 0 is {'complex' if kinds[0] else 'real'}, item {first} is not)")
        is_complex = bool(kinds[0])
        if expected is not None and is_complex != expected:
            fitted, given = ("complex", "real") if expected else ("real", "complex")
            raise ValueError(f"the model was fitted on {fitted} images but X is {given}")
        return is_complex

    @staticmethod
    def _as_parts(items, sigmas, scales, is_complex: bool):
        """Complex items ``(1, D, H, W)`` as real ``(2, D, H, W)`` (real, imaginary), levels and scales repeated."""
        if not is_complex:
            return items, sigmas, scales
        parts = [np.concatenate([item.real, item.imag]) for item in items]
        return parts, np.repeat(sigmas, 2, axis=1), np.repeat(scales, 2, axis=1)

    def _plan(self, n_channels: int, target: int, is_complex: bool) -> list[tuple[int, int]]:
        if is_complex:
            return complex_channel_plan(self.context_slices)
        return channel_plan(n_channels, target, self.context_slices)

    def _network_inputs(self, items, sigmas, scales, target: int, is_complex: bool = False):
        """Input channels ``(n_channels, H, W)`` of every slice, and the target's normalised noise levels."""
        plan = self._plan(items[0].shape[0], target, is_complex)
        inputs, levels = [], []
        for item, sigma, scale in zip(items, sigmas, scales):
            normalised = (item / scale[:, None, None, None]).astype(np.float32)
            stacks = slice_stacks(normalised, plan)
            inputs += [torch.from_numpy(np.ascontiguousarray(stack)) for stack in stacks]
            levels += [max(float(sigma[target]) / scale[target], _MIN_RELATIVE_SIGMA)] * len(stacks)
        return inputs, torch.tensor(levels, dtype=torch.float32), len(plan)

    def _fitted_networks(self) -> dict[int, torch.nn.Module]:
        """Network of each target contrast, by contrast index."""
        if getattr(self, "contrasts_", None) is None:
            return {0: self.network_}
        return {self.contrasts_.index(name): network for name, network in self.networks_.items()}

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Train the denoiser on noisy images only.

        Parameters
        ----------
        X : array-like, list of array-like, or dict
            Noisy images: ``(n, H, W)``, volumes ``(n, D, H, W)``, a list of
            ``(H, W)``/``(D, H, W)`` arrays, or 2-D rows (see ``image_shape``); real (magnitude
            or real-valued images) or complex (e.g. coil-combined images, see
            :func:`c2s_denoise.coil_combination.combine_coils`). With ``contrasts`` (real
            only): ``(n, n_contrasts, H, W)``, ``(n, n_contrasts, D, H, W)``, a list of
            ``(n_contrasts, ...)`` arrays, or a dict ``{contrast: images}``.
        y : None
            Ignored; there for the scikit-learn API.

        Returns
        -------
        self : C2SDenoiser
        """
        self._validate_params()
        names = self._contrast_names()
        items, _ = self._split(X, names, reset=True)
        is_complex = self._check_kind(items, None)
        self.noise_model_ = resolve_noise_model(items, self.noise_model, n_coils=self.n_coils)
        sigmas, methods = self._noise_levels(items, names)
        scales = self._scales(items)
        parts, part_sigmas, part_scales = self._as_parts(items, sigmas, scales, is_complex)
        if names is None:
            targets = [0]
        else:
            wanted = names if self.target_contrasts is None else tuple(self.target_contrasts)
            targets = [index for index, name in enumerate(names) if name in wanted]
        networks, n_iter, loss_curve, seconds = self._train(parts, part_sigmas, part_scales, targets, names, is_complex)
        if names is None:
            self.network_ = networks[0]
            self.sigma_, self.scales_, self.sigma_methods_ = sigmas[:, 0], scales[:, 0], methods[:, 0]
        else:
            self.networks_ = {names[t]: network for t, network in networks.items()}
            self.contrasts_ = names
            self.target_contrasts_ = tuple(self.networks_)
            self.sigma_, self.scales_, self.sigma_methods_ = sigmas, scales, methods
        self.complex_input_ = is_complex
        self.n_iter_ = n_iter
        self.loss_curve_ = loss_curve
        self.fit_time_ = seconds
        self.device_ = str(resolve_device(self.device))
        return self

    def _train(self, items, sigmas, scales, targets, names, is_complex):
        """Train one network per target: ``(networks by target index, steps, loss curve, seconds)``."""
        random_state = check_random_state(self.random_state)
        device = resolve_device(self.device)
        config = TrainingConfig(
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            patch_size=self.patch_size,
            learning_rate=self.learning_rate,
            ema_decay=self.ema_decay,
            refinement=float(self.refinement),
            air_weight=float(self.air_weight),
        )
        networks, n_iter, loss_curve, seconds = {}, 0, [], 0.0
        for target in targets:
            seed = int(random_state.randint(np.iinfo(np.int32).max))
            inputs, levels, n_channels = self._network_inputs(items, sigmas, scales, target, is_complex)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                network = NoiseConditionedUNet(
                    in_channels=n_channels,
                    out_channels=2 if is_complex else 1,
                    width=self.width,
                    depth=self.depth,
                    attention=self.attention,
                    noise_conditioning=self.noise_conditioning,
                )
            result = train_gdsm(
                network,
                inputs,
                levels,
                config=config,
                schedule=NoiseSchedule(self.noise_schedule, self.tau_max),
                loss_fn=GDSMLoss(alpha=self.loss_alpha),
                generator=torch.Generator().manual_seed(seed),
                device=device,
                verbose=self.verbose,
                air_rms=levels * self._air_factor(),
            )
            if result.rollbacks:
                warnings.warn(
                    f"training diverged {result.rollbacks} time(s)"
                    + (f" for contrast {names[target]!r}" if names else "")
                    + "; each time the last healthy weights were restored and the learning rate halved "
                    "(a lower learning_rate avoids this)",
                    UserWarning,
                    stacklevel=3,
                )
            networks[target] = result.network
            n_iter += result.n_iter
            loss_curve += result.loss_curve
            seconds += result.seconds
            if result.interrupted:
                left = [names[t] for t in targets if t not in networks] if names else []
                warnings.warn(
                    f"fit interrupted after {result.n_iter} of {self.max_iter} steps; keeping the averaged (EMA) "
                    "weights reached so far" + (f"; contrasts {left} were not trained and are returned unchanged" if left else ""),
                    UserWarning,
                    stacklevel=3,
                )
                break
        return networks, n_iter, loss_curve, seconds

    # ------------------------------------------------------------------ transform
    def _denoise_items(self, items, sigmas, scales, targets: list[int] | None = None) -> list[np.ndarray]:
        """Denoised copies of ``items`` (float64 or complex128, input units); contrasts without a network are copied.

        Complex items are denoised as (real, imaginary) channels; magnitude items get their
        noise bias removed (``noise_model_`` "rician"/"ncchi").
        """
        is_complex = bool(getattr(self, "complex_input_", False))
        parts, part_sigmas, part_scales = self._as_parts(items, sigmas, scales, is_complex)
        networks = self._fitted_networks()
        outputs = [item.astype(np.float64, copy=True) for item in parts]
        width = 2 if is_complex else 1
        for target, network in networks.items():
            if targets is not None and target not in targets:
                continue
            inputs, levels, _ = self._network_inputs(parts, part_sigmas, part_scales, target, is_complex)
            denoised = denoise_images(
                network,
                inputs,
                levels,
                device=resolve_device(self.device),
                batch_size=self.inference_batch_size,
                self_ensemble=self.self_ensemble,
            )
            position = 0
            for output, scale, sigma in zip(outputs, part_scales, part_sigmas):
                depth = output.shape[1]
                stack = torch.stack(denoised[position : position + depth], dim=1).numpy()  # (width, D, H, W)
                channels = slice(target, target + width)
                output[channels] = stack * scale[channels, None, None, None]
                noise_model = getattr(self, "noise_model_", "gaussian")  # models saved before noise models existed
                if noise_model != "gaussian":
                    output[target] = unbias_magnitude(output[target], float(sigma[target]), self._coils(noise_model))
                position += depth
        if is_complex:
            return [(output[0] + 1j * output[1])[None] for output in outputs]
        return outputs

    def transform(self, X):
        """Denoise images with one forward pass at their noise level.

        Parameters
        ----------
        X : array-like, list of array-like, or dict
            Same layouts as in :meth:`fit`, real or complex as in :meth:`fit`; image sizes may
            differ from the training images. With ``contrasts``, the same contrasts in the same
            order as in :meth:`fit`.

        Returns
        -------
        ndarray, list of ndarray or dict
            Denoised images, same layout, shape and dtype as ``X`` (float64 for integer input),
            in the input's units; contrasts that are not targets come back unchanged. ``X`` is
            not modified.
        """
        return self.denoise(X)[0]

    def denoise(self, X):
        """Denoise like :meth:`transform`, and say at which noise levels.

        Parameters
        ----------
        X : array-like, list of array-like, or dict
            As in :meth:`transform`.

        Returns
        -------
        denoised : ndarray, list of ndarray or dict
            What :meth:`transform` returns.
        noise_levels : ndarray, shape (n_items,) or (n_items, n_contrasts)
            The noise level used for each item (and contrast), in the input's units: the fixed
            ``sigma``, or the estimate made for that item (0 where an estimate failed).
        """
        check_is_fitted(self)
        names = self._check_fitted_contrasts()
        items, layout = self._split(X, names, reset=False)
        self._check_kind(items, bool(getattr(self, "complex_input_", False)))
        sigmas, _ = self._noise_levels(items, names)
        scales = self._scales(items)
        denoised = self._join(self._denoise_items(items, sigmas, scales), layout, names)
        return denoised, (sigmas[:, 0] if names is None else sigmas)

    # ------------------------------------------------------------------ score
    def score(self, X, y=None):
        """Denoising quality in dB (higher is better).

        Parameters
        ----------
        X : array-like, list of array-like, or dict
            Noisy images.
        y : array-like, list of array-like or dict, optional
            Clean references in the layout of ``X``.

        Returns
        -------
        float
            Averaged over images/volumes (and target contrasts).
            With ``y``: the mean PSNR of the denoised images against ``y``, each with
            ``data_range = y.max() - y.min()`` of its image/volume (for complex images: the
            range of ``|y|`` and the mean of ``|f(x) - y|^2``).
            Without ``y``: a self-supervised estimate, in dB, of how well the denoised image
            predicts an independent repetition of the scan, ``10 log10(scale**2 / R)`` averaged
            over images/volumes, with ``R = |f(y) - y|^2 / N + 2 sigma^2 div f / N`` and the
            divergence from one Monte-Carlo probe (Ramani et al. 2008). ``R - sigma**2`` is
            Stein's unbiased risk estimate (SURE) of the MSE against the clean image, so ``R``
            estimates the MSE against a second noisy scan, ``MSE(f, x) + sigma**2``: it ranks
            denoisers like the true MSE, gives the identity map exactly ``2 sigma**2`` (no reward
            for doing nothing), and, unlike SURE itself, stays positive when ``sigma`` is
            somewhat over-estimated (SURE goes negative for good denoisers once the ``sigma**2``
            error exceeds their MSE). ``scale`` is the 99.5th percentile of the noisy magnitude;
            ``sigma`` follows the ``sigma`` parameter (estimated on ``X`` for a method name). The
            estimate assumes Gaussian noise; it is biased at very low SNR in Rician background.
            For complex images ``N`` counts real components. This is the score
            ``GridSearchCV`` uses without clean data.
        """
        check_is_fitted(self)
        names = self._check_fitted_contrasts()
        items, _ = self._split(X, names, reset=False)
        self._check_kind(items, bool(getattr(self, "complex_input_", False)))
        sigmas, _ = self._noise_levels(items, names)
        scales = self._scales(items)
        denoised = self._denoise_items(items, sigmas, scales)
        targets = list(self._fitted_networks())
        if y is not None:
            if names is None:
                references = [r[None] for r in split_volumes(y, self.image_shape, np.asarray)[0]]
            else:
                references = split_contrast_items(y, names)[0]
            if [r.shape for r in references] != [i.shape for i in items]:
                raise ValueError("y must have the same layout and shapes as X")
            return float(
                np.mean(
                    [
                        psnr(den[t], ref[t], range_=data_range(np.abs(ref[t])) or 1.0)
                        for ref, den in zip(references, denoised)
                        for t in targets
                    ]
                )
            )
        return float(np.mean(self._sure_psnr(items, denoised, sigmas, scales, targets)))

    def _sure_psnr(self, items, denoised, sigmas, scales, targets) -> list[float]:
        probe_rng = np.random.default_rng(0)
        psnrs = []
        for item, output, sigma_row, scale_row in zip(items, denoised, sigmas, scales):
            for target in targets:
                sigma = max(float(sigma_row[target]), _MIN_RELATIVE_SIGMA * scale_row[target])
                epsilon = 1e-2 * sigma
                probe = probe_rng.standard_normal(item.shape[1:])
                if np.iscomplexobj(item):
                    probe = probe + 1j * probe_rng.standard_normal(item.shape[1:])
                perturbed_item = item.astype(np.complex128 if np.iscomplexobj(item) else np.float64, copy=True)
                perturbed_item[target] += epsilon * probe
                perturbed = self._denoise_items([perturbed_item], sigma_row[None], scale_row[None], [target])[0][target]
                # real inner product of the probe with the response: the divergence over all real components
                divergence = float(np.sum(np.real(np.conj(probe) * (perturbed - output[target])))) / epsilon
                n = probe.size * (2 if np.iscomplexobj(item) else 1)
                # SURE + sigma^2: estimated MSE against an independent noisy repetition
                risk = float(np.sum(np.abs(output[target] - item[target]) ** 2)) / n + 2.0 * sigma**2 * divergence / n
                psnrs.append(10.0 * np.log10(scale_row[target] ** 2 / max(risk, 1e-12 * scale_row[target] ** 2)))
        return psnrs

    # ------------------------------------------------------------------ persistence
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live estimator keeps its network
        network = state.pop("network_", None)
        if network is not None:
            state["_network_state"] = _network_state(network)
        networks = state.pop("networks_", None)
        if networks is not None:
            state["_networks_state"] = {name: _network_state(net) for name, net in networks.items()}
        state["_c2s_version"] = __version__
        state["_torch_version"] = torch.__version__
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved_version = state.pop("_c2s_version", None)
        saved_torch = state.pop("_torch_version", None)
        if saved_version is not None and saved_version != __version__:
            warnings.warn(
                f"this model was saved with c2s-denoise {saved_version}; loading it with {__version__}",
                UserWarning,
                stacklevel=2,
            )
        if saved_torch is not None and saved_torch.split("+")[0] != torch.__version__.split("+")[0]:
            warnings.warn(
                f"this model was saved with torch {saved_torch}; loading it with {torch.__version__}",
                UserWarning,
                stacklevel=2,
            )
        network_state = state.pop("_network_state", None)
        networks_state = state.pop("_networks_state", None)
        if saved_version is None or "noise_model" not in state:  # saved before noise models: Gaussian, as then
            state.setdefault("noise_model", "gaussian")
            state.setdefault("n_coils", 1)
            if "n_iter_" in state:
                state.setdefault("noise_model_", "gaussian")
                state.setdefault("complex_input_", False)
        state.setdefault("air_weight", 1.0)  # saved before air was down-weighted: patches were uniform
        super().__setstate__(state)
        if network_state is not None:
            self.network_ = _network_from_state(network_state)
        if networks_state is not None:
            self.networks_ = {name: _network_from_state(saved) for name, saved in networks_state.items()}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        return tags


def _network_state(network: torch.nn.Module) -> dict:
    """A network's constructor arguments and weights as CPU tensors (what pickling stores)."""
    return {
        "config": dict(network.config),
        "weights": {name: tensor.detach().cpu().clone() for name, tensor in network.state_dict().items()},
    }


def _network_from_state(saved: dict) -> NoiseConditionedUNet:
    network = NoiseConditionedUNet(**saved["config"])
    network.load_state_dict(saved["weights"])
    return network.eval()
