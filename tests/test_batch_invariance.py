"""An image's denoised result does not depend on the images denoised with it (bitwise), as scikit-learn's
``check_methods_subset_invariance`` asks: on the CPU each image goes through the network alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from c2s_denoise import C2SDenoiser
from c2s_denoise.engine import denoise_images

TINY = dict(max_iter=3, width=8, depth=2, batch_size=2, patch_size=16, random_state=0, device="cpu", n_coils=1)


@pytest.fixture(scope="module")
def fitted() -> tuple[C2SDenoiser, np.ndarray]:
    X = np.random.default_rng(0).random((11, 40, 40)).astype(np.float32)
    return C2SDenoiser(**TINY).fit(X), X


@pytest.mark.parametrize("self_ensemble", [True, False])
def test_transform_of_a_subset_is_bitwise_the_same(fitted, self_ensemble: bool) -> None:
    model, X = fitted
    model.set_params(self_ensemble=self_ensemble)
    whole = model.transform(X)
    assert whole.dtype == np.float32
    np.testing.assert_array_equal(model.transform(X[:1]), whole[:1])
    for start, stop in [(3, 6), (1, 8), (9, 11), (0, 10)]:
        np.testing.assert_array_equal(model.transform(X[start:stop]), whole[start:stop])


def test_rows_are_batch_invariant() -> None:
    """2-D rows (what the scikit-learn checks give) likewise."""
    rows = np.random.default_rng(1).random((20, 5)).astype(np.float32)
    model = C2SDenoiser(**TINY).fit(rows)
    whole = model.transform(rows)
    for start, stop in [(0, 1), (2, 4), (5, 19)]:
        np.testing.assert_array_equal(model.transform(rows[start:stop]), whole[start:stop])


def test_the_engine_ignores_the_batch_size_on_the_cpu(fitted) -> None:
    model, _ = fitted
    network = next(iter(model._fitted_networks().values()))
    images = [torch.rand(1, 24, 24, generator=torch.Generator().manual_seed(i)) for i in range(6)]
    levels = torch.full((6,), 0.1)
    batched = denoise_images(network, images, levels, device=torch.device("cpu"), batch_size=6)
    for image, level, result in zip(images, levels, batched):
        alone = denoise_images(network, [image], level[None], device=torch.device("cpu"), batch_size=6)[0]
        assert torch.equal(alone, result)
