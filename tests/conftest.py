"""Shared synthetic data: piecewise-smooth "anatomy" in [0, 1] with seed-fixed noise."""

import os

# scikit-learn gates its array-API input check on this variable, which must be set before scipy loads.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from c2s_denoise import metrics  # noqa: E402


def make_phantoms(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """``n`` images of random overlapping ellipses with smooth shading, values in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images = np.zeros((n, size, size))
    for image in images:
        image += 0.1
        for _ in range(8):
            cy, cx = rng.uniform(0.2, 0.8, 2)
            ry, rx = rng.uniform(0.05, 0.35, 2)
            angle = rng.uniform(0, np.pi)
            dy, dx = yy - cy, xx - cx
            u = (dy * np.cos(angle) + dx * np.sin(angle)) / ry
            v = (-dy * np.sin(angle) + dx * np.cos(angle)) / rx
            image[u**2 + v**2 < 1] = rng.uniform(0.2, 0.9)
        image *= 0.85 + 0.15 * np.cos(3 * yy + 2 * xx)
    return np.clip(images, 0, 1)


def training_config(**fields):
    """A :class:`~c2s_denoise.engine.TrainingConfig` for tests: small and fast unless ``fields`` say otherwise."""
    from c2s_denoise.engine import TrainingConfig

    small = dict(
        max_iter=4,
        max_time=None,
        batch_size=2,
        patch_size=16,
        patch_depth=16,
        learning_rate=5e-3,
        ema_decay=0.999,
        refinement=0.0,
        air_weight=1.0,
    )
    return TrainingConfig(**{**small, **fields})


def invoke_cli(*args: object):
    """Run ``c2s-denoise ARGS`` in-process (:class:`typer.testing.CliRunner`), stdout and stderr apart."""
    from typer.testing import CliRunner

    from c2s_denoise.cli import app

    try:  # Click < 8.2 mixes stderr into stdout unless told not to
        runner = CliRunner(mix_stderr=False)
    except TypeError:
        runner = CliRunner()
    return runner.invoke(app, [str(a) for a in args])


def psnr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """PSNR with a peak of 1 (the synthetic images lie in [0, 1])."""
    return metrics.psnr(estimate, reference, range_=1.0)


@pytest.fixture(scope="session")
def noisy_dataset():
    """Train/held-out clean and noisy images at sigma = 0.1."""
    clean = make_phantoms(24, 64, seed=0)
    noisy = clean + 0.1 * np.random.default_rng(1).standard_normal(clean.shape)
    return {"train_noisy": noisy[:16], "test_clean": clean[16:], "test_noisy": noisy[16:], "sigma": 0.1}


@pytest.fixture()
def interrupt_training_at_step_3(monkeypatch):
    """A KeyboardInterrupt (as from Ctrl-C) in the third training step, after its EMA update."""
    import c2s_denoise.engine.trainer as trainer

    original = trainer.ExponentialMovingAverage.update
    calls = {"n": 0}

    def update_then_interrupt(self, network):
        original(self, network)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.ExponentialMovingAverage, "update", update_then_interrupt)


def smooth_periodic(volume: np.ndarray, axes: tuple[int, ...], passes: int = 1) -> np.ndarray:
    """``passes`` times the [1, 2, 1] / 4 filter along each of ``axes`` (periodic): a linear, symmetric smoother."""
    out = volume
    for _ in range(passes):
        for axis in axes:
            out = 0.5 * out + 0.25 * (np.roll(out, 1, axis) + np.roll(out, -1, axis))
    return out
