"""C2S alone on the MNI152 comparison data at chosen settings (exploration between full runs).

Usage::

    python benchmarks/c2s_budget_mni.py '[{}, {"max_iter": 3000}, {"self_ensemble": true}]'

Same data, noise (Gaussian, sigma = 25/255, seeds 1/2) and metrics as ``compare.py``; each JSON
object overrides ``C2SDenoiser(sigma=25/255, max_iter=1000, random_state=0)``.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_data import add_noise, load_mni152_axial  # noqa: E402
from compare import metrics  # noqa: E402

from c2s_denoise import C2SDenoiser  # noqa: E402


def main() -> None:
    configs = json.loads(sys.argv[1]) if len(sys.argv) > 1 else [{}]
    split = load_mni152_axial(crop_margin=4)
    sigma = 25 / 255
    noisy_train = add_noise(split.train, sigma, "gaussian", seed=1)
    noisy_test = add_noise(split.test, sigma, "gaussian", seed=2)
    for config in configs:
        model = C2SDenoiser(**{"sigma": sigma, "max_iter": 1000, "random_state": 0, **config}).fit([noisy_train])
        result = metrics(model.transform([noisy_test])[0], split.test, split.test_mask)
        print(json.dumps(config), {k: round(v, 3) for k, v in result.items()}, f"fit {model.fit_time_:.1f} s", flush=True)


if __name__ == "__main__":
    main()
