"""Inputs from a user report: a dict of contrasts without ``contrasts``, and single images for a 2.5-D model."""

from __future__ import annotations

import numpy as np
import pytest

from c2s_denoise import C2SDenoiser
from c2s_denoise.estimator._channels import channel_plan, neighbour_index, slice_stacks
from c2s_denoise.metrics import psnr
from c2s_denoise.physics.phantom import brain_phantom

TINY = dict(max_iter=3, width=4, depth=2, batch_size=2, patch_size=8, random_state=0, device="cpu", n_coils=1)
SIGMA = 0.08


# ----------------------------------------------------------------------------- a dict without contrasts
def _two_contrasts() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"T1": rng.random((2, 16, 16)), "T2": rng.random((2, 16, 16))}


def test_fit_on_a_dict_without_contrasts_says_what_to_pass() -> None:
    with pytest.raises(ValueError, match=r"X is a dict of contrasts.*pass contrasts=\('T1', 'T2'\)") as raised:
        C2SDenoiser(**TINY).fit(_two_contrasts())
    assert not isinstance(raised.value, TypeError)  # it was "float() argument must be ... not 'dict'"


def test_transform_of_a_dict_without_contrasts_says_what_to_pass() -> None:
    model = C2SDenoiser(**TINY).fit(np.random.default_rng(1).random((2, 16, 16)))
    with pytest.raises(ValueError, match=r"keys 'T1', 'T2'.*contrasts=None.*pass contrasts=\('T1', 'T2'\)"):
        model.transform(_two_contrasts())


def test_the_same_dict_with_contrasts_fits() -> None:
    model = C2SDenoiser(**TINY, contrasts=("T1", "T2")).fit(_two_contrasts())
    assert set(model.transform(_two_contrasts())) == {"T1", "T2"}


# ----------------------------------------------------------------------------- thin volumes at transform
def test_a_single_slice_is_its_own_neighbour() -> None:
    """Beyond the mirror (only in volumes thinner than fit allows) a neighbour is the nearest slice on its side."""
    assert [neighbour_index(0, offset, 1) for offset in (-2, -1, 1, 2)] == [0, 0, 0, 0]
    assert [neighbour_index(1, offset, 3) for offset in (-2, -1, 1, 2)] == [0, 0, 2, 2]
    assert neighbour_index(0, -1, 4) == 1  # the mirror about z, as before
    image = np.arange(9.0).reshape(1, 1, 3, 3)
    (stack,) = slice_stacks(image, channel_plan(1, 0, context_slices=2))
    assert stack.shape == (5, 3, 3) and all(np.array_equal(channel, image[0, 0]) for channel in stack)


@pytest.fixture(scope="module")
def volume_model() -> tuple[C2SDenoiser, np.ndarray, np.ndarray]:
    """A 2.5-D model (one neighbour each side) fitted on one noisy volume."""
    rng = np.random.default_rng(0)
    clean = brain_phantom((8, 64, 64), seed=0)
    noisy = clean + SIGMA * rng.standard_normal(clean.shape)
    params = dict(width=8, depth=2, max_iter=150, patch_size=32, random_state=0, device="cpu")
    model = C2SDenoiser(sigma=SIGMA, noise_model="gaussian", context_slices=1, **params).fit(noisy[None])
    assert model.context_slices_ == 1
    return model, clean, noisy


def test_a_volume_model_denoises_a_single_image(volume_model) -> None:
    """A 2-D image of the same anatomy (a stack of one, or a list) is denoised, with a gain, not refused."""
    model, clean, noisy = volume_model
    image, reference = noisy[4], clean[4]
    alone = model.transform(image[None])
    assert alone.shape == (1, 64, 64)
    np.testing.assert_array_equal(model.transform([image])[0], alone[0])
    gain = psnr(alone[0], reference) - psnr(image, reference)
    assert gain > 1.0, gain
    other_clean = brain_phantom((64, 64), seed=3)
    other = other_clean + SIGMA * np.random.default_rng(5).standard_normal(other_clean.shape)
    assert psnr(model.transform(other[None])[0], other_clean) > psnr(other, other_clean) + 1.0


def test_a_volume_model_denoises_a_stack_of_separate_images(volume_model) -> None:
    """Each image of an (n, H, W) stack is denoised alone (neighbours from itself), as it would be by itself."""
    model, _, noisy = volume_model
    stack = noisy[[1, 5, 6]]
    denoised = model.transform(stack)
    assert denoised.shape == stack.shape
    np.testing.assert_array_equal(denoised[1], model.transform(stack[1:2])[0])
    denoised_with_levels, levels = model.denoise(stack)
    np.testing.assert_array_equal(denoised_with_levels, denoised)
    assert np.all(levels == SIGMA)


def test_fit_still_needs_enough_slices() -> None:
    with pytest.raises(ValueError, match="context_slices=1 needs volumes of at least 2 slices"):
        C2SDenoiser(**{**TINY, "context_slices": 1}).fit(np.ones((3, 16, 16)))
