"""One rank of a two-process ``c2s-denoise fit`` in which rank 1 fails (launched by tests/test_distributed.py).

``python _rank_failure.py read|train FIT-ARGUMENTS...``: with ``read``, rank 1 is given a missing
training file; with ``train``, rank 1 raises in its fifth training step. Every other rank runs
the command as given.
"""

import os
import sys

from c2s_denoise.cli.commands import main


def _fail_in_step_5() -> None:
    import c2s_denoise.engine.trainer as trainer

    update = trainer.ExponentialMovingAverage.update
    steps = {"n": 0}

    def update_then_fail(self, network):
        update(self, network)
        steps["n"] += 1
        if steps["n"] == 5:
            raise MemoryError("simulated failure of rank 1 in step 5")

    trainer.ExponentialMovingAverage.update = update_then_fail


if __name__ == "__main__":
    mode, arguments = sys.argv[1], sys.argv[2:]
    if os.environ["RANK"] == "1":
        if mode == "read":
            arguments = [arguments[0], "missing.npy", *arguments[2:]]
        else:
            _fail_in_step_5()
    sys.argv = ["c2s-denoise", *arguments]
    main()
