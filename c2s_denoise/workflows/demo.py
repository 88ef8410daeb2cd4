"""``demo``: denoise a synthetic brain phantom end to end and write a before/after figure."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write, check_output_path
from ._common import PathLike, check_device, check_output_folder, estimator_class, logger
from ._figure import before_after_figure
from .recovery import save_model_or_fallback

__all__ = ["DEMO_FILES", "DemoSettings", "run_demo"]


@dataclass(frozen=True)
class DemoSettings:
    """Settings of :func:`run_demo`, sized to finish in about a minute on 2 CPU cores."""

    size: int = 96
    n_slices: int = 4
    sigma: float = 0.08
    seed: int = 0
    max_iter: int = 1500
    width: int = 16
    batch_size: int = 8
    patch_size: int = 48
    device: str = "auto"


DEMO_FILES = ("before_after.png", "noisy.npy", "clean.npy", "model.c2s")


def run_demo(
    out_dir: PathLike,
    settings: DemoSettings | None = None,
    *,
    overwrite: bool = False,
    verbose: int = 0,
) -> dict[str, Any]:
    """Denoise a synthetic brain phantom end to end and write a before/after figure.

    Builds :func:`~c2s_denoise.physics.phantom.brain_phantom` slices, adds Gaussian
    noise of known level (fixed seed), fits a short C2S model on the noisy
    slices only, denoises them and scores both against the clean phantom.

    Parameters
    ----------
    out_dir : path-like
        Folder for ``before_after.png`` (noisy | denoised | clean, middle
        slice, labelled with their PSNR against the clean slice, over a 2x
        zoom of their centre: :func:`._figure.before_after_figure`),
        ``noisy.npy``, ``clean.npy`` and ``model.c2s``; created if missing.
    settings : DemoSettings, optional
        Phantom size, noise level and training length.
    overwrite : bool, default False
        Whether existing demo files may be replaced.
    verbose : int, default 0
        Passed to the estimator (progress bar on stderr).

    Returns
    -------
    dict
        PSNR/SSIM of the noisy and denoised slices, ``figure`` (the slice shown
        and its PSNRs, which label the figure), the files written, the
        settings and the fit time.
    """
    from ..io.png import write_png
    from ..metrics import psnr, ssim
    from ..physics.phantom import brain_phantom

    cfg = settings or DemoSettings()
    folder = Path(out_dir)
    check_output_folder(folder)
    targets = {name: folder / name for name in DEMO_FILES}
    for target in targets.values():
        check_output_path(target, overwrite=overwrite)
    check_device(cfg.device)
    folder.mkdir(parents=True, exist_ok=True)

    clean = brain_phantom((cfg.n_slices, cfg.size, cfg.size), seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    noisy = clean + cfg.sigma * rng.standard_normal(clean.shape)
    model = estimator_class()(
        sigma=cfg.sigma,
        max_iter=cfg.max_iter,
        width=cfg.width,
        batch_size=cfg.batch_size,
        patch_size=min(cfg.patch_size, cfg.size),
        device=cfg.device,
        random_state=cfg.seed,
        verbose=verbose,
    )
    logger.info("fitting C2S on %d noisy %dx%d phantom slices", cfg.n_slices, cfg.size, cfg.size)
    start = time.perf_counter()
    model.fit([noisy])
    fit_seconds = time.perf_counter() - start
    denoised = model.transform([noisy])[0]

    middle = cfg.n_slices // 2
    shown = [noisy[middle], denoised[middle], clean[middle]]
    shown_psnr = {"psnr_noisy": psnr(shown[0], shown[2]), "psnr_denoised": psnr(shown[1], shown[2])}
    labels = [f"noisy {shown_psnr['psnr_noisy']:.2f} dB", f"C2S {shown_psnr['psnr_denoised']:.2f} dB", "clean"]
    write_png(targets["before_after.png"], before_after_figure(shown, labels), vmin=0.0, vmax=1.0, overwrite=overwrite)
    for name, array in (("noisy.npy", noisy), ("clean.npy", clean)):
        with atomic_write(targets[name], overwrite=overwrite) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array.astype(np.float32))
    save_model_or_fallback(model, targets["model.c2s"], overwrite=overwrite)
    return {
        "command": "demo",
        "psnr_noisy": psnr(noisy, clean),
        "psnr_denoised": psnr(denoised, clean),
        "ssim_noisy": ssim(noisy, clean),
        "ssim_denoised": ssim(denoised, clean),
        "figure": {"slice": middle, **shown_psnr},
        "fit_seconds": round(fit_seconds, 3),
        "n_iter": int(model.n_iter_),
        "device": str(model.device_),
        "files": {name: str(path) for name, path in targets.items()},
        "settings": asdict(cfg),
    }
