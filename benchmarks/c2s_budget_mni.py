"""C2S alone on the MNI152 comparison data at chosen settings (exploration between full runs).

Usage::

    python benchmarks/c2s_budget_mni.py '[{}, {"max_iter": 3000}, {"self_ensemble": true}]'
    python benchmarks/c2s_budget_mni.py --level 13 --bm3d '[{"max_iter": 8000}]'

Same data, noise (Gaussian, sigma = level/255 with level 25 by default, seeds 1/2) and metrics as
``compare.py``; each JSON object overrides ``C2SDenoiser(sigma=level/255, max_iter=1000,
random_state=0)``. ``--bm3d`` adds BM3D with the true sigma as the line to beat.
"""

import argparse
import json

import numpy as np

from bench_data import add_noise, load_mni152_axial
from c2s_denoise import C2SDenoiser
from scoring import metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="?", default="[{}]", help="JSON list of C2SDenoiser overrides")
    parser.add_argument("--level", type=int, default=25, help="noise sigma = level / 255 (default 25)")
    parser.add_argument("--bm3d", action="store_true", help="also report BM3D with the true sigma")
    args = parser.parse_args()
    split = load_mni152_axial(crop_margin=4)
    sigma = args.level / 255
    noisy_train = add_noise(split.train, sigma, "gaussian", seed=1)
    noisy_test = add_noise(split.test, sigma, "gaussian", seed=2)
    if args.bm3d:
        import bm3d

        result = metrics(np.stack([bm3d.bm3d(image, sigma) for image in noisy_test]), split.test, split.test_mask)
        print(
            json.dumps(
                {"method": "BM3D (sigma known)", "level": args.level, **{k: round(v, 3) for k, v in result.items()}}
            ),
            flush=True,
        )
    for config in json.loads(args.configs):
        model = C2SDenoiser(**{"sigma": sigma, "max_iter": 1000, "random_state": 0, "context_slices": 0, **config}).fit(
            [noisy_train]
        )
        result = metrics(model.transform([noisy_test])[0], split.test, split.test_mask)
        record = {"method": "C2S", "level": args.level, "config": config, **{k: round(v, 3) for k, v in result.items()}}
        print(json.dumps({**record, "fit_s": round(model.fit_time_, 1)}), flush=True)


if __name__ == "__main__":
    main()
