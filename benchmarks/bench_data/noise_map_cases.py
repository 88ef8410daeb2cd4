"""Noise that varies across the image, for the noise-map estimator's tests and accuracy benchmark.

Relative maps of the kinds clinical scans have (:func:`true_map`: a left-right ramp, a bias field,
a SENSE-like g-factor, a constant), noise of a given per-pixel level under four models
(:func:`add_noise`: real and complex Gaussian, Rician, 4-coil noncentral chi), and a complex SENSE
reconstruction with its exact noise map (:func:`sense_case`, 8 simulated coils). numpy, and
``c2s_denoise.physics`` for SENSE.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MODELS", "add_noise", "sense_case", "true_map"]

#: name: (noise_model, n_coils) of :func:`c2s_denoise.physics.noise.estimate_noise_map`
MODELS = {
    "gaussian": ("gaussian", 1.0),
    "complex": ("gaussian", 1.0),
    "rician": ("rician", 1.0),
    "ncchi4": ("ncchi", 4.0),
}


def true_map(kind: str, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth relative noise map of ``shape``: ``"lr"``, ``"bias"``, ``"gfactor"`` or ``"const"``."""
    height, width = shape
    y, x = np.meshgrid(np.linspace(0.0, 1.0, height), np.linspace(0.0, 1.0, width), indexing="ij")
    rng = np.random.default_rng(seed)
    if kind == "lr":  # 0.65 at the left edge to 1.6 at the right
        return 0.65 + 0.95 * (0.5 - 0.5 * np.cos(np.pi * x))
    if kind == "bias":  # four wide random bumps, rescaled to 0.6 .. 1.6
        field = np.zeros(shape)
        for _ in range(4):
            cy, cx = rng.uniform(0.0, 1.0, 2)
            width_ = rng.uniform(0.25, 0.45)
            field += rng.uniform(-1.0, 1.0) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * width_**2))
        return 0.6 + (field - field.min()) / (field.max() - field.min())
    if kind == "gfactor":  # sqrt(R) g, R = 3: 2.5 times higher at the top and bottom, three bumps
        g = 1.0 + 1.5 * (2.0 * y - 1.0) ** 2
        for _ in range(3):
            cy, cx = rng.uniform(0.2, 0.8, 2)
            g += 0.3 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 0.12**2))
        return np.sqrt(3.0) * g / np.mean(np.sqrt(3.0) * g)
    if kind == "const":
        return np.ones(shape)
    raise ValueError(kind)


def add_noise(clean: np.ndarray, sigma: np.ndarray, model: str, seed: int) -> np.ndarray:
    """``clean`` with noise of per-component level ``sigma`` (per pixel) of the model ``model``."""
    rng = np.random.default_rng(seed)
    if model == "gaussian":
        return clean + sigma * rng.standard_normal(clean.shape)
    if model == "complex":
        return clean + sigma * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))
    coils = {"rician": 1, "ncchi4": 4}[model]
    total = (clean + sigma * rng.standard_normal(clean.shape)) ** 2
    total += (sigma * rng.standard_normal(clean.shape)) ** 2
    for _ in range(coils - 1):  # RSS: the signal on one coil is the same law as spread over all
        total += (sigma * rng.standard_normal(clean.shape)) ** 2 + (sigma * rng.standard_normal(clean.shape)) ** 2
    return np.sqrt(total)


def sense_case(clean: np.ndarray, acceleration: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A complex SENSE image of ``clean`` (8 coils, uniform undersampling) and its exact noise map."""
    from c2s_denoise.physics.sense import normalise_coil_maps, sense_noise_map, sense_reconstruct, undersample
    from c2s_denoise.physics.simulate import coil_maps, noise_covariance

    height = -(-clean.shape[0] // acceleration) * acceleration  # pad to a multiple of R
    padded = np.zeros((height, clean.shape[1]), dtype=np.complex128)
    padded[: clean.shape[0]] = clean * np.exp(0.5j * np.linspace(-1.0, 1.0, clean.shape[1]))[None]
    maps = normalise_coil_maps(coil_maps(8, padded.shape, seed=0))
    psi = noise_covariance(8, 1.0, seed=0)
    coil_sigma = 0.027
    aliased = undersample(padded, maps, acceleration, coil_sigma, seed=seed, noise_covariance=psi)
    image = sense_reconstruct(aliased, maps, acceleration, psi)[: clean.shape[0]]
    return image, sense_noise_map(maps, acceleration, coil_sigma, psi)[: clean.shape[0]]
