"""Training steps, in one process or as one rank of a two-process group (launched by tests/test_distributed.py).

``python _ddp_gradient.py OUT.pt float32|bfloat16 STEPS...``: builds the same tiny network and
images on every rank and trains it, for each STEPS, for that many steps of
:func:`~c2s_denoise.engine.trainer.train_network` (batch 4 per rank, AdamW, the learning-rate
schedule, gradient clipping, the EMA) with the patch generator seeded ``rank_seed(7)`` (as a fit
with ``random_state=7`` seeds it on each rank); saves ``{STEPS: {"gradient": the parameters'
gradients of the last step, "weights": the trained weights, "ema": the EMA weights}, "seed": the
generator's seed}`` to ``OUT.pt.<rank>``.

:func:`train_on_union` is the single-process reference: each step trains on the union of the
batches that the ranks draw, each part drawn (patches, then noise levels, then noise) from that
rank's generator.
"""

import sys

import torch
from conftest import training_config

import c2s_denoise.engine.trainer as trainer
from c2s_denoise.engine.distributed import init_from_environment, rank, rank_seed
from c2s_denoise.engine.gdsm import GDSMLoss, GDSMStep, corrupt, total_noise_level
from c2s_denoise.engine.patches import PatchSampler
from c2s_denoise.engine.schedule import NoiseSchedule
from c2s_denoise.engine.unet import NoiseConditionedUNet

BATCH = 4  # per rank


def initial_weights() -> list[torch.Tensor]:
    """The tiny network's weights before training."""
    torch.manual_seed(0)
    return [parameter.detach().clone() for parameter in NoiseConditionedUNet(width=8, depth=2).parameters()]


def train(dtype: torch.dtype, steps: int, generator: torch.Generator, loss_step=None) -> dict[str, list]:
    """Train the tiny network for ``steps`` steps; its last gradients, weights and EMA weights."""
    images = [torch.rand((1, 24, 24), generator=torch.Generator().manual_seed(index)) for index in range(3)]
    torch.manual_seed(0)
    network = NoiseConditionedUNet(width=8, depth=2)
    config = training_config(max_iter=steps, batch_size=BATCH, patch_size=16, compute_dtype=dtype)
    if steps == 1:
        config.grad_clip = None  # the gradient left by the step is the one computed
    result = trainer.train_network(
        network,
        images,
        torch.full((3,), 0.1),
        loss_step=loss_step or GDSMStep(NoiseSchedule(), GDSMLoss()),
        config=config,
        generator=generator,
        device=torch.device("cpu"),
    )
    return {
        "gradient": [parameter.grad.clone() for parameter in network.parameters()],  # DDP: averaged over ranks
        "weights": [parameter.detach().clone() for parameter in network.parameters()],
        "ema": [parameter.detach().clone() for parameter in result.network.parameters()],
    }


def train_on_union(dtype: torch.dtype, steps: int, seeds: list[int]) -> dict[str, list]:
    """:func:`train` in one process on the union of the batches the ranks seeded ``seeds`` draw, step by step."""
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    schedule, loss_fn = NoiseSchedule(), GDSMLoss()

    class UnionSampler(PatchSampler):
        def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            parts = [PatchSampler.sample(self, BATCH, part) for part in generators]
            return torch.cat([patches for patches, _ in parts]), torch.cat([sigma for _, sigma in parts])

    def union_step(network, patches, sigma_data, generator, progress):
        x_t, tau = [], []
        for index, part in enumerate(generators):  # each rank's draws, in its order
            batch = slice(index * BATCH, (index + 1) * BATCH)
            tau.append(schedule.sample_tau(sigma_data[batch], part))
            x_t.append(corrupt(patches[batch], tau[-1], part))
        x_t, tau = torch.cat(x_t), torch.cat(tau)
        output = network(x_t, total_noise_level(sigma_data, tau))
        return loss_fn(output, x_t, patches, tau, sigma_data, torch.zeros_like(sigma_data))

    sampler = trainer.PatchSampler
    trainer.PatchSampler = UnionSampler
    try:
        return train(dtype, steps, torch.Generator(), union_step)
    finally:
        trainer.PatchSampler = sampler


if __name__ == "__main__":
    out, dtype, counts = sys.argv[1], getattr(torch, sys.argv[2]), [int(count) for count in sys.argv[3:]]
    init_from_environment("cpu")
    seed = rank_seed(7)
    results = {steps: train(dtype, steps, torch.Generator().manual_seed(seed)) for steps in counts}
    torch.save({**results, "seed": seed}, f"{out}.{rank()}")
    torch.distributed.destroy_process_group()
