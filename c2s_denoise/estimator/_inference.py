"""What ``transform``, ``denoise`` and ``score`` do: one forward pass per item, back to the input's units.

Part of :class:`~c2s_denoise.estimator.C2SDenoiser`.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch

from ..engine import denoise_images, resolve_device
from ..metrics import data_range, psnr, sure_psnr
from ..physics.complex_floor import complex_floor_error, shrink_complex_floor
from ._channels import as_parts, demodulated
from ._layouts import is_label_vector, split_contrast_items, split_volumes
from ._lazy_layouts import is_lazy
from ._magnitude_path import from_network
from ._noise_levels import MIN_RELATIVE_SIGMA, effective_coils, noise_level, sigma_rule
from ._noise_maps import is_map_rule
from ._planes import MIN_SLICES, multiplanar_volume
from ._reading import Items
from ._volumes import volumes_to_slices

__all__ = ["InferenceMixin"]


class InferenceMixin:
    """``noise_level``, ``denoise`` and ``score``, and the private steps of ``transform``."""

    def noise_level(self, volume, contrast: str | None = None) -> float:
        """Noise level, in input units, that the ``sigma`` rule gives one image or volume.

        Parameters
        ----------
        volume : ndarray of shape (H, W) or (D, H, W)
            One image or volume (of ``contrast``, with named contrasts); real or complex.
        contrast : str, optional
            Its contrast, when ``sigma`` is a per-contrast dict.

        Returns
        -------
        float
            ``sigma`` itself, or its estimate on ``volume`` for a method name (per real
            component of the noise).
        """
        rule = sigma_rule(self.sigma, contrast)
        noise_model = getattr(self, "noise_model_", None)
        n_coils = getattr(self, "n_coils_", None)
        if n_coils is None:
            n_coils = effective_coils([np.asarray(volume)]) if self.n_coils == "auto" else self.n_coils
        if is_map_rule(rule):
            raise ValueError(
                "sigma gives noise maps, not one level: the level of each item is the median of its map "
                "(sigma_ after fit); c2s_denoise.physics.noise.estimate_noise_map estimates a map"
            )
        return noise_level(
            volume, rule, noise_model, noise_model_rule=self.noise_model, n_coils=n_coils, contrast=contrast
        )[0]

    def denoise(self, X):
        """Denoise like :meth:`transform`, and say at which noise levels.

        Parameters
        ----------
        X : array-like, list of array-like, or dict
            As in :meth:`transform`.

        Returns
        -------
        denoised : ndarray, list of ndarray or dict
            What :meth:`transform` returns.
        noise_levels : ndarray, shape (n_items,) or (n_items, n_contrasts)
            The noise level used for each item (and contrast), in the input's units: the fixed
            ``sigma``, or the estimate made for that item (0 where an estimate failed).
        """
        items, layout, names, sigmas, scales, maps = self._read_fitted(X)
        denoised = self._denoise_items(items, sigmas, scales)
        if maps is not None:
            denoised = maps.restore(denoised)
        denoised = self._join(denoised, layout, names)
        return denoised, (sigmas[:, 0] if names is None else sigmas)

    def score(self, X, y=None):
        """Self-supervised denoising quality in dB (higher is better); no clean data needed.

        Parameters
        ----------
        X : array-like, list of array-like, or dict
            Noisy images.
        y : None
            Ignored, like ``PCA.score``'s ``y``: there for the scikit-learn API (a label vector
            passed by ``Pipeline`` or ``GridSearchCV`` does not change the score). To score
            against clean references use :func:`c2s_denoise.psnr_scorer`. Deprecated: clean
            references in the layout of ``X`` still give their PSNR, with a ``FutureWarning``,
            until c2s-denoise 0.3.

        Returns
        -------
        float
            A self-supervised estimate, in dB, of how well the denoised image predicts an
            independent repetition of the scan, ``10 log10(scale**2 / R)`` averaged over
            images/volumes (and target contrasts), with ``R = |f(y) - y|^2 / N + 2 sigma^2 div
            f / N`` and the divergence from one Monte-Carlo probe (Ramani et al. 2008).
            ``R - sigma**2`` is Stein's unbiased risk estimate (SURE) of the MSE against the
            clean image, so ``R`` estimates the MSE against a second noisy scan, ``MSE(f, x) +
            sigma**2``: it ranks denoisers like the true MSE, gives the identity map exactly ``2
            sigma**2`` (no reward for doing nothing), and, unlike SURE itself, stays positive
            when ``sigma`` is somewhat over-estimated (SURE goes negative for good denoisers once
            the ``sigma**2`` error exceeds their MSE). ``scale`` is the 99.5th percentile of the
            noisy magnitude; ``sigma`` follows the ``sigma`` parameter (estimated on ``X`` for a
            method name). The estimate assumes Gaussian noise; it is biased at very low SNR in
            Rician background. For complex images ``N`` counts real components. This is the
            score ``GridSearchCV`` uses by default.
        """
        if y is not None and not is_label_vector(y):
            warnings.warn(
                "score(X, y) with clean reference images y is deprecated and ignores y from c2s-denoise 0.3 "
                "on; use c2s_denoise.psnr_scorer(model, X, y) (or scoring=c2s_denoise.psnr_scorer in "
                "GridSearchCV) for the PSNR against references",
                FutureWarning,
                stacklevel=2,
            )
            return float(np.mean(self._reference_psnrs(X, y)))
        items, _, _, sigmas, scales, _ = self._read_fitted(X)  # with noise maps: scored on the flattened items
        denoised = self._denoise_items(items, sigmas, scales)
        contrasts = list(self._fitted_networks())
        return float(np.mean(self._sure_psnrs(items, denoised, sigmas, scales, contrasts)))

    def _denoise_items(
        self, items: Items, sigmas: np.ndarray, scales: np.ndarray, contrasts: list[int] | None = None
    ) -> Items:
        """Denoised copies of ``items`` (float64 or complex128, input units); contrasts without a network are copied.

        Complex items are denoised as (real, imaginary) channels; magnitude items get their
        noise bias removed (``noise_model_`` "rician"/"ncchi"). ``contrasts`` limits the
        denoising to those contrast indices.
        """
        is_complex = self.complex_input_
        phases = None
        if is_complex and self.phase_demodulated_:  # as in fit (physics.phase)
            items, phases = demodulated(items, sigmas)
        parts, part_sigmas, part_scales = as_parts(items, sigmas, scales, is_complex)
        outputs = [item.astype(np.float64, copy=True) for item in parts]
        n_denoised_channels = 2 if is_complex else 1
        noise_model = self.noise_model_
        for contrast, network in self._fitted_networks().items():
            if contrasts is not None and contrast not in contrasts:
                continue
            channels = slice(contrast, contrast + n_denoised_channels)
            stacks = self._network_outputs(network, parts, part_sigmas, part_scales, contrast, is_complex)
            for output, stack, sigma in zip(outputs, stacks, part_sigmas):
                output[channels] = stack
                output[contrast] = from_network(
                    output[contrast],
                    float(sigma[contrast]),
                    noise_model,
                    self.n_coils_,
                    self.magnitude_correction_,
                    float(self.floor_shrinkage),
                )
        if is_complex:  # the air of a complex image comes out flat too (physics.complex_floor)
            complex_outputs = [
                _without_floor(output[0] + 1j * output[1], float(sigma[0]), float(self.floor_shrinkage))[None]
                for output, sigma in zip(outputs, part_sigmas)
            ]
            return complex_outputs if phases is None else [out * phase for out, phase in zip(complex_outputs, phases)]
        return outputs

    def _network_outputs(
        self, network, parts: Items, sigmas: np.ndarray, scales: np.ndarray, contrast: int, is_complex: bool
    ) -> list[np.ndarray]:
        """The network's estimate of the denoised channels of each part, ``(channels, D, H, W)``, in input units.

        Magnitude parts stay in the network's (stabilised) domain. With ``multiplanar``, the
        volumes of at least ``MIN_SLICES`` slices that a 2-D network denoises are denoised along
        their three axes and mixed by SURE (:func:`~c2s_denoise.estimator._planes.multiplanar_volume`; with
        ``sure_filter``, by the SURE filter over the planes);
        lazily read volumes, whose slices are read one at a time, keep their acquired slices.
        """
        dims = network.config.get("spatial_dims", 2)
        channels = slice(contrast, contrast + (2 if is_complex else 1))
        run = functools.partial(
            denoise_images,
            network,
            device=resolve_device(self.device, or_cpu=True),  # a model fitted on a GPU denoises here
            batch_size=self.inference_batch_size,
        )
        planar = [
            self.multiplanar and dims == 2 and not is_lazy(part) and part.shape[1] >= MIN_SLICES and sigma[contrast] > 0
            for part, sigma in zip(parts, sigmas)
        ]
        outputs: list[np.ndarray] = [np.empty(0)] * len(parts)
        acquired = [index for index, is_planar in enumerate(planar) if not is_planar]
        if acquired:
            inputs, levels, _ = self._network_inputs(
                [parts[i] for i in acquired], sigmas[acquired], scales[acquired], contrast, is_complex, dims
            )
            denoised = run(inputs, levels, self_ensemble=self.self_ensemble)
            if dims == 3:
                denoised = volumes_to_slices(denoised)
            position = 0
            for index in acquired:
                depth = parts[index].shape[1]
                stack = torch.stack(denoised[position : position + depth], dim=1).numpy()  # (channels, D, H, W)
                outputs[index] = stack * scales[index][channels, None, None, None]
                position += depth
        for index in (index for index, is_planar in enumerate(planar) if is_planar):
            rows = slice(index, index + 1)
            volume = self._stabilised([parts[index]], sigmas[rows])[0]

            def denoise(slices: np.ndarray, ensemble: bool, rows: slice = rows) -> np.ndarray:
                inputs, levels, _ = self._slice_inputs([slices], sigmas[rows], scales[rows], contrast, is_complex)
                denoised = run(inputs, levels, self_ensemble=ensemble)
                return torch.stack(denoised, dim=1).numpy() * scales[rows][0][channels, None, None, None]

            once = functools.partial(denoise, ensemble=False)
            full = functools.partial(denoise, ensemble=True) if self.self_ensemble else once
            sigma = float(sigmas[index][contrast])
            outputs[index] = multiplanar_volume(full, once, volume, channels, sigma, self.sure_filter)[0]
        return outputs

    def _read_references(self, y, items: list[np.ndarray], names: tuple[str, ...] | None) -> list[np.ndarray]:
        """Clean references ``y`` as items like ``items`` (same layout and shapes, or a ValueError)."""
        if names is None:
            references = [volume[None] for volume in split_volumes(y, self.image_shape, np.asarray)[0]]
        else:
            references = split_contrast_items(y, names)[0]
        if [r.shape for r in references] != [i.shape for i in items]:
            raise ValueError("y must have the same layout and shapes as X")
        return references

    def _reference_psnrs(self, X, y) -> list[float]:
        """PSNR of each denoised item (and target contrast) of ``X`` against the clean ``y``, with ``y``'s range."""
        items, _, names, sigmas, scales, maps = self._read_fitted(X)
        denoised = self._denoise_items(items, sigmas, scales)
        if maps is not None:
            items, denoised = maps.restore(items), maps.restore(denoised)
        references = self._read_references(y, items, names)
        return [
            psnr(output[c], reference[c], range_=data_range(np.abs(reference[c])) or 1.0)
            for reference, output in zip(references, denoised)
            for c in self._fitted_networks()
        ]

    def _sure_psnrs(
        self, items: Items, denoised: Items, sigmas: np.ndarray, scales: np.ndarray, contrasts: list[int]
    ) -> list[float]:
        """:func:`~c2s_denoise.metrics.sure_psnr` of each item and denoised contrast."""
        probe_rng = np.random.default_rng(0)
        scores = []
        for item, output, sigma_row, scale_row in zip(items, denoised, sigmas, scales):
            for contrast in contrasts:
                sigma = max(float(sigma_row[contrast]), MIN_RELATIVE_SIGMA * scale_row[contrast])
                denoise = functools.partial(self._denoise_channel, item, sigma_row, scale_row, contrast)
                scores.append(
                    sure_psnr(item[contrast], output[contrast], sigma, scale_row[contrast], denoise, probe_rng)
                )
        return scores

    def _denoise_channel(
        self, item: np.ndarray, sigma_row: np.ndarray, scale_row: np.ndarray, contrast: int, channel: np.ndarray
    ) -> np.ndarray:
        """The denoised ``contrast`` of ``item`` with that contrast replaced by ``channel``."""
        replaced = item.astype(channel.dtype, copy=True)
        replaced[contrast] = channel
        return self._denoise_items([replaced], sigma_row[None], scale_row[None], [contrast])[0][contrast]


def _without_floor(image: np.ndarray, sigma: float, shrinkage: float) -> np.ndarray:
    """A denoised complex item with the floor of its remaining error removed (``floor_shrinkage``); input units.

    Magnitudes below the input's noise level ``sigma`` are taken as air to measure the error (the
    denoised tissue lies far above it).
    """
    if shrinkage <= 0 or sigma <= 0:
        return image
    error = complex_floor_error(image / sigma, threshold=1.0) * sigma
    return shrink_complex_floor(image, error, shrinkage)
