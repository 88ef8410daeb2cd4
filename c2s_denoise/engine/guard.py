"""Recovery from training divergence: roll back to the last healthy state and halve the learning rate.

Adam at the learning rates that make short CPU fits good (5e-3) occasionally blows up after
thousands of steps: the loss spikes by orders of magnitude and the network can end up "dead"
(weights frozen, output = the preconditioning's skip term, i.e. the noisy input). Measured on
MNI152 (``benchmarks/results/time_budget_sigma25.md``): a 63 720-step C2S fit and a 75 240-step
Noise2Clean fit both spiked between steps 6 000 and 8 000 and finished at the noisy input's PSNR.

:class:`DivergenceGuard` watches the mean loss over windows of steps. After the warm-up it
snapshots the network, optimiser and EMA at the end of every healthy window, and when a window's
mean loss exceeds ``tolerance`` times the best window mean so far, or a single step's loss
exceeds ``spike`` times it, it restores the last snapshot and halves the learning rate for the
rest of the run. The steps lost count against the budget (``max_iter`` is not extended). A
non-finite loss is rolled back at any step once a snapshot exists; before that (during the
warm-up) there is no healthy state to return to, and the trainer stops with an error.
"""

from __future__ import annotations

import copy
import math

__all__ = ["DivergenceGuard"]


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
    """

    def __init__(
        self, window: int, start: int, tolerance: float = 1.5, spike: float = 20.0, healthy: float = 1.2
    ) -> None:
        self.window = max(1, int(window))
        self.start = int(start)
        self.tolerance = float(tolerance)
        self.spike = float(spike)
        self.healthy = float(healthy)
        self.best = math.inf
        self.rollbacks = 0
        self.lr_scale = 1.0
        self._sum = 0.0
        self._count = 0
        self._snapshot: dict | None = None

    def check(self, step: int, loss: float, modules: dict[str, object]) -> bool:
        """Record ``loss`` of ``step``; return True if the state in ``modules`` was rolled back.

        ``modules`` maps names to objects with ``state_dict``/``load_state_dict`` (network,
        optimiser, EMA network): what a snapshot saves and a rollback restores.
        """
        if not math.isfinite(loss):  # never part of a window; the trainer raises when there is no snapshot
            return self._snapshot is not None and self._rollback(modules)
        if step < self.start:
            return False
        if self._snapshot is not None and math.isfinite(self.best) and not loss <= self.spike * self.best:
            return self._rollback(modules)
        self._sum += loss
        self._count += 1
        if self._count < self.window:
            return False
        mean = self._sum / self._count
        self._sum, self._count = 0.0, 0
        if self._snapshot is not None and not mean <= self.tolerance * self.best:
            return self._rollback(modules)
        if mean <= self.healthy * self.best or self._snapshot is None:
            # only clearly healthy windows are snapshotted, so that a run drifting towards a dead
            # network (between healthy and tolerance) is never saved as the state to return to
            self._snapshot = {name: copy.deepcopy(module.state_dict()) for name, module in modules.items()}
        self.best = min(self.best, mean)
        return False

    def _rollback(self, modules: dict[str, object]) -> bool:
        for name, module in modules.items():
            module.load_state_dict(self._snapshot[name])
        self.rollbacks += 1
        self.lr_scale *= 0.5
        self._sum, self._count = 0.0, 0
        return True
