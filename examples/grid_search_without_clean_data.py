"""Choose C2S hyper-parameters with GridSearchCV on noisy data only (the SURE-based score).

Run with ``python examples/grid_search_without_clean_data.py`` (a few minutes on 2 CPU cores).
"""

import numpy as np
from sklearn.model_selection import GridSearchCV

from c2s_denoise import C2SDenoiser
from c2s_denoise.physics.phantom import brain_phantom

clean = brain_phantom((12, 96, 96), seed=0)
noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)

search = GridSearchCV(
    C2SDenoiser(sigma=0.1, max_iter=600, random_state=0),
    {"tau_max": [1.5, 5.0], "refinement": [0.0, 0.3]},
    cv=2,
)
search.fit(noisy)  # each slice is scored by SURE: no clean image is used
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(f"{params}: estimated PSNR {score:.2f} dB")
print("best:", search.best_params_)
