"""The torch engine of C2S: network, GDSM loss, noise schedule, trainer and inference.

Plain torch only; the scikit-learn estimator in :mod:`c2s_denoise.estimator` is the sole
numpy-torch boundary.
"""

from .device import resolve_device
from .ema import ExponentialMovingAverage
from .gdsm import GDSMLoss, gdsm_coefficients
from .inference import denoise_images
from .patches import PatchSampler
from .schedule import NOISE_SCHEDULES, NoiseSchedule, corrupt
from .trainer import GDSMStep, StepLoss, TrainingConfig, TrainingResult, train_gdsm, train_network, warmup_cosine
from .unet import NoiseConditionedUNet, multiply_adds_per_pixel

__all__ = [
    "NOISE_SCHEDULES",
    "ExponentialMovingAverage",
    "GDSMStep",
    "GDSMLoss",
    "NoiseConditionedUNet",
    "NoiseSchedule",
    "PatchSampler",
    "StepLoss",
    "TrainingConfig",
    "TrainingResult",
    "corrupt",
    "denoise_images",
    "gdsm_coefficients",
    "multiply_adds_per_pixel",
    "resolve_device",
    "train_gdsm",
    "train_network",
    "warmup_cosine",
]
