"""The smooth phase of complex images (physics/phase.py; docs/method.md, "Complex images: the smooth phase"):
taken off before the network and put back after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_phantoms

from c2s_denoise import C2SDenoiser
from c2s_denoise.physics.phase import PHASE_MARGIN, smooth_phase


def _smooth_phase_image(size: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An object with a phase ramp of 3 rad across it, in air; and a noisy copy (sigma 0.05)."""
    y, x = np.mgrid[:size, :size] / size
    clean = np.zeros((size, size), dtype=np.complex128)
    inside = (slice(16, size - 16), slice(16, size - 16))
    clean[inside] = ((1.0 + 0.5 * x) * np.exp(1j * (3.0 * x + 1.0 * y)))[inside]
    rng = np.random.default_rng(seed)
    return clean, clean + 0.05 * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))


def test_the_anatomy_goes_to_the_real_part_and_the_air_is_not_rotated() -> None:
    clean, noisy = _smooth_phase_image()
    phase = smooth_phase(noisy, 0.05)
    assert np.allclose(np.abs(phase), 1.0)
    object_, air = np.abs(clean) > 0, np.ones(clean.shape, dtype=bool)
    air[4:-4, 4:-4] = False  # 12 pixels from the object
    rotated = clean * np.conj(phase)
    assert np.mean(rotated.imag[object_] ** 2) < 0.02 * np.mean(np.abs(clean[object_]) ** 2)  # 50% before
    assert np.all(phase[air] == 1.0)  # the smoothed noise alone does not set a phase


def test_the_noise_stays_white_and_of_its_level() -> None:
    """The rotation is circular: inside the object both parts keep the noise level, without correlation."""
    clean, noisy = _smooth_phase_image(size=192, seed=3)
    noise = (noisy - clean) * np.conj(smooth_phase(noisy, 0.05))
    inside = noise[24:-24, 24:-24]
    for part in (inside.real, inside.imag):
        assert part.std() == pytest.approx(0.05, rel=0.03)
        assert abs(np.corrcoef(part[:, 1:].ravel(), part[:, :-1].ravel())[0, 1]) < 0.03
    assert abs(np.corrcoef(inside.real.ravel(), inside.imag.ravel())[0, 1]) < 0.03


def test_a_window_with_its_margin_has_the_whole_image_phase() -> None:
    """What lazily read volumes rely on: the phase of a window read with PHASE_MARGIN pixels around it."""
    _, noisy = _smooth_phase_image()
    whole = smooth_phase(noisy, 0.05)
    rows, cols = slice(30, 50), slice(40, 64)
    wide = noisy[
        rows.start - PHASE_MARGIN : rows.stop + PHASE_MARGIN, cols.start - PHASE_MARGIN : cols.stop + PHASE_MARGIN
    ]
    window = smooth_phase(wide, 0.05)[PHASE_MARGIN:-PHASE_MARGIN, PHASE_MARGIN:-PHASE_MARGIN]
    assert np.array_equal(window, whole[rows, cols])


def test_rejects_real_images() -> None:
    with pytest.raises(ValueError, match="complex"):
        smooth_phase(np.ones((16, 16)), 0.1)


@pytest.fixture(scope="module")
def complex_fit() -> tuple[C2SDenoiser, np.ndarray]:
    rng = np.random.default_rng(0)
    clean = 0.3 + make_phantoms(4, 48, seed=1)  # no air: the smooth phase is set everywhere
    ramp = np.linspace(0.0, 2.5, clean.shape[-1])[None, None, :]
    noisy = clean * np.exp(1j * ramp) + 0.05 * (
        rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape)
    )
    model = C2SDenoiser(sigma=0.05, max_iter=40, width=8, patch_size=32, random_state=0, context_slices=0)
    return model.fit(noisy), noisy


def test_a_global_phase_only_turns_the_output(complex_fit) -> None:
    """Demodulated, the network never sees the image's phase: a global phase of the input returns the
    same output turned by that phase (an image without air, where the object sets the phase everywhere)."""
    model, noisy = complex_fit
    assert model.phase_demodulated_
    turn = np.exp(0.9j)
    plain, turned = model.transform(noisy), model.transform(noisy * turn)
    assert np.abs(plain).max() > 0.5
    assert np.allclose(turned, plain * turn, atol=1e-5)


def test_the_model_file_keeps_the_demodulation(complex_fit, tmp_path: Path) -> None:
    model, noisy = complex_fit
    model.save(tmp_path / "m.c2s")
    loaded = C2SDenoiser.load(tmp_path / "m.c2s")
    assert loaded.phase_demodulated_
    assert np.array_equal(loaded.transform(noisy), model.transform(noisy))
