"""The scikit-learn estimator :class:`C2SDenoiser`: the only numpy-torch boundary."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from ._inputs import intensity_scale, join_volumes, split_volumes
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
    sigma : float or {"auto", "wavelet", "rayleigh"}, default="auto"
        Noise standard deviation in the input's units, or how to estimate it per image/volume:
        ``"auto"`` and ``"wavelet"`` use the wavelet MAD estimator (the paper's),
        ``"rayleigh"`` the signal-free background of magnitude images.
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
    contrasts : None
        Reserved for multi-contrast denoising; must be None in this version.
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
        The trained network (EMA weights), in evaluation mode.
    sigma_ : ndarray of shape (n_volumes,)
        Noise level of each training image/volume in input units.
    scales_ : ndarray of shape (n_volumes,)
        Intensity scale (99.5th percentile of the magnitude) of each training image/volume.
    n_iter_ : int
        Optimiser steps done (fewer than ``max_iter`` if the fit was interrupted).
    loss_curve_ : list of float
        GDSM loss at each step.
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
        "sigma": [Interval(Real, 0, None, closed="right"), StrOptions({"auto", *NOISE_ESTIMATORS})],
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
        "contrasts": [None],
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
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ input handling
    def _split(self, X, *, reset: bool):
        def validate_rows(rows):
            return validate_data(
                self, rows, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=True
            )

        return split_volumes(X, self.image_shape, validate_rows)

    def _noise_levels(self, volumes: list[np.ndarray]) -> np.ndarray:
        """Noise level of each volume in input units."""
        if isinstance(self.sigma, str):
            method = "wavelet" if self.sigma == "auto" else self.sigma
            return np.array([estimate_sigma(volume, method) for volume in volumes], dtype=np.float64)
        return np.full(len(volumes), float(self.sigma))

    @staticmethod
    def _to_slices(volumes: list[np.ndarray], scales: np.ndarray, sigmas: np.ndarray):
        """Normalised slices (1, H, W) as tensors and their normalised noise levels."""
        slices, levels = [], []
        for volume, scale, sigma in zip(volumes, scales, sigmas):
            relative = max(float(sigma) / scale, _MIN_RELATIVE_SIGMA)
            normalised = torch.from_numpy(np.ascontiguousarray(volume / scale, dtype=np.float32))
            for index in range(normalised.shape[0]):
                slices.append(normalised[index : index + 1])
                levels.append(relative)
        return slices, torch.tensor(levels, dtype=torch.float32)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Train the denoiser on noisy images only.

        Parameters
        ----------
        X : array-like or list of array-like
            Noisy magnitude images: ``(n, H, W)``, volumes ``(n, D, H, W)``, a list of
            ``(H, W)``/``(D, H, W)`` arrays, or 2-D rows (see ``image_shape``).
        y : None
            Ignored; there for the scikit-learn API.

        Returns
        -------
        self : C2SDenoiser
        """
        self._validate_params()
        if self.contrasts is not None:
            raise ValueError("contrasts is reserved for multi-contrast denoising and must be None in this version")
        volumes, _ = self._split(X, reset=True)
        sigmas = self._noise_levels(volumes)
        scales = np.array([intensity_scale(volume) for volume in volumes])
        slices, levels = self._to_slices(volumes, scales, sigmas)

        random_state = check_random_state(self.random_state)
        seed = int(random_state.randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        device = resolve_device(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = NoiseConditionedUNet(
                in_channels=1,
                out_channels=1,
                width=self.width,
                depth=self.depth,
                attention=self.attention,
                noise_conditioning=self.noise_conditioning,
            )
        config = TrainingConfig(
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            patch_size=self.patch_size,
            learning_rate=self.learning_rate,
            ema_decay=self.ema_decay,
            refinement=float(self.refinement),
        )
        result = train_gdsm(
            network,
            slices,
            levels,
            config=config,
            schedule=NoiseSchedule(self.noise_schedule, self.tau_max),
            loss_fn=GDSMLoss(alpha=self.loss_alpha),
            generator=generator,
            device=device,
            verbose=self.verbose,
        )
        if result.interrupted:
            warnings.warn(
                f"fit interrupted after {result.n_iter} of {self.max_iter} steps; keeping the "
                "averaged (EMA) weights reached so far",
                UserWarning,
                stacklevel=2,
            )
        self.network_ = result.network
        self.sigma_ = sigmas
        self.scales_ = scales
        self.n_iter_ = result.n_iter
        self.loss_curve_ = result.loss_curve
        self.fit_time_ = result.seconds
        self.device_ = str(device)
        return self

    # ------------------------------------------------------------------ transform
    def _denoise_volumes(self, volumes: list[np.ndarray], sigmas: np.ndarray, scales: np.ndarray) -> list[np.ndarray]:
        slices, levels = self._to_slices(volumes, scales, sigmas)
        outputs = denoise_images(
            self.network_,
            slices,
            levels,
            device=resolve_device(self.device),
            batch_size=self.inference_batch_size,
            self_ensemble=self.self_ensemble,
        )
        denoised, position = [], 0
        for volume, scale in zip(volumes, scales):
            depth = volume.shape[0]
            stack = torch.cat(outputs[position : position + depth]).numpy().astype(np.float64)
            denoised.append(stack * scale)
            position += depth
        return denoised

    def transform(self, X):
        """Denoise images with one forward pass at their noise level.

        Parameters
        ----------
        X : array-like or list of array-like
            Same layouts as in :meth:`fit`; image sizes may differ from the training images.

        Returns
        -------
        ndarray or list of ndarray
            Denoised images, same layout, shape and float dtype as ``X`` (float64 for integer
            input), in the input's units. ``X`` is not modified.
        """
        check_is_fitted(self)
        volumes, layout = self._split(X, reset=False)
        sigmas = self._noise_levels(volumes)
        scales = np.array([intensity_scale(volume) for volume in volumes])
        return join_volumes(self._denoise_volumes(volumes, sigmas, scales), layout)

    # ------------------------------------------------------------------ score
    def score(self, X, y=None):
        """Denoising quality in dB (higher is better).

        Parameters
        ----------
        X : array-like or list of array-like
            Noisy images.
        y : array-like or list of array-like, optional
            Clean references in the layout of ``X``.

        Returns
        -------
        float
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
        volumes, layout = self._split(X, reset=False)
        sigmas = self._noise_levels(volumes)
        scales = np.array([intensity_scale(volume) for volume in volumes])
        denoised = self._denoise_volumes(volumes, sigmas, scales)
        if y is not None:
            references, _ = split_volumes(y, self.image_shape, lambda rows: np.asarray(rows, float))
            if [r.shape for r in references] != [v.shape for v in volumes]:
                raise ValueError("y must have the same layout and shapes as X")
            return float(np.mean([psnr(den, ref, range_=data_range(ref) or 1.0) for ref, den in zip(references, denoised)]))
        return float(np.mean(self._sure_psnr(volumes, denoised, sigmas, scales)))

    def _sure_psnr(self, volumes, denoised, sigmas, scales) -> list[float]:
        probe_rng = np.random.default_rng(0)
        psnrs = []
        for volume, output, sigma, scale in zip(volumes, denoised, sigmas, scales):
            sigma = max(float(sigma), _MIN_RELATIVE_SIGMA * scale)
            epsilon = 1e-2 * sigma
            probe = probe_rng.standard_normal(volume.shape)
            perturbed = self._denoise_volumes([volume + epsilon * probe], np.array([sigma]), np.array([scale]))[0]
            divergence = float(np.sum(probe * (perturbed - output))) / epsilon
            n = volume.size
            # SURE + sigma^2: estimated MSE against an independent noisy repetition
            risk = float(np.sum((output - volume) ** 2)) / n + 2.0 * sigma**2 * divergence / n
            psnrs.append(10.0 * np.log10(scale**2 / max(risk, 1e-12 * scale**2)))
        return psnrs

    # ------------------------------------------------------------------ persistence
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live estimator keeps its network
        network = state.pop("network_", None)
        if network is not None:
            state["_network_state"] = {
                "config": dict(network.config),
                "weights": {name: tensor.detach().cpu().clone() for name, tensor in network.state_dict().items()},
            }
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
        super().__setstate__(state)
        if network_state is not None:
            network = NoiseConditionedUNet(**network_state["config"])
            network.load_state_dict(network_state["weights"])
            self.network_ = network.eval()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        return tags
