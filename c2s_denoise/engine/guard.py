"""Recovery from training divergence: roll back to the last healthy state and halve the learning rate.

Adam at the learning rates that make short CPU fits good (5e-3) occasionally blows up after
thousands of steps: the loss spikes by orders of magnitude and the network can end up "dead"
(weights frozen, output = the preconditioning's skip term, i.e. the noisy input). Measured on
MNI152 (``benchmarks/results/time_budget_sigma25.md``): a 63 720-step C2S fit and a 75 240-step
Noise2Clean fit both spiked between steps 6 000 and 8 000 and finished at the noisy input's PSNR.

:class:`DivergenceGuard` watches the mean loss over windows of steps, and the gradient norm. It
snapshots the network, optimiser and EMA at the end of the warm-up and at the end of every healthy
window after it, and when a window's mean loss exceeds ``tolerance`` times the best window mean so
far, or a single step's loss exceeds ``spike`` times it, or a step's gradient norm (before clipping)
exceeds ``gradient_spike`` times the mean norm of the last healthy window (of the warm-up, before
the first), it restores the last snapshot and halves the learning rate for the rest of the run. The
steps lost count against the budget (``max_iter`` is not extended). A non-finite loss is rolled back
at any step once a snapshot exists; before that (during the warm-up) there is no healthy state to
return to, and the trainer stops with an error.

The gradient norm is the early sign of the "dead head" (``benchmarks/results/peer_collapse.md``):
a step's gradient grows a thousandfold within a few steps (0.005 to 454 for Neighbor2Neighbor at
the peak learning rate), the large updates push the input of the network head's SiLU far below
zero at every pixel, and from then on no gradient flows: the output is the skip term (about the
noisy input) and the loss settles only 1.3-1.5 times above the healthy one, inside the loss
tolerance, and, right after the warm-up, inside the first window, which has no reference yet. In a
3000-step C2S control in the same loop the largest gradient norm was 0.040 (the peers' spikes: 454
to 13,000).

A dead head that comes without a spike large enough to see (a 24,000-step C2S fit on 281 varied
slices ended with every input of the head's SiLU below -2.7e6) is seen by its consequence: no
gradient reaches the network's first convolution. :data:`FROZEN_STEPS` such steps in a row roll
back too, and a window holding one is never snapshotted.
"""

from __future__ import annotations

import copy
import math

from torch import nn

__all__ = ["FROZEN_STEPS", "DivergenceGuard"]

#: Steps in a row in which no gradient reached the watched kernel before the guard calls the network dead.
FROZEN_STEPS = 20


class DivergenceGuard:
    """Detect a diverged training run and restore its last healthy state.

    Parameters
    ----------
    window : int
        Steps per window of the mean loss.
    start : int
        First step at which windows are judged (the end of the learning-rate warm-up).
    tolerance : float, default=1.5
        A window whose mean loss exceeds ``tolerance`` times the best window mean diverged (a dead
        network measured 1.9 times the healthy loss).
    spike : float, default=20.0
        A single step whose loss exceeds ``spike`` times the best window mean diverged at once.
    healthy : float, default=1.2
        Only windows whose mean is within ``healthy`` times the best are snapshotted.
    gradient_spike : float, default=100.0
        A step whose gradient norm exceeds ``gradient_spike`` times the reference norm diverged at
        once (the reference: the mean norm of the last snapshotted window, or of the warm-up).
    network : nn.Module, optional
        The trained network: its first convolution kernel is watched, and :data:`FROZEN_STEPS`
        updates in a row whose gradient left it exactly zero mean a dead network (None: not watched).
    """

    def __init__(
        self,
        window: int,
        start: int,
        tolerance: float = 1.5,
        spike: float = 20.0,
        healthy: float = 1.2,
        gradient_spike: float = 100.0,
        network: nn.Module | None = None,
    ) -> None:
        self.window = max(1, int(window))
        self.start = int(start)
        self.tolerance = float(tolerance)
        self.spike = float(spike)
        self.healthy = float(healthy)
        self.gradient_spike = float(gradient_spike)
        self.best = math.inf
        self.rollbacks = 0
        self.lr_scale = 1.0
        self._sum = 0.0
        self._count = 0
        self._norm_sum = 0.0
        self._norm_count = 0
        self._norm_reference = math.inf
        self._snapshot: dict | None = None
        self._kernel = None if network is None else next((p for p in network.parameters() if p.dim() >= 3), None)
        self._frozen_run = 0
        self._frozen_in_window = False

    def check(self, step: int, loss: float, modules: dict[str, object], gradient_norm: float | None = None) -> bool:
        """Record ``loss`` (and ``gradient_norm``) of ``step``; return True if the state in ``modules`` was rolled
        back.

        ``modules`` maps names to objects with ``state_dict``/``load_state_dict`` (network,
        optimiser, EMA network): what a snapshot saves and a rollback restores. ``gradient_norm``
        is the step's total gradient norm before clipping (None: not watched).
        """
        if not math.isfinite(loss):  # never part of a window; the trainer raises when there is no snapshot
            return self._snapshot is not None and self._rollback(modules)
        watch_norm = gradient_norm is not None and math.isfinite(gradient_norm)
        if step < self.start:
            if watch_norm:  # the warm-up's mean norm is the reference of the first window
                self._norm_sum += gradient_norm
                self._norm_count += 1
            return False
        if step == self.start or self._snapshot is None:  # the state at the end of the warm-up
            self._snapshot = self._copy(modules)
            self._close_norm_window()
        if self._snapshot is not None and math.isfinite(self.best) and not loss <= self.spike * self.best:
            return self._rollback(modules)
        if watch_norm and self._frozen():
            self._frozen_run += 1
            self._frozen_in_window = True
            if self._frozen_run >= FROZEN_STEPS:
                return self._rollback(modules)
        else:
            self._frozen_run = 0
        if watch_norm:
            if gradient_norm > self.gradient_spike * self._norm_reference:
                return self._rollback(modules)
            self._norm_sum += gradient_norm
            self._norm_count += 1
        self._sum += loss
        self._count += 1
        if self._count < self.window:
            return False
        mean = self._sum / self._count
        self._sum, self._count = 0.0, 0
        if not mean <= self.tolerance * self.best:
            return self._rollback(modules)
        if mean <= self.healthy * self.best and not self._frozen_in_window:
            # only clearly healthy windows are snapshotted, so that a run drifting towards a dead
            # network (between healthy and tolerance) is never saved as the state to return to
            self._snapshot = self._copy(modules)
            self._close_norm_window()
        self._norm_sum, self._norm_count = 0.0, 0
        self._frozen_in_window = False
        self.best = min(self.best, mean)
        return False

    def _frozen(self) -> bool:
        """Whether this step's gradient left the watched kernel exactly zero (a dead head passes none)."""
        grad = None if self._kernel is None else self._kernel.grad
        return grad is not None and not bool(grad.any())

    def _close_norm_window(self) -> None:
        """The mean gradient norm of the steps since the last snapshot becomes the reference (if there were any)."""
        if self._norm_count:
            self._norm_reference = self._norm_sum / self._norm_count
        self._norm_sum, self._norm_count = 0.0, 0

    @staticmethod
    def _copy(modules: dict[str, object]) -> dict:
        return {name: copy.deepcopy(module.state_dict()) for name, module in modules.items()}

    def _rollback(self, modules: dict[str, object]) -> bool:
        for name, module in modules.items():
            module.load_state_dict(self._snapshot[name])
        self.rollbacks += 1
        self.lr_scale *= 0.5
        self._sum, self._count = 0.0, 0
        self._norm_sum, self._norm_count = 0.0, 0
        self._frozen_run, self._frozen_in_window = 0, False
        return True
