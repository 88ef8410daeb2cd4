"""The smooth phase of a complex MR image, to take off before denoising and put back after.

A complex image ``x exp(i phi)`` carries its anatomy in the magnitude ``x`` and a phase ``phi``
that varies smoothly across the object (coil phases, B0, the receiver). Split into real and
imaginary parts, the anatomy is spread over both channels with weights ``cos phi`` and
``sin phi`` that change across the image, and a denoiser must learn it twice. Rotated by the
smooth phase, ``y exp(-i phi_s)`` holds the anatomy in the real part and little besides noise in
the imaginary part (1% of the energy in the brain of the SENSE benchmark, against 42% before).

The phase is that of the image smoothed by a Gaussian of ``width`` pixels in-plane,
``s = G * y``; where ``|s|`` is within ``min_snr`` times the RMS magnitude of smoothed noise alone
(``sqrt(2) sigma ||G||``, with ``||G|| = 1 / (2 sqrt(pi) width)`` for a 2-D Gaussian), the air,
the rotation is 1: there the smoothed noise would set the phase, and the rotated noise's real
part would keep a small positive mean. The noise of complex images is circularly symmetric, so
a rotation that depends on the image only through its smooth part leaves it white, of the same
level, in both parts.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["DEMODULATION_WIDTH", "MIN_PHASE_SNR", "PHASE_MARGIN", "smooth_phase"]

#: Width (pixels, standard deviation of the in-plane Gaussian) over which the phase is smoothed.
DEMODULATION_WIDTH = 4.0
#: Where the smoothed image is within this many times the smoothed noise's RMS magnitude, no rotation.
MIN_PHASE_SNR = 3.0
#: Pixels on each side that a window needs for its smooth phase to be the whole image's there: the
#: radius of scipy's Gaussian kernel (truncated at 4 standard deviations).
PHASE_MARGIN = int(4.0 * DEMODULATION_WIDTH + 0.5)


def smooth_phase(
    image: np.ndarray, sigma: float, *, width: float = DEMODULATION_WIDTH, min_snr: float = MIN_PHASE_SNR
) -> np.ndarray:
    """The smooth phase factor ``exp(i phi_s)`` of a complex image, 1 in the air.

    Parameters
    ----------
    image : ndarray, complex, shape (..., H, W)
        Complex image, slices or items along the leading axes (smoothed in-plane only).
    sigma : float
        Noise standard deviation per real component, in the image's units (white noise).
    width : float, default=4.0
        Standard deviation of the smoothing Gaussian, in pixels.
    min_snr : float, default=3.0
        Pixels where the smoothed image's magnitude is at most ``min_snr`` times the RMS
        magnitude of smoothed noise alone keep the rotation 1.

    Returns
    -------
    ndarray of complex128, the shape of ``image``
        Unit-modulus factors: ``image * conj(phase)`` is the demodulated image, and a denoised
        demodulated image times ``phase`` is back in the input's phase.

    Examples
    --------
    >>> y, x = np.mgrid[:64, :64] / 64.0
    >>> image = (1.0 + 0.5 * x) * np.exp(1j * (0.8 + 1.2 * y))
    >>> noisy = image + 0.05 * (np.random.default_rng(0).standard_normal((64, 64)) + 0j)
    >>> rotated = noisy * np.conj(smooth_phase(noisy, 0.05))
    >>> bool(np.abs(rotated.imag[8:-8, 8:-8]).mean() < 0.1 * np.abs(image.imag).mean())
    True
    """
    array = np.asarray(image)
    if not np.iscomplexobj(array):
        raise ValueError("smooth_phase needs a complex image")
    if array.ndim < 2:
        raise ValueError(f"expected an image (..., H, W), got shape {array.shape}")
    widths = (0.0,) * (array.ndim - 2) + (width, width)
    smoothed = ndimage.gaussian_filter(array.real, widths, mode="reflect") + 1j * ndimage.gaussian_filter(
        array.imag, widths, mode="reflect"
    )
    noise_rms = np.sqrt(2.0) * float(sigma) / (2.0 * np.sqrt(np.pi) * width)
    magnitude = np.abs(smoothed)
    return np.where(magnitude > min_snr * noise_rms, smoothed / np.where(magnitude > 0, magnitude, 1.0), 1.0 + 0j)
