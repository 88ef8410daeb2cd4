"""Image quality metrics: PSNR and SSIM (NumPy only), and the self-supervised SURE score.

Both take the intensity range from the reference, ``data_range =
reference.max() - reference.min()``, the usual convention for MRI (fastMRI,
M4Raw). SSIM follows Wang et al. (2004) with an 11-tap Gaussian window of
standard deviation 1.5, ``K1 = 0.01``, ``K2 = 0.03``, population (not sample)
covariances and symmetric padding, averaged over the slice interior: it
matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=...)``.

:func:`ssim_fastmri` is the SSIM the fastMRI challenge and papers quote: scikit-image's default
7x7 uniform window with sample covariances, and ``data_range = reference.max()`` of the whole
volume, per slice and averaged. :func:`ssim_function` gives either by name
(:data:`SSIM_CONVENTIONS`).

:func:`sure_psnr` scores a denoiser without a clean reference (what
:meth:`c2s_denoise.C2SDenoiser.score` returns); :func:`psnr_scorer` scores a fitted
:class:`~c2s_denoise.C2SDenoiser` against clean references, as a scikit-learn scorer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "DEFAULT_SSIM",
    "SSIM_CONVENTIONS",
    "SURE_PROBE_STEP",
    "data_range",
    "psnr",
    "psnr_from_mse",
    "psnr_scorer",
    "ssim",
    "ssim_fastmri",
    "ssim_function",
    "sure_psnr",
]

#: The SSIM conventions :func:`ssim_function` knows: "gaussian" (:func:`ssim`) and "fastmri"
#: (:func:`ssim_fastmri`).
SSIM_CONVENTIONS = ("gaussian", "fastmri")
#: The SSIM that ``evaluate`` reports unless told otherwise.
DEFAULT_SSIM = "gaussian"


def data_range(reference: np.ndarray) -> float:
    """Return ``reference.max() - reference.min()`` as a float.

    Parameters
    ----------
    reference : numpy.ndarray
        Reference image or volume.

    Returns
    -------
    float
        The intensity range.
    """
    ref = np.asarray(reference)
    if np.iscomplexobj(ref):
        ref = np.abs(ref)
    ref = ref.astype(np.float64, copy=False)
    return float(ref.max() - ref.min())


def _check(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kind = np.complex128 if np.iscomplexobj(image) or np.iscomplexobj(reference) else np.float64
    img = np.asarray(image, dtype=kind)
    ref = np.asarray(reference, dtype=kind)
    if img.shape != ref.shape:
        raise ValueError(f"image shape {img.shape} differs from reference shape {ref.shape}")
    if img.size == 0:
        raise ValueError("empty image")
    return img, ref


def psnr(image: np.ndarray, reference: np.ndarray, *, range_: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB.

    Parameters
    ----------
    image : numpy.ndarray
        Image or volume to score.
    reference : numpy.ndarray
        Reference of the same shape.
    range_ : float, optional
        Intensity range; default :func:`data_range` of ``reference``.

    Returns
    -------
    float
        ``10 log10(range^2 / MSE)``; ``inf`` when the images are equal. For complex images
        the MSE is the mean of ``|image - reference|^2`` and the range that of ``|reference|``.
    """
    img, ref = _check(image, reference)
    peak = data_range(ref) if range_ is None else float(range_)
    mse = float(np.mean(np.abs(img - ref) ** 2))
    if mse == 0.0:
        return float("inf")
    return psnr_from_mse(mse, peak)


def psnr_from_mse(mse: float, peak: float) -> float:
    """``10 log10(peak**2 / mse)`` in dB: the one PSNR formula of the package.

    Examples
    --------
    >>> psnr_from_mse(0.01, 1.0)
    20.0
    """
    return float(10.0 * np.log10(peak**2 / mse))


def psnr_scorer(estimator, X, y) -> float:
    """Mean PSNR in dB of the denoised ``X`` against clean references ``y``: a scikit-learn scorer.

    Use it where clean images exist, e.g.
    ``GridSearchCV(C2SDenoiser(...), params, scoring=psnr_scorer).fit(noisy, clean)``
    (:meth:`~c2s_denoise.C2SDenoiser.score` is the self-supervised score and ignores ``y``).

    Parameters
    ----------
    estimator : C2SDenoiser or Pipeline
        A fitted :class:`~c2s_denoise.C2SDenoiser`, or a fitted ``Pipeline`` ending in one (the
        steps before it transform ``X`` first).
    X : array-like, list of array-like, or dict
        Noisy images, in any layout the denoiser accepts.
    y : array-like, list of array-like, or dict
        Clean references in the layout and shapes of ``X`` (a ``ValueError`` otherwise).

    Returns
    -------
    float
        :func:`psnr` of each denoised image/volume (and target contrast) against its reference,
        with the reference's :func:`data_range` (for complex images: the range of ``|y|`` and
        the mean of ``|f(x) - y|^2``), averaged.
    """
    if hasattr(estimator, "steps"):  # a Pipeline (not imported: this module needs only NumPy)
        X = estimator[:-1].transform(X) if len(estimator.steps) > 1 else X
        estimator = estimator[-1]
    reference_psnrs = getattr(estimator, "_reference_psnrs", None)
    if reference_psnrs is None:
        raise TypeError(f"psnr_scorer scores a C2SDenoiser or a Pipeline ending in one, not {type(estimator).__name__}")
    return float(np.mean(reference_psnrs(X, y)))


#: Step of the Monte-Carlo divergence probe of SURE, in units of sigma (Ramani et al. 2008).
SURE_PROBE_STEP = 1e-2


def sure_psnr(
    noisy: np.ndarray,
    denoised: np.ndarray,
    sigma: float,
    peak: float,
    denoise: Callable[[np.ndarray], np.ndarray],
    rng: np.random.Generator,
) -> float:
    """Self-supervised PSNR: ``peak`` against the SURE estimate of the MSE to a repeated scan.

    ``R = |f(y) - y|^2 / N + 2 sigma^2 div f / N``, with the divergence from one Monte-Carlo
    probe (Ramani et al. 2008), is Stein's unbiased risk estimate plus ``sigma**2``: it
    estimates the MSE of ``f(y)`` against an independent noisy repetition of the scan. Returns
    ``10 log10(peak**2 / R)`` (``R`` at least ``1e-12 peak**2``).

    Parameters
    ----------
    noisy : ndarray
        The noisy image ``y`` (real or complex; ``N`` counts its real components).
    denoised : ndarray
        ``f(y)``, same shape.
    sigma : float
        Noise level (per real component) of ``noisy``, > 0.
    peak : float
        The intensity that plays the data range.
    denoise : callable
        ``f``: the denoiser, applied to ``noisy`` plus a small probe.
    rng : numpy.random.Generator
        Draws the probe.

    Returns
    -------
    float
        In dB; the identity map ``f(y) = y`` scores ``10 log10(peak**2 / (2 sigma**2))``.
    """
    epsilon = SURE_PROBE_STEP * sigma
    is_complex = np.iscomplexobj(noisy)
    probe = rng.standard_normal(noisy.shape)
    if is_complex:
        probe = probe + 1j * rng.standard_normal(noisy.shape)
    perturbed = noisy.astype(np.complex128 if is_complex else np.float64, copy=True)
    perturbed += epsilon * probe
    response = denoise(perturbed)
    # real inner product of the probe with the response: the divergence over all real components
    divergence = float(np.sum(np.real(np.conj(probe) * (response - denoised)))) / epsilon
    n = probe.size * (2 if is_complex else 1)
    # SURE + sigma^2: estimated MSE against an independent noisy repetition
    risk = float(np.sum(np.abs(denoised - noisy) ** 2)) / n + 2.0 * sigma**2 * divergence / n
    return psnr_from_mse(max(risk, 1e-12 * peak**2), peak)


def _gaussian_kernel(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def _filter(stack: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable filtering of the last two axes with symmetric padding."""
    radius = kernel.size // 2
    out = stack
    for axis in (-2, -1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="symmetric")
        length = out.shape[axis]
        acc = np.zeros_like(out)
        for k, weight in enumerate(kernel):
            acc += weight * np.take(padded, np.arange(k, k + length), axis=axis)
        out = acc
    return out


def _ssim_map(
    img: np.ndarray,
    ref: np.ndarray,
    local_mean: Callable[[np.ndarray], np.ndarray],
    c1: float,
    c2: float,
    norm: float = 1.0,
) -> np.ndarray:
    """The SSIM of each window: local means, (co)variances scaled by ``norm``, the stabilised ratio."""
    mu_x, mu_y = local_mean(img), local_mean(ref)
    var_x = norm * (local_mean(img * img) - mu_x**2)
    var_y = norm * (local_mean(ref * ref) - mu_y**2)
    cov = norm * (local_mean(img * ref) - mu_x * mu_y)
    return (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(
    image: np.ndarray,
    reference: np.ndarray,
    *,
    range_: float | None = None,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Structural similarity index, computed per 2-D slice and averaged.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` image or ``(D, H, W)`` volume to score.
    reference : numpy.ndarray
        Reference of the same shape.
    range_ : float, optional
        Intensity range ``L``; default :func:`data_range` of the whole reference.
    sigma : float, default 1.5
        Standard deviation of the Gaussian window (truncated at 3.5 sigma).
    k1, k2 : float
        Stabilising constants, ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``.

    Returns
    -------
    float
        Mean SSIM over all slices (the window's half-width is excluded at the
        borders, as in scikit-image).
    """
    img, ref = _check(image, reference)
    if img.ndim == 2:
        img, ref = img[np.newaxis], ref[np.newaxis]
    if img.ndim != 3:
        raise ValueError(f"expected a 2-D image or 3-D volume, got shape {img.shape}")
    peak = data_range(ref) if range_ is None else float(range_)
    if peak <= 0:
        peak = 1.0
    kernel = _gaussian_kernel(sigma)
    smap = _ssim_map(img, ref, lambda stack: _filter(stack, kernel), (k1 * peak) ** 2, (k2 * peak) ** 2)
    pad = kernel.size // 2
    if smap.shape[-2] > 2 * pad and smap.shape[-1] > 2 * pad:
        smap = smap[:, pad:-pad, pad:-pad]
    return float(smap.mean())


#: fastMRI's window: scikit-image's default, 7 x 7 uniform.
_FASTMRI_WINDOW = 7


def _box_mean(stack: np.ndarray, size: int) -> np.ndarray:
    """Mean over every ``size`` x ``size`` window that fits inside each slice (a "valid" uniform filter)."""
    out = stack
    for axis in (-2, -1):
        length = out.shape[axis] - size + 1
        shape = list(out.shape)
        shape[axis] = length
        acc = np.zeros(shape)
        for k in range(size):
            acc += np.take(out, np.arange(k, k + length), axis=axis)
        out = acc / size
    return out


def ssim_fastmri(image: np.ndarray, reference: np.ndarray, *, maxval: float | None = None) -> float:
    """SSIM as the fastMRI challenge computes it (``fastmri.evaluate.ssim``).

    Each slice is scored with ``skimage.metrics.structural_similarity(reference_slice,
    image_slice, data_range=maxval)`` at scikit-image's defaults (7 x 7 uniform window, sample
    covariances ``N / (N - 1)``, ``K1 = 0.01``, ``K2 = 0.03``, the 3-pixel border left out), with
    ``maxval`` the maximum of the whole reference volume, and the slices' scores are averaged.
    Implemented in NumPy; it agrees with scikit-image to rounding.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` image or ``(D, H, W)`` volume to score (complex: its magnitude).
    reference : numpy.ndarray
        Reference of the same shape (complex: its magnitude).
    maxval : float, optional
        The data range; default ``reference.max()``.

    Returns
    -------
    float
        Mean SSIM over the slices.
    """
    img, ref = _check(image, reference)
    if np.iscomplexobj(img):
        img, ref = np.abs(img), np.abs(ref)
    if img.ndim == 2:
        img, ref = img[np.newaxis], ref[np.newaxis]
    if img.ndim != 3:
        raise ValueError(f"expected a 2-D image or 3-D volume, got shape {img.shape}")
    size = _FASTMRI_WINDOW
    if min(img.shape[-2:]) < size:
        raise ValueError(f"the fastMRI SSIM needs slices of at least {size} x {size} pixels, got {img.shape[-2:]}")
    peak = float(ref.max()) if maxval is None else float(maxval)
    norm = size * size / (size * size - 1.0)  # sample covariances, as scikit-image
    smap = _ssim_map(img, ref, lambda stack: _box_mean(stack, size), (0.01 * peak) ** 2, (0.03 * peak) ** 2, norm)
    return float(np.mean(smap.mean(axis=(-2, -1))))


def ssim_function(convention: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """The SSIM of a convention of :data:`SSIM_CONVENTIONS`: "gaussian" (:func:`ssim`) or "fastmri"
    (:func:`ssim_fastmri`), as ``f(image, reference)``.

    Raises
    ------
    ValueError
        For another name.
    """
    functions = {"gaussian": ssim, "fastmri": ssim_fastmri}
    if convention not in functions:
        raise ValueError(f"ssim must be one of {', '.join(map(repr, SSIM_CONVENTIONS))}, got {convention!r}")
    return functions[convention]
