"""Accuracy of the local noise map (``estimate_noise_map``): smooth maps, a constant level, SENSE steps.

Usage::

    pip install -e ".[bench]"
    python benchmarks/noise_map_accuracy.py      # about a minute on 2 cores

Images: MNI152 axial slices 56, 88 and 120 and dipy's real T1 slice, intensities in [0, 1]. Maps
(``bench_data.noise_map_cases``): a left-right ramp 0.65-1.6, a bias field 0.6-1.6, a SENSE-like
``sqrt(3) g`` and a constant, times a mean level of 20/255 and 5/255, under real and complex
Gaussian, Rician and 4-coil noncentral-chi noise; and SENSE reconstructions of the three MNI152
slices (8 coils, R = 2, 3, 4) with their exact noise map. Error: median ``|estimate / truth - 1|``
inside the head (``image > 0.1``), as the min-max over the images; SENSE also its 90th percentile.
Results: ``benchmarks/results/noise_map_accuracy.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench_data import load_dipy_t1_slice, mni152_volume
from bench_data.noise_map_cases import MODELS, add_noise, sense_case, true_map
from c2s_denoise import __version__
from c2s_denoise.physics.noise import estimate_noise_map
from report import command, machine

RESULTS = Path(__file__).parent / "results"
KINDS = ("lr", "bias", "gfactor", "const")


def relative_errors(estimate: np.ndarray, truth: np.ndarray, inside: np.ndarray) -> np.ndarray:
    return np.abs(estimate[inside] / truth[inside] - 1.0)


def span(errors: list[float]) -> str:
    return f"{100 * min(errors):.1f}-{100 * max(errors):.1f}%"


def main() -> None:
    start = time.time()
    volume, _ = mni152_volume()
    mni = [np.rot90(volume[:, :, k]) for k in (56, 88, 120)]
    images = [*mni, load_dipy_t1_slice()[0]]
    lines = [
        "# The local noise map: accuracy",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}; c2s-denoise {__version__}.",
        "",
        __doc__.split("Images:")[1].split("Results:")[0].strip().replace("\n", " "),
        "",
    ]
    for level in (20, 5):
        lines += [
            f"## Smooth maps, mean level {level}/255",
            "",
            "| noise | " + " | ".join(KINDS) + " |",
            "|---|---|---|---|---|",
        ]
        for model, (noise_model, n_coils) in MODELS.items():
            cells = []
            for kind in KINDS:
                errors = []
                for k, image in enumerate(images):
                    truth = level / 255 * true_map(kind, image.shape, seed=1)
                    noisy = add_noise(image, truth, model, seed=2 + k)
                    estimate = estimate_noise_map(noisy, noise_model=noise_model, n_coils=n_coils)
                    errors.append(float(np.median(relative_errors(estimate, truth, image > 0.1))))
                cells.append(span(errors))
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## SENSE, 8 coils", "", "| R | median | 90th percentile |", "|---|---|---|"]
    for acceleration in (2, 3, 4):
        medians, p90s = [], []
        for k, image in enumerate(mni):
            noisy, truth = sense_case(image, acceleration, seed=20 + k)
            errors = relative_errors(estimate_noise_map(noisy), truth, image > 0.1)
            medians.append(float(np.median(errors)))
            p90s.append(float(np.percentile(errors, 90)))
        lines.append(f"| {acceleration} | {span(medians)} | {span(p90s)} |")
    lines += ["", f"Total {time.time() - start:.0f} s."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "noise_map_accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
