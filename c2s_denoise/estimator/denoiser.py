"""The scikit-learn estimator :class:`C2SDenoiser`: its parameters, their reference, ``fit`` and ``transform``.

Its other methods and private steps are mixins in this package: :mod:`._reading`, :mod:`._fitting`,
:mod:`._inference`, :mod:`._persistence`, :mod:`._table_output`; its parameters' constraints are
:data:`._parameters.PARAMETER_CONSTRAINTS`, checked by :func:`._parameters.validate_params`.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin

from ._fitting import FittingMixin
from ._inference import InferenceMixin
from ._parameters import validate_params
from ._persistence import PersistenceMixin
from ._reading import ReadingMixin
from ._table_output import TableOutputMixin

__all__ = ["C2SDenoiser"]


class C2SDenoiser(
    TableOutputMixin, PersistenceMixin, FittingMixin, InferenceMixin, ReadingMixin, TransformerMixin, BaseEstimator
):
    """Corruption2Self (C2S): self-supervised, score-based denoiser for magnitude MRI.

    Trains a noise-level-conditioned U-Net on the noisy images themselves with the generalized
    denoising score matching (GDSM) loss of Tu, Shi & Lam (ICLR 2025), then denoises with one
    forward pass at the data noise level. No clean image is ever needed.

    Parameters
    ----------
    sigma : float, {"auto", "wavelet", "background", "foreground", "rayleigh", "local"}, dict or arrays, default="auto"
        Noise standard deviation in the input's units, finite and > 0 (for complex or magnitude
        data: of each real component of the complex noise), or how to estimate it per
        image/volume: ``"wavelet"`` is the wavelet MAD estimator (the paper's),
        ``"background"`` fits the noncentral-chi background of magnitude images (with
        ``n_coils``), ``"foreground"`` the wavelet MAD over bright tissue only, ``"rayleigh"``
        is ``"background"`` with one coil.
        ``"auto"`` picks ``"wavelet"`` for Gaussian noise and, for magnitude noise, the
        background estimator when the image has enough air and the foreground one otherwise
        (the choice is kept in ``sigma_methods_``). With ``contrasts``, a dict
        ``{contrast: float or method}`` sets it per contrast; a single value applies to every
        contrast (a method is then applied to each contrast separately).
        Noise that varies across the image (g-factor, bias-field correction): a noise map per
        item of the item's shape (a list, or an array in the layout of ``X``), or ``"local"``
        to estimate one per item. The item is divided by the map relative to its median,
        denoised at that level and multiplied back (docs/method.md section 11); for new images
        give their maps with ``set_params(sigma=[...])`` before :meth:`transform`. Maps take one
        contrast and images held in memory. With one level per item, ``fit`` warns when an
        item's local noise map spans more than a factor 1.25 (10th to 90th percentile).
    noise_model : {"auto", "gaussian", "rician", "ncchi"}, default="auto"
        Distribution of the noise. ``"gaussian"``: additive white Gaussian noise (complex data,
        real images with negative values). ``"rician"`` / ``"ncchi"``: magnitude images of one /
        ``n_coils`` root-sum-of-squares coils (``magnitude_correction``; docs/method.md section
        10). ``"auto"``: Gaussian for complex input or input with negative values, otherwise
        noncentral chi with ``n_coils`` coils (Rician for 1; fitted to the air by default).
    n_coils : float or "auto", default="auto"
        Coils behind a root-sum-of-squares magnitude image (``noise_model`` "ncchi" or "auto"); a
        non-integer, effective number is accepted (correlated coils act as fewer, noisier ones).
        ``"auto"``: the effective number and ``sigma`` are fitted together to the air of the
        magnitude images (median over the items, below 1.1 read as one coil; one coil, with a
        warning, where there is no air); the number used is in ``n_coils_``.
    magnitude_correction : {"vst", "mean"}, default="vst"
        Magnitude noise (``noise_model_`` "rician"/"ncchi"). ``"vst"``: the network denoises the
        variance-stabilised magnitude (noise close to Gaussian of level ``sigma`` at every signal
        level, air included), its output goes through the exact unbiased inverse of the stabilised
        mean; ``"mean"``: it denoises the magnitude and the mean ``E[M | A]`` of its output is
        inverted (docs/method.md section 10). Ignored for Gaussian noise.
    floor_shrinkage : float, default=2.0
        With ``magnitude_correction="vst"``: near the air's level the exact inverse is a square
        root that turns the denoised image's small residual errors into scattered bright pixels;
        the estimate of ``A**2`` there is soft-thresholded by this many spreads of that error,
        measured on each denoised item below the air's level where a 5 x 5 median is near the
        floor (air, not dark tissue; docs/method.md section 10). 0 keeps the exact unbiased
        inverse. Complex images: ``|x|**2`` is estimated as ``max(|z|**2 - t 2 s**2, 0)``, ``s``
        the error's spread below the noise level. Applied at ``transform`` (changeable after ``fit``).
    refinement : float, default=0.0
        Detail refinement ``rho = sigma_target / sigma_data`` in ``[0, 1)``. 0 gives the MMSE
        denoiser; larger values keep a fraction ``rho**2`` of the noisy image's fine texture.
    tau_max : float, default=1.5
        Largest added training noise, in ``(0, 100]``, in units of the data noise level ``sigma_data``.
        Larger values cover more levels but need longer training (1.5 was best for 1-minute CPU fits; 5 lost 3 dB).
    noise_schedule : {"added", "total", "fixed"}, default="added"
        ``"added"`` samples the added noise ``tau ~ U(0, tau_max sigma_data]`` (the paper's
        reparameterisation); ``"total"`` samples the total level uniformly (ablation);
        ``"fixed"`` uses ``tau = tau_max sigma_data`` (``tau_max=1``: Noisier2Noise).
    loss_alpha : float, default=0.0
        Exponent of the loss weight ``(sigma_t**2) ** loss_alpha``.
    loss_weighting : {"inverse_variance", "raw"}, default="raw"
        Per-sample weight of the GDSM loss over the added noise ``tau``: ``"raw"`` is the
        paper's unweighted loss, whose weight on the denoiser's error vanishes as ``tau -> 0``
        where inference happens; ``"inverse_variance"`` divides each sample's loss by
        ``lambda_out``, weighting the denoiser's error by the inverse variance of its implied
        regression target (docs/method.md section 2). Both have the same minimiser.
    width : int, default=16
        Channels of the U-Net's first level (doubled at each level).
    depth : int, default=3
        Resolution levels of the U-Net.
    attention : bool, default=False
        Self-attention at the U-Net's lowest resolution.
    noise_conditioning : bool, default=True
        Condition the network on the noise level (False: plain U-Net, for ablations).
    max_iter : int or "auto", default="auto"
        Optimiser steps per network, at least 1. ``"auto"``: 8000 from random weights (about 3
        minutes on 2 CPU cores in bfloat16, see ``precision``); from the prior or a warm start,
        about 500 passes over the training pixels, at most 8000 (1778 for one 256 x 256 slice):
        longer, a fit on few slices memorises their noise (docs/method.md section 4).
    max_time : float, default=None
        Training time budget in seconds (per network): training stops at ``max_iter`` steps or
        ``max_time`` seconds, whichever comes first, with the learning-rate schedule laid out over
        the budget. A time-limited fit is reproducible in steps only, not on another machine.
    batch_size : int, default=8
        Training patches per step.
    patch_size : int, default=48
        Side of the square training patches.
    learning_rate : float or "auto", default="auto"
        Peak learning rate (AdamW, linear warm-up then cosine decay), in ``(0, 1]``; ``"auto"``:
        5e-3 from random weights, 1e-3 from the prior or a warm start. A non-finite loss is rolled
        back by the divergence guard once it holds a healthy state (after the warm-up); before
        that, ``fit`` raises a ``FloatingPointError`` naming the step.
    ema_decay : float, default=0.999
        Decay of the exponential moving average of the weights used for inference (with warm-up).
    air_weight : float or "auto", default="auto"
        Probability of keeping a drawn training patch that holds only background noise (air):
        patches whose root-mean-square is below the noise's own plus one ``sigma``
        (docs/method.md section 3); 1 draws patches uniformly over the field of view. ``"auto"``:
        0.125 from random weights (the steps go to tissue), 1 from the prior or a warm start.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of training: ``"bfloat16"`` runs the network's convolutions in bfloat16 mixed
        precision (weights, optimiser, EMA and loss stay float32); ``"auto"`` uses it where the
        device multiplies bfloat16 natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs from
        compute capability 8.0) and float32 elsewhere. Inference is always float32. The
        choice is in ``training_dtype_``.
    self_ensemble : bool, default=True
        Average the output over the 8 flips/rotations (8x the inference cost, small next to the
        fit; +0.2 to +0.4 dB on the benchmarks). False: one forward pass.
    multiplanar : bool, default=True
        A 2-D network also denoises volumes of 16 slices or more along their other two axes, the
        planes weighted by Stein's unbiased risk estimate (SURE) on each volume (docs/method.md
        section 6; several times the inference); lazily read volumes keep their slices. False: off.
    sure_filter : bool, default=True
        With ``multiplanar``, mix the planes by the 3 x 3 x 3 linear filter over each that minimises SURE on the
        volume (fitted on the same single passes as the weights; docs/method.md section 6). False: the weights.
    inference_batch_size : int, default=8
        Slices per forward pass in ``transform`` on a GPU; on the CPU one at a time, so that a
        slice's result does not depend on the slices denoised with it.
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
    context_slices : int or "auto", default="auto"
        ``k > 0`` gives the network slices ``z - k .. z + k`` of every contrast as conditioning
        channels when it denoises slice ``z`` of a volume (2.5-D context; the loss acts on slice
        ``z`` only). Needs volumes of at least ``2k`` slices; a neighbour beyond the volume's end
        is replaced by its mirror about ``z``. ``0``: each slice alone. ``"auto"``: 1 when every
        item is a volume of at least 2 slices and the network is 2-D (it beat slice-by-slice on
        every MNI152 volume case, docs/method.md section 6), 0 otherwise. Fitted: ``context_slices_``.
    spatial_dims : {2, 3, "auto"}, default=2
        2: one 2-D network denoises every slice (images and volumes alike). 3: a 3-D U-Net
        trained on ``(patch_depth, patch_size, patch_size)`` patches denoises whole volumes
        (4-D input or a list of ``(D, H, W)``; docs/method.md section 6, "Volumes"); each volume needs at
        least ``2 ** (depth - 1)`` slices, voxels may be anisotropic (thick slices). ``"auto"``:
        3 when every item is a volume (and ``context_slices`` is 0 or "auto"), 2 otherwise. Which one a
        fitted model uses: ``spatial_dims_``.
    patch_depth : int, default=16
        Slices of the 3-D training patches (limited by the thinnest volume); unused with 2-D networks.
    conv3d : {"full", "separable"}, default="full"
        The 3-D network's residual convolutions: 3x3x3, or a 1x3x3 followed by a 3x1x1
        ("(2+1)-D", less arithmetic per voxel); unused with 2-D networks.
    init : {"prior", "random"}, default="prior"
        Where training starts: ``"prior"``, the weights of the network fitted once (self-supervised)
        on noisy brain MRI that ships with the package, for networks of its shape (2-D, one real
        channel in and out: no context slices or other contrasts; the default ``width``, ``depth``,
        ``attention``, conditioning); others, and ``"random"``, from random weights
        (docs/method.md section 4). Which one a fit used: ``init_``.
    warm_start : bool, default=False
        When fitted, ``fit`` continues training the fitted networks (``n_iter_`` and ``loss_curve_``
        add up; noise levels are measured on the new X, of the same contrasts and kind).
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
    phase_demodulated_ : bool
        Whether complex images are rotated by their smooth phase before the network and back
        after (every model fitted on complex images since this attribute exists).
    init_ : str
        ``"prior"`` if the networks started from the shipped prior, ``"random"`` otherwise.
    noise_model_ : str
        The noise model used: "gaussian", "rician" or "ncchi".
    n_coils_ : float
        Coils behind the magnitude images: ``n_coils``, or its estimate for ``"auto"``.
    magnitude_correction_ : str
        How magnitude noise was handled: ``magnitude_correction`` at fit time ("mean" for models
        saved before the stabilised path existed).
    sigma_methods_ : ndarray of str, same shape as ``sigma_``
        How each noise level was obtained: an estimator's name, "given", or for noise maps "map"
        (given) or "local" (estimated).
    network_ : torch.nn.Module
        The trained network (EMA weights), in evaluation mode. Only without ``contrasts``.
    spatial_dims_ : int
        2 (slice by slice) or 3 (volumes): the fitted networks' dimensions (``spatial_dims``
        resolved for the training data).
    context_slices_ : int
        Neighbouring slices each side that the fitted networks take (``context_slices``
        resolved for the training data); ``transform`` uses it, whatever ``context_slices`` is
        set to after the fit.
    networks_ : dict of str to torch.nn.Module
        With ``contrasts``: the network of each target contrast.
    contrasts_ : tuple of str
        With ``contrasts``: the contrasts the model was fitted on, in order.
    target_contrasts_ : tuple of str
        With ``contrasts``: the contrasts that have a network.
    sigma_ : ndarray of shape (n_volumes,) or (n_volumes, n_contrasts)
        Noise level of each training image/volume (and contrast) in input units; with noise
        maps, the median of each item's map.
    scales_ : ndarray of shape (n_volumes,) or (n_volumes, n_contrasts)
        Intensity scale (99.5th percentile of the magnitude) of each training image/volume
        (and contrast).
    n_iter_ : int
        Optimiser steps done, summed over the target contrasts' networks (fewer than
        ``max_iter`` per network if interrupted or stopped by ``max_time``).
    loss_curve_ : list of float
        GDSM loss at each step (the networks' curves one after the other).
    fit_time_ : float
        Seconds spent in the training loop.
    interrupted_ : bool
        Whether the last fit was interrupted (its weights are those reached; saved as ``partial``).
    device_ : str
        Device the model was trained on.
    training_dtype_ : str
        Arithmetic of the training passes, ``"float32"`` or ``"bfloat16"`` (see ``precision``).
    n_features_in_ : int
        Only for 2-D input: pixels per row.

    Notes
    -----
    Each image (3-D input) or volume (4-D input, list items) is normalised by its own intensity
    scale and has its own noise level; pass a volume as ``(1, D, H, W)`` or ``[volume]`` so that
    its slices share one scale. Outputs come back in the input's units, shape and float dtype.

    ``score(X)`` returns a SURE-based estimate (no clean data needed), see :meth:`score`; with
    clean references, score with :func:`c2s_denoise.psnr_scorer`.

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

    def __init__(
        self,
        *,
        sigma="auto",
        noise_model="auto",
        n_coils="auto",
        magnitude_correction="vst",
        floor_shrinkage=2.0,
        refinement=0.0,
        tau_max=1.5,
        noise_schedule="added",
        loss_alpha=0.0,
        loss_weighting="raw",
        width=16,
        depth=3,
        attention=False,
        noise_conditioning=True,
        max_iter="auto",
        max_time=None,
        batch_size=8,
        patch_size=48,
        learning_rate="auto",
        ema_decay=0.999,
        air_weight="auto",
        precision="auto",
        self_ensemble=True,
        multiplanar=True,
        sure_filter=True,
        inference_batch_size=8,
        image_shape=None,
        contrasts=None,
        target_contrasts=None,
        context_slices="auto",
        spatial_dims=2,
        patch_depth=16,
        conv3d="full",
        init="prior",
        warm_start=False,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.sigma = sigma
        self.noise_model = noise_model
        self.n_coils = n_coils
        self.magnitude_correction = magnitude_correction
        self.floor_shrinkage = floor_shrinkage
        self.refinement = refinement
        self.tau_max = tau_max
        self.noise_schedule = noise_schedule
        self.loss_alpha = loss_alpha
        self.loss_weighting = loss_weighting
        self.width = width
        self.depth = depth
        self.attention = attention
        self.noise_conditioning = noise_conditioning
        self.max_iter = max_iter
        self.max_time = max_time
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.learning_rate = learning_rate
        self.ema_decay = ema_decay
        self.air_weight = air_weight
        self.precision = precision
        self.self_ensemble = self_ensemble
        self.multiplanar = multiplanar
        self.sure_filter = sure_filter
        self.inference_batch_size = inference_batch_size
        self.image_shape = image_shape
        self.contrasts = contrasts
        self.target_contrasts = target_contrasts
        self.context_slices = context_slices
        self.spatial_dims = spatial_dims
        self.patch_depth = patch_depth
        self.conv3d = conv3d
        self.init = init
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _validate_params(self) -> None:
        """Check every parameter (:func:`._parameters.validate_params`): an ``InvalidParameterError`` names the bad one."""
        validate_params(self)

    def fit(self, X, y=None):
        """Train the denoiser on noisy images only.

        Parameters
        ----------
        X : array-like, list of array-like, or dict
            Noisy images: ``(n, H, W)``, volumes ``(n, D, H, W)``, a list of
            ``(H, W)``/``(D, H, W)`` arrays, or 2-D rows (see ``image_shape``); real (magnitude
            or real-valued images) or complex (e.g. coil-combined images, see
            :func:`c2s_denoise.physics.coil_combination.combine_coils`). With ``contrasts`` (real
            only): ``(n, n_contrasts, H, W)``, ``(n, n_contrasts, D, H, W)``, a list of
            ``(n_contrasts, ...)`` arrays, or a dict ``{contrast: images}``.
        y : None
            Ignored; there for the scikit-learn API.

        Returns
        -------
        self : C2SDenoiser
        """
        self._validate_params()
        return self._fit(X)

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
            Denoised images, same layout, shape and dtype as ``X`` (float64 for integer input), in
            the input's units; contrasts that are not targets come back unchanged; ``X`` is not modified.
            With ``set_output(transform="pandas")``, 2-D rows come back as a DataFrame with the columns
            :meth:`get_feature_names_out` names; images and volumes raise a ``ValueError`` (tables hold rows).
        """
        self._check_table_output(X)
        return self.denoise(X)[0]
