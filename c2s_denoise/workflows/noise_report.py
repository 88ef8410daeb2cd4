"""``estimate-noise``: the noise level of each file by every estimator, and the coil noise of k-space files."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..estimator._noise_levels import coils, resolve_coils
from ..io import C2SInputError, ReadOptions, detect_format, load_image
from ._common import PathLike, Progress, check_inputs

__all__ = ["estimate_noise_files"]


def estimate_noise_files(
    inputs: Sequence[PathLike],
    *,
    read_options: ReadOptions | None = None,
    progress: Progress | None = None,
    n_coils: float | str = "auto",
    noise_model: str = "auto",
) -> dict[str, Any]:
    """Estimate the noise level of each file with every estimator, and say which ``auto`` uses.

    Parameters
    ----------
    inputs : sequence of path-like
        Image files.
    read_options : ReadOptions, optional
        How the files are read; with ``combine`` "auto" the estimators see the magnitude
        image (the stored reconstruction, or the RSS of the coils), and the coil noise
        covariance of files with k-space is reported beside it.
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.
    n_coils : float or "auto", default "auto"
        Coils behind a root-sum-of-squares magnitude image (background, foreground and ``auto``
        estimators; Rayleigh is the one-coil estimator). ``"auto"`` fits the effective number to
        each file's air, as :class:`~c2s_denoise.C2SDenoiser` does with ``n_coils="auto"`` (one coil
        for complex images, Gaussian noise, or a file without enough air, with a warning).
    noise_model : {"auto", "gaussian", "rician", "ncchi"}, default "auto"
        As :class:`~c2s_denoise.C2SDenoiser`'s ``noise_model``, for the ``auto`` choice.

    Returns
    -------
    dict
        ``results``: per file its shape, ``images`` ("magnitude" or "complex"), ``n_coils`` (the
        coils the magnitude estimators assumed) and ``n_coils_from`` ("given" or "auto"), ``sigma_<method>``
        for the wavelet, background, foreground and Rayleigh estimators (None with a
        ``<method>_error`` when an estimator cannot work on the image), ``auto`` (the noise
        model, estimator and level that ``sigma="auto"`` uses) and, for files with k-space,
        ``kspace_noise`` (per-coil noise level per real component, the largest coil
        correlation, and the covariance as real and imaginary parts).
    """
    from ..io.kspace import kspace_noise_covariance
    from ..physics.noise import auto_noise_level, estimate_sigma, resolve_noise_model

    options = read_options or ReadOptions()
    magnitude_options = dataclasses.replace(options, combine="rss") if options.combine == "auto" else options
    paths = check_inputs(inputs, magnitude_options)
    results = []
    for index, path in enumerate(paths):
        data = load_image(path, magnitude_options).data
        is_complex = bool(np.iscomplexobj(data))
        entry: dict[str, Any] = {
            "file": str(path),
            "shape": list(data.shape),
            "images": "complex" if is_complex else "magnitude",
        }
        try:
            fitted = resolve_coils(n_coils, noise_model, [data], str(path))
            model = resolve_noise_model([data], noise_model, n_coils=fitted)
        except ValueError as exc:
            raise C2SInputError(path, str(exc)) from None
        n = coils(model, fitted)  # the estimator's rule: the coils count for noncentral chi noise only
        entry["n_coils"], entry["n_coils_from"] = float(n), "auto" if n_coils == "auto" else "given"
        for method in ("wavelet", "background", "foreground", "rayleigh"):
            try:
                if is_complex and method != "wavelet":
                    raise ValueError("a magnitude-image estimator; the complex images have Gaussian noise")
                entry[f"sigma_{method}"] = float(estimate_sigma(data, method, n_coils=1 if method == "rayleigh" else n))
            except ValueError as exc:
                entry[f"sigma_{method}"] = None
                entry[f"{method}_error"] = str(exc)
        try:
            level, chosen = auto_noise_level(data, model, n_coils=n)
        except ValueError as exc:
            level, chosen = None, None
            entry["auto_error"] = str(exc)
        entry["auto"] = {"noise_model": model, "estimator": chosen, "sigma": level}
        if detect_format(path) == "hdf5" and options.combine != "rss":
            covariance = kspace_noise_covariance(path)
            if covariance is not None:
                levels = np.sqrt(np.real(np.diag(covariance)) / 2.0)
                correlation = np.abs(covariance) / np.sqrt(
                    np.outer(np.real(np.diag(covariance)), np.real(np.diag(covariance)))
                )
                np.fill_diagonal(correlation, 0.0)
                entry["kspace_noise"] = {
                    "n_coils": int(covariance.shape[0]),
                    "sigma_per_coil": [float(v) for v in levels],
                    "sigma_mean": float(np.sqrt(np.mean(levels**2))),
                    "max_correlation": float(correlation.max()) if covariance.shape[0] > 1 else 0.0,
                    "covariance_real": np.real(covariance).tolist(),
                    "covariance_imag": np.imag(covariance).tolist(),
                }
        results.append(entry)
        if progress:
            progress(index + 1, len(paths))
    return {"command": "estimate-noise", "n_files": len(results), "results": results}
