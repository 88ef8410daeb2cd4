"""Quick start: train C2S on noisy slices only, denoise held-out slices, check against the truth.

Run with ``python examples/quickstart.py`` (about a minute on 2 CPU cores).
"""

import numpy as np

from c2s_denoise import C2SDenoiser
from c2s_denoise.physics.phantom import brain_phantom

rng = np.random.default_rng(0)
clean = brain_phantom((20, 128, 128), seed=0)  # a brain-like phantom volume in [0, 1]
noisy = clean + 0.1 * rng.standard_normal(clean.shape)  # what a scanner would give us
train, test = noisy[:16], noisy[16:]

model = C2SDenoiser(max_iter=1500, random_state=0, verbose=1)  # sigma="auto": estimated
model.fit([train])  # one volume: its slices share one intensity scale
denoised = model.transform([test])[0]


def psnr(estimate, reference):
    return 10 * np.log10(1.0 / np.mean((np.clip(estimate, 0, 1) - reference) ** 2))


print(f"estimated sigma: {model.sigma_[0]:.4f} (true 0.1)")
print(f"held-out PSNR: noisy {psnr(test, clean[16:]):.2f} dB -> C2S {psnr(denoised, clean[16:]):.2f} dB")
print(f"self-supervised score (SURE-based, no clean data used): {model.score([test]):.2f} dB")
