"""The torch engine of C2S: network, GDSM loss, noise schedule, trainer and inference.

Plain torch only; the scikit-learn estimator (:mod:`c2s_denoise.estimator`) is the sole
numpy-torch boundary. The GDSM training step is :mod:`c2s_denoise.engine.gdsm`; the training
loop (any per-batch loss) is :func:`train_network`.
"""

from .device import resolve_device
from .ema import ExponentialMovingAverage
from .gdsm import LOSS_WEIGHTINGS, GDSMLoss, GDSMStep, corrupt, gdsm_coefficients, total_noise_level, train_gdsm
from .inference import denoise_images
from .patches import PatchSampler
from .precision import PRECISIONS, native_bfloat16, resolve_training_dtype
from .schedule import NOISE_SCHEDULES, NoiseSchedule
from .trainer import StepLoss, TrainingConfig, TrainingResult, train_network, warmup_cosine
from .unet import NoiseConditionedUNet, multiply_adds_per_pixel, network_from_state, network_state

__all__ = [
    "LOSS_WEIGHTINGS",
    "NOISE_SCHEDULES",
    "PRECISIONS",
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
    "native_bfloat16",
    "network_from_state",
    "network_state",
    "resolve_device",
    "resolve_training_dtype",
    "total_noise_level",
    "train_gdsm",
    "train_network",
    "warmup_cosine",
]
