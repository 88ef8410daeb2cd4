"""The floor of a denoised complex image (docs/method.md section 10): its error measured from the air by a
truncated Rayleigh moment, and removed by soft-thresholding the squared amplitude."""

from __future__ import annotations

import numpy as np
import pytest

from c2s_denoise.physics.complex_floor import complex_floor_error, shrink_complex_floor


def _image(s: float, amplitude: float = 8.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = np.zeros((256, 256), dtype=np.complex128)
    clean[64:192, 64:192] = amplitude * np.exp(1j * np.linspace(0, 3, 128))[None, :]
    return clean, clean + s * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))


@pytest.mark.parametrize("s", [0.03, 0.1, 0.3])
def test_the_error_is_measured_from_the_air(s: float) -> None:
    _, noisy = _image(s)
    assert complex_floor_error(noisy, threshold=1.0) == pytest.approx(s, rel=0.03)
    assert complex_floor_error(noisy[64:192, 64:192], threshold=1.0) == 0.0  # no air in view: nothing measured


def test_shrinkage_clears_the_air_and_keeps_the_tissue_and_its_phase() -> None:
    s = 0.15
    clean, noisy = _image(s)
    shrunk = shrink_complex_floor(noisy, complex_floor_error(noisy, 1.0), shrinkage=1.5)
    air, tissue = np.abs(clean) == 0, np.abs(clean) > 0
    assert np.abs(shrunk[air]).mean() < 0.25 * np.abs(noisy[air]).mean()  # the speckle floor is gone
    assert np.mean(np.abs(shrunk[air]) == 0) > 0.7  # most of the air is exactly zero
    assert abs(np.abs(shrunk[tissue]).mean() - 8.0) < 0.01  # amplitudes far above s: unchanged
    np.testing.assert_allclose(np.angle(shrunk[tissue]), np.angle(noisy[tissue]), atol=1e-12)
    expected_power = np.maximum(np.abs(noisy) ** 2 - 1.5 * 2 * complex_floor_error(noisy, 1.0) ** 2, 0)
    np.testing.assert_allclose(np.abs(shrunk) ** 2, expected_power, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(shrink_complex_floor(noisy, 0.1, shrinkage=0.0), noisy)


def test_the_estimator_returns_complex_images_with_a_flat_air() -> None:
    """C2S on complex images: with the default ``floor_shrinkage`` the air's magnitude falls far below the
    unshrunk output's, the tissue is as close to the clean image, and 0 gives the unshrunk output back."""
    from conftest import make_phantoms

    from c2s_denoise import C2SDenoiser

    rng = np.random.default_rng(0)
    clean = np.pad(make_phantoms(4, 48, seed=1), ((0, 0), (12, 12), (12, 12))) * np.exp(0.3j)
    noisy = clean + 0.1 * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))
    model = C2SDenoiser(sigma=0.1, max_iter=150, width=8, patch_size=32, random_state=0, context_slices=0).fit(noisy)
    shrunk = model.transform(noisy)
    plain = model.set_params(floor_shrinkage=0.0).transform(noisy)
    air, tissue = np.abs(clean) == 0, np.abs(clean) > 0.2
    assert np.abs(shrunk[air]).mean() < 0.5 * np.abs(plain[air]).mean()
    error = np.abs(np.abs(shrunk) - np.abs(clean))[tissue].mean()
    assert error <= 1.02 * np.abs(np.abs(plain) - np.abs(clean))[tissue].mean()
