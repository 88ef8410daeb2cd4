"""The physics of MRI noise, in numpy: no torch, no estimator.

- :mod:`.noise` -- noise-level estimators (wavelet, air, foreground, coils and sigma together) and
  the local noise map (:func:`~.noise.estimate_noise_map`);
- :mod:`.magnitude` -- magnitude statistics: noncentral chi moments, bias removal;
- :mod:`.variance_stabilisation` -- the variance-stabilising transform of magnitude noise and its
  exact unbiased inverse;
- :mod:`.coil_noise`, :mod:`.coil_combination` -- coil noise covariance, prewhitening, combination;
- :mod:`.simulate`, :mod:`.phantom` -- noise simulation and phantoms for tests and benchmarks;
- :mod:`.sense` -- uniform undersampling, SENSE unfolding and its exact noise map (benchmarks);
- :mod:`.names` -- the estimators' names, without importing numpy or scipy.
"""
