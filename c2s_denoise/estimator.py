"""The scikit-learn estimator :class:`C2SDenoiser`: the only numpy-torch boundary."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from ._channels import channel_plan, min_depth, slice_stacks
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
from .metrics import data_range, psnr
from .noise import NOISE_ESTIMATORS, estimate_sigma

__all__ = ["C2SDenoiser"]

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
    sigma : float, {"auto", "wavelet", "rayleigh"} or dict, default="auto"
        Noise standard deviation in the input's units, or how to estimate it per image/volume:
        ``"auto"`` and ``"wavelet"`` use the wavelet MAD estimator (the paper's),
        ``"rayleigh"`` the signal-free background of magnitude images. With ``contrasts``, a
        dict ``{contrast: float or method}`` sets it per contrast; a single value applies to
        every contrast (a method is then applied to each contrast separately).
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
        conditioning (METHOD.md section 6); training time grows with the number of targets.
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

    def _noise_levels(self, items: list[np.ndarray], names: tuple[str, ...] | None) -> np.ndarray:
        """Noise level of each item and contrast ``(n_items, n_contrasts)`` in input units."""
        levels = np.empty((len(items), items[0].shape[0]), dtype=np.float64)
        for c in range(levels.shape[1]):
            for i, item in enumerate(items):
                levels[i, c] = self.noise_level(item[c], names[c] if names else None)
        return levels

    def noise_level(self, volume, contrast: str | None = None) -> float:
        """Noise level, in input units, that the ``sigma`` rule gives one image or volume.

        Parameters
        ----------
        volume : ndarray of shape (H, W) or (D, H, W)
            One image or volume (of ``contrast``, with named contrasts).
        contrast : str, optional
            Its contrast, when ``sigma`` is a per-contrast dict.

        Returns
        -------
        float
            ``sigma`` itself, or its estimate on ``volume`` for a method name.
        """
        rule = self.sigma[contrast] if isinstance(self.sigma, dict) else self.sigma
        if isinstance(rule, str):
            return float(estimate_sigma(np.asarray(volume), "wavelet" if rule == "auto" else rule))
        if isinstance(rule, Real) and rule > 0:
            return float(rule)
        raise ValueError(f"sigma for contrast {contrast!r} must be a positive number or a method name, got {rule!r}")

    @staticmethod
    def _scales(items: list[np.ndarray]) -> np.ndarray:
        return np.array([[intensity_scale(volume) for volume in item] for item in items])

    def _network_inputs(self, items, sigmas, scales, target: int):
        """Input channels ``(n_channels, H, W)`` of every slice, and the target's normalised noise levels."""
        plan = channel_plan(items[0].shape[0], target, self.context_slices)
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
            Noisy magnitude images: ``(n, H, W)``, volumes ``(n, D, H, W)``, a list of
            ``(H, W)``/``(D, H, W)`` arrays, or 2-D rows (see ``image_shape``). With
            ``contrasts``: ``(n, n_contrasts, H, W)``, ``(n, n_contrasts, D, H, W)``, a list of
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
        sigmas = self._noise_levels(items, names)
        scales = self._scales(items)
        if names is None:
            targets = [0]
        else:
            wanted = names if self.target_contrasts is None else tuple(self.target_contrasts)
            targets = [index for index, name in enumerate(names) if name in wanted]

        random_state = check_random_state(self.random_state)
        device = resolve_device(self.device)
        config = TrainingConfig(
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            patch_size=self.patch_size,
            learning_rate=self.learning_rate,
            ema_decay=self.ema_decay,
            refinement=float(self.refinement),
        )
        networks, n_iter, loss_curve, seconds = {}, 0, [], 0.0
        for target in targets:
            seed = int(random_state.randint(np.iinfo(np.int32).max))
            inputs, levels, n_channels = self._network_inputs(items, sigmas, scales, target)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                network = NoiseConditionedUNet(
                    in_channels=n_channels,
                    out_channels=1,
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
            )
            if result.rollbacks:
                warnings.warn(
                    f"training diverged {result.rollbacks} time(s)"
                    + (f" for contrast {names[target]!r}" if names else "")
                    + "; each time the last healthy weights were restored and the learning rate halved "
                    "(a lower learning_rate avoids this)",
                    UserWarning,
                    stacklevel=2,
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
                    stacklevel=2,
                )
                break
        if names is None:
            self.network_ = networks[0]
            self.sigma_, self.scales_ = sigmas[:, 0], scales[:, 0]
        else:
            self.networks_ = {names[t]: network for t, network in networks.items()}
            self.contrasts_ = names
            self.target_contrasts_ = tuple(self.networks_)
            self.sigma_, self.scales_ = sigmas, scales
        self.n_iter_ = n_iter
        self.loss_curve_ = loss_curve
        self.fit_time_ = seconds
        self.device_ = str(device)
        return self

    # ------------------------------------------------------------------ transform
    def _denoise_items(self, items, sigmas, scales, targets: list[int] | None = None) -> list[np.ndarray]:
        """Denoised copies of ``items`` (float64, input units); contrasts without a network are copied."""
        networks = self._fitted_networks()
        outputs = [item.astype(np.float64, copy=True) for item in items]
        for target, network in networks.items():
            if targets is not None and target not in targets:
                continue
            inputs, levels, _ = self._network_inputs(items, sigmas, scales, target)
            denoised = denoise_images(
                network,
                inputs,
                levels,
                device=resolve_device(self.device),
                batch_size=self.inference_batch_size,
                self_ensemble=self.self_ensemble,
            )
            position = 0
            for output, scale in zip(outputs, scales):
                depth = output.shape[1]
                stack = torch.cat(denoised[position : position + depth]).numpy()
                output[target] = stack * scale[target]
                position += depth
        return outputs

    def transform(self, X):
        """Denoise images with one forward pass at their noise level.

        Parameters
        ----------
        X : array-like, list of array-like, or dict
            Same layouts as in :meth:`fit`; image sizes may differ from the training images.
            With ``contrasts``, the same contrasts in the same order as in :meth:`fit`.

        Returns
        -------
        ndarray, list of ndarray or dict
            Denoised images, same layout, shape and float dtype as ``X`` (float64 for integer
            input), in the input's units; contrasts that are not targets come back unchanged.
            ``X`` is not modified.
        """
        check_is_fitted(self)
        names = self._check_fitted_contrasts()
        items, layout = self._split(X, names, reset=False)
        sigmas = self._noise_levels(items, names)
        scales = self._scales(items)
        return self._join(self._denoise_items(items, sigmas, scales), layout, names)

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
            ``data_range = y.max() - y.min()`` of its image/volume.
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
            This is the score ``GridSearchCV`` uses without clean data.
        """
        check_is_fitted(self)
        names = self._check_fitted_contrasts()
        items, _ = self._split(X, names, reset=False)
        sigmas = self._noise_levels(items, names)
        scales = self._scales(items)
        denoised = self._denoise_items(items, sigmas, scales)
        targets = list(self._fitted_networks())
        if y is not None:
            if names is None:
                references = [r[None] for r in split_volumes(y, self.image_shape, lambda rows: np.asarray(rows, float))[0]]
            else:
                references = split_contrast_items(y, names)[0]
            if [r.shape for r in references] != [i.shape for i in items]:
                raise ValueError("y must have the same layout and shapes as X")
            return float(
                np.mean([psnr(den[t], ref[t], range_=data_range(ref[t]) or 1.0) for ref, den in zip(references, denoised) for t in targets])
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
                perturbed_item = item.astype(np.float64, copy=True)
                perturbed_item[target] += epsilon * probe
                perturbed = self._denoise_items([perturbed_item], sigma_row[None], scale_row[None], [target])[0][target]
                divergence = float(np.sum(probe * (perturbed - output[target]))) / epsilon
                n = probe.size
                # SURE + sigma^2: estimated MSE against an independent noisy repetition
                risk = float(np.sum((output[target] - item[target]) ** 2)) / n + 2.0 * sigma**2 * divergence / n
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
