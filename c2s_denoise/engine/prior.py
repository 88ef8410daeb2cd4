"""The prior: weights of a network fitted once on noisy brain MRI, where fits start (docs/method.md section 4).

A fit on a user's few slices has little data to learn a denoiser from, and trained from random
weights it learns one slowly and then memorises the noise of those slices (on one 256 x 256 slice,
16,000 steps end 0.5 dB below 8,000). Starting from weights that already denoise brain anatomy,
the same self-supervised loss only adapts them to the scan at hand. The prior is C2S itself,
fitted self-supervised (GDSM, no clean target) on noisy MNI152 T1 slices at many noise levels
by ``benchmarks/train_prior.py``; it ships with the package as ``priors/brain_2d.safetensors``.

A network takes the prior when it is the prior's network (:func:`prior_fits`): 2-D, one real
input and output channel, the default width, depth and embedding, conditioned on the noise
level. Networks with conditioning channels (neighbouring slices, other contrasts), complex
images, 3-D networks and other shapes start from random weights: a conditioning channel started
at zero weight was learnt too slowly (300 steps: +0.4 dB from two neighbours on each side, +1.5
from random weights).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "FROM_RANDOM_WEIGHTS",
    "FROM_TRAINED_WEIGHTS",
    "PRIOR_FORMAT",
    "PRIOR_PASSES",
    "PRIOR_PATH",
    "initialise_from_prior",
    "load_prior",
    "prior_fits",
    "prior_bytes",
    "prior_steps",
    "takes_prior",
]

#: The prior shipped with the package.
PRIOR_PATH = Path(__file__).parent / "priors" / "brain_2d.safetensors"
#: The ``format`` of a prior file's metadata.
PRIOR_FORMAT = "c2s-denoise-prior"
#: Passes over the training pixels that a fit from the prior makes by default (:func:`prior_steps`).
PRIOR_PASSES = 500
#: The fewest steps :func:`prior_steps` gives.
MIN_PRIOR_STEPS = 500
#: Training settings of a fit from random weights: the peak learning rate, and the share of
#: air-only patches kept (the steps go to tissue).
FROM_RANDOM_WEIGHTS = {"learning_rate": 5e-3, "air_weight": 0.125}
#: The same from trained weights (the prior, a warm start): a gentler rate that adapts the weights
#: instead of relearning them, and patches drawn uniformly, air included (dipy's slice, 3 seeds:
#: +0.04 dB brain, SSIM 0.938 -> 0.956 at 25/255; docs/method.md section 4).
FROM_TRAINED_WEIGHTS = {"learning_rate": 1e-3, "air_weight": 1.0}
_METADATA_KEY = "c2s_denoise_prior"


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def prior_bytes(network: nn.Module, corpus: dict) -> bytes:
    """A prior file's content: ``network``'s weights (float32), its configuration and a description of its ``corpus``."""
    from safetensors.torch import save

    tensors = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in network.state_dict().items()}
    document = {"format": PRIOR_FORMAT, "config": dict(network.config), "corpus": corpus, "sha256": _digest(tensors)}
    return save(tensors, metadata={_METADATA_KEY: json.dumps(document)})


@functools.lru_cache(maxsize=4)
def load_prior(path: str | os.PathLike[str] = PRIOR_PATH) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """``(config, weights, corpus)`` of a prior file, its checksum verified.

    Raises
    ------
    ValueError
        If the file is not a prior file or its tensors do not match their checksum.
    """
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    document = json.loads(metadata.get(_METADATA_KEY, "{}"))
    if document.get("format") != PRIOR_FORMAT:
        raise ValueError(f"{path} is not a c2s-denoise prior file")
    if document.get("sha256") != _digest(tensors):
        raise ValueError(f"{path}: the prior's weights do not match their checksum (a damaged file)")
    return document["config"], tensors, document.get("corpus", {})


def prior_fits(config: dict, prior_config: dict) -> bool:
    """Whether a network of ``config`` (constructor arguments) can start from a prior of ``prior_config``: the same."""
    return dict(config) == dict(prior_config)


def takes_prior(config: dict, path: str | os.PathLike[str] = PRIOR_PATH) -> bool:
    """Whether a network of ``config`` starts from the prior at ``path`` (:func:`prior_fits`)."""
    return prior_fits(config, load_prior(path)[0])


def initialise_from_prior(network: nn.Module, path: str | os.PathLike[str] = PRIOR_PATH) -> bool:
    """Load the prior's weights into ``network`` where it fits (:func:`takes_prior`); return whether it did."""
    if not takes_prior(network.config, path):
        return False
    network.load_state_dict(load_prior(path)[1])
    return True


def prior_steps(pixels: int, patch_pixels: int, batch_size: int, most: int) -> int:
    """Steps of a fit from the prior: :data:`PRIOR_PASSES` passes over ``pixels``, within ``[MIN_PRIOR_STEPS, most]``.

    Started from the prior, a fit adapts weights that already denoise; on few slices, training on
    memorises their noise (on one 256 x 256 slice, sigma 25/255: 1000 or 2000 steps from the prior
    30.0 dB brain PSNR, 8000 steps 29.8). The steps grow with the data until ``most``.

    >>> prior_steps(256 * 256, 48 * 48, 8, most=8000)   # one 256 x 256 slice: about 500 passes
    1778
    >>> prior_steps(30 * 256 * 256, 48 * 48, 8, most=8000)
    8000
    """
    steps = round(PRIOR_PASSES * pixels / (patch_pixels * batch_size))
    return int(min(most, max(MIN_PRIOR_STEPS, steps)))
