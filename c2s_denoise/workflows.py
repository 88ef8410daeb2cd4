"""File-level workflows behind the ``c2s-denoise`` command line.

Each function does one whole job on files (fit a model, apply it to a list of
files, score results against references, estimate noise, run the demo) and
returns a JSON-serialisable summary. They are usable from Python as well as
through :mod:`c2s_denoise.cli`, which only parses arguments and prints.

Every problem with a file raises :class:`~c2s_denoise.io.C2SInputError`
*before* any output is written where it can be detected up front (missing or
unreadable inputs, existing outputs, an output that is an input, a bad model
file); all writes are atomic.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .io import (
    C2SInputError,
    LoadedImage,
    atomic_write,
    check_output_path,
    detect_format,
    load_image,
    parse_m4raw_name,
    probe_image,
    save_image,
    strip_suffix,
)
from .io.errors import describe_exception

__all__ = [
    "ReadOptions",
    "apply_files",
    "estimate_noise_files",
    "evaluate_files",
    "file_sha256",
    "fit_files",
    "load_model",
    "run_demo",
    "save_model",
]

logger = logging.getLogger("c2s_denoise")

#: Called after each finished item with (done, total); the CLI passes a progress bar's update.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReadOptions:
    """How input files are read (see :func:`c2s_denoise.io.load_image`).

    Attributes
    ----------
    crop : tuple of int or None
        Centre crop ``(h, w)`` of every slice.
    slice_axis : int
        NIfTI: the stored axis along which slices are taken.
    npz_key : str or None
        ``.npz``: the array to read.
    dataset : str or None
        HDF5: the dataset to read instead of the default choice (e.g. ``"kspace"``).
    """

    crop: tuple[int, int] | None = None
    slice_axis: int = -1
    npz_key: str | None = None
    dataset: str | None = None

    def _kwargs(self) -> dict[str, Any]:
        return {"crop": self.crop, "slice_axis": self.slice_axis, "npz_key": self.npz_key, "dataset": self.dataset}

    def load(self, path: str | os.PathLike[str]) -> LoadedImage:
        """Load ``path`` with these options."""
        return load_image(path, **self._kwargs())

    def probe(self, path: str | os.PathLike[str]) -> None:
        """Cheaply check ``path`` with these options (see :func:`c2s_denoise.io.probe_image`)."""
        probe_image(path, **self._kwargs())


def _estimator_class() -> type:
    from .estimator import C2SDenoiser

    return C2SDenoiser


def _version() -> str:
    from ._version import __version__

    return __version__


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 hex digest of a file's content.

    Parameters
    ----------
    path : str or path-like
        File to hash.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- models
def save_model(model: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Save a fitted model with joblib, atomically.

    Parameters
    ----------
    model : C2SDenoiser
        The fitted estimator.
    path : str or path-like
        Model file (``.joblib`` by convention). Its folder must exist.
    overwrite : bool, default False
        Whether an existing file may be replaced.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import joblib

    out = Path(path)
    with atomic_write(out, overwrite=overwrite) as tmp:
        joblib.dump(model, tmp)
    return out


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a fitted :class:`~c2s_denoise.C2SDenoiser` saved with joblib.

    Loading runs Python's unpickler: only load model files you trust.

    Parameters
    ----------
    path : str or path-like
        Model file written by :func:`save_model` or ``joblib.dump``.

    Returns
    -------
    C2SDenoiser
        The fitted estimator.

    Raises
    ------
    C2SInputError
        If the file is missing or unreadable, is not a joblib/pickle file, or
        holds something other than a fitted ``C2SDenoiser``.
    """
    import joblib
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    p = Path(path)
    if not p.exists():
        raise C2SInputError(p, "model file not found")
    if not p.is_file():
        raise C2SInputError(p, "model path is not a regular file")
    try:
        model = joblib.load(p)
    except Exception as exc:  # unpickling errors come in many types
        raise C2SInputError(p, f"not a c2s-denoise model file ({describe_exception(exc)})") from None
    cls = _estimator_class()
    if not isinstance(model, cls):
        raise C2SInputError(p, f"not a c2s-denoise model file (it holds a {type(model).__name__}, not a C2SDenoiser)")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise C2SInputError(p, "the model in this file is not fitted; run 'c2s-denoise fit' first") from None
    return model


@functools.lru_cache(maxsize=2)
def _cached_model(path: str, sha256: str) -> Any:
    """Per-process model cache for parallel ``apply`` workers (keyed by content hash)."""
    model = load_model(path)
    if file_sha256(path) != sha256:
        raise C2SInputError(path, "model file changed while it was being applied")
    return model


def _sigma_used(model: Any, volume: np.ndarray) -> float:
    """The noise level the estimator uses for ``volume`` (its rule, via the public estimator)."""
    if isinstance(model.sigma, str):
        from .noise import estimate_sigma

        method = "wavelet" if model.sigma == "auto" else model.sigma
        return float(estimate_sigma(volume, method))
    return float(model.sigma)


# ----------------------------------------------------------------------------- fit
def _check_folder(folder: Path) -> None:
    """An output folder must be a folder or not exist yet (it is created when needed)."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise C2SInputError(parent, "output folder is an existing file")
            return

def _check_inputs(paths: Sequence[str | os.PathLike[str]], options: ReadOptions) -> list[Path]:
    if not paths:
        raise C2SInputError(None, "no input files given")
    for path in paths:
        options.probe(path)
    return [Path(p) for p in paths]


def fit_files(
    inputs: Sequence[str | os.PathLike[str]],
    model_path: str | os.PathLike[str],
    *,
    params: dict[str, Any] | None = None,
    read_options: ReadOptions | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit a C2S model on image files and save it.

    Each file is one training volume (its own intensity scale and noise
    level); files may have different image sizes.

    Parameters
    ----------
    inputs : sequence of path-like
        Noisy training files (any supported format).
    model_path : path-like
        Where to save the fitted model (joblib). Checked before training; its
        folder is created if missing.
    params : dict, optional
        Keyword arguments for :class:`~c2s_denoise.C2SDenoiser`.
    read_options : ReadOptions, optional
        How the inputs are read.
    overwrite : bool, default False
        Whether an existing model file may be replaced.
    progress : callable, optional
        Called as ``progress(done, total)`` after each file is read.

    Returns
    -------
    dict
        Summary: model path, inputs with their shapes, the per-volume noise
        levels ``sigma_``, the estimator parameters, steps and time.

    Raises
    ------
    C2SInputError
        For a bad input, an existing or colliding model path, or estimator
        parameters the estimator rejects.
    """
    options = read_options or ReadOptions()
    paths = _check_inputs(inputs, options)
    out = check_output_path(model_path, inputs=paths, overwrite=overwrite)
    _check_folder(out.parent)
    volumes = []
    for index, path in enumerate(paths):
        logger.info("reading %s", path)
        volumes.append(options.load(path).data)
        if progress:
            progress(index + 1, len(paths))
    try:
        model = _estimator_class()(**(params or {}))
    except TypeError as exc:
        raise C2SInputError(None, f"invalid estimator parameter ({exc})") from None
    start = time.perf_counter()
    try:
        model.fit(volumes)
    except ValueError as exc:  # includes scikit-learn's InvalidParameterError
        raise C2SInputError(None, f"cannot fit: {describe_exception(exc)}") from None
    seconds = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, out, overwrite=overwrite)
    logger.info("saved model to %s", out)
    return {
        "command": "fit",
        "model": str(out),
        "model_sha256": file_sha256(out),
        "inputs": [{"file": str(p), "shape": list(v.shape)} for p, v in zip(paths, volumes, strict=True)],
        "n_slices": int(sum(v.shape[0] for v in volumes)),
        "sigma": [float(s) for s in np.asarray(model.sigma_).ravel()],
        "n_iter": int(getattr(model, "n_iter_", -1)),
        "fit_seconds": round(seconds, 3),
        "device": str(getattr(model, "device_", "")),
        "params": _jsonable_params(model.get_params()),
    }


def _jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = list(value)
        else:
            out[key] = repr(value)
    return out


# ----------------------------------------------------------------------------- apply
def _plan_outputs(paths: Sequence[Path], outdir: Path, model_path: Path, overwrite: bool) -> list[Path]:
    outputs: list[Path] = []
    seen: dict[Path, Path] = {}
    for path in paths:
        out = outdir / path.name
        key = out.resolve()
        if key in seen:
            raise C2SInputError(out, f"inputs {seen[key]} and {path} would both be written here")
        seen[key] = path
        check_output_path(out, inputs=[*paths, model_path], overwrite=overwrite)
        outputs.append(out)
    return outputs


def _apply_one(
    model: Any,
    model_info: dict[str, Any],
    source: Path,
    target: Path,
    options: ReadOptions,
    overwrite: bool,
) -> dict[str, Any]:
    start = time.perf_counter()
    image = options.load(source)
    try:
        denoised = model.transform([image.data])[0]
    except ValueError as exc:
        raise C2SInputError(source, f"cannot denoise: {describe_exception(exc)}") from None
    provenance = {
        **model_info,
        "sigma": _sigma_used(model, image.data),
        "refinement": float(model.refinement),
        "source_file": source.name,
        "source_dataset": image.meta.get("dataset"),
    }
    save_image(target, denoised.astype(image.data.dtype, copy=False), image, provenance, overwrite=overwrite)
    return {
        "input": str(source),
        "output": str(target),
        "shape": list(image.data.shape),
        "sigma": provenance["sigma"],
        "seconds": round(time.perf_counter() - start, 3),
    }


def _apply_worker(
    model_path: str, model_info: dict[str, Any], source: Path, target: Path, options: ReadOptions, overwrite: bool
) -> dict[str, Any]:
    model = _cached_model(model_path, model_info["model_sha256"])
    return _apply_one(model, model_info, source, target, options, overwrite)


def apply_files(
    model_path: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    *,
    n_jobs: int = 1,
    overwrite: bool = False,
    read_options: ReadOptions | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Denoise files with a saved model, writing ``<outdir>/<input name>`` in the input's format.

    Everything that can be checked up front is checked before any output is
    written: the model, every input's type and structure, and every output
    path. Each output is written atomically, so an interrupted run leaves the
    finished outputs whole and no partial file.

    Parameters
    ----------
    model_path : path-like
        Model saved by :func:`fit_files` / :func:`save_model`.
    inputs : sequence of path-like
        Files to denoise. Their names must be distinct.
    outdir : path-like
        Output folder, created if missing. It must not hold the inputs
        themselves (an input is never overwritten).
    n_jobs : int, default 1
        Files denoised in parallel (separate processes, each loading the
        model once); ``-1`` for one per CPU core.
    overwrite : bool, default False
        Whether existing outputs may be replaced.
    read_options : ReadOptions, optional
        How the inputs are read (the outputs keep the cropped size).
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.

    Returns
    -------
    dict
        Summary with one entry per output (input, output, shape, noise level
        used, seconds), in input order.

    Raises
    ------
    C2SInputError
        For a bad model, a bad input, or an output that exists or is an input.
    """
    options = read_options or ReadOptions()
    model_file = Path(model_path)
    model = load_model(model_file)
    paths = _check_inputs(inputs, options)
    if options.crop is not None:
        for path in paths:
            if detect_format(path) == "nifti":
                raise C2SInputError(path, "--crop is not supported when writing NIfTI outputs")
    folder = Path(outdir)
    _check_folder(folder)
    outputs = _plan_outputs(paths, folder, model_file, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    model_info = {
        "package_version": _version(),
        "model_file": model_file.name,
        "model_sha256": file_sha256(model_file),
    }
    total = len(paths)
    results: list[dict[str, Any]] = []
    if n_jobs == 1 or total == 1:
        for index, (source, target) in enumerate(zip(paths, outputs, strict=True)):
            logger.info("denoising %s -> %s", source, target)
            results.append(_apply_one(model, model_info, source, target, options, overwrite))
            if progress:
                progress(index + 1, total)
    else:
        from joblib import Parallel, delayed

        jobs = (
            delayed(_apply_worker)(str(model_file), model_info, source, target, options, overwrite)
            for source, target in zip(paths, outputs, strict=True)
        )
        runner = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
        for index, result in enumerate(runner(jobs)):
            logger.info("wrote %s", result["output"])
            results.append(result)
            if progress:
                progress(index + 1, total)
        order = {str(p): i for i, p in enumerate(paths)}
        results.sort(key=lambda r: order[r["input"]])
    return {
        "command": "apply",
        "model": str(model_file),
        **{k: v for k, v in model_info.items() if k != "model_file"},
        "outdir": str(folder),
        "n_files": total,
        "outputs": results,
    }


# ----------------------------------------------------------------------------- evaluate
def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, with folders replaced by the supported files they hold (sorted)."""
    out: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and detect_format(f) is not None)
            if not found:
                raise C2SInputError(p, "folder holds no supported image files")
            out.extend(found)
        else:
            out.append(p)
    return out


def _reference_groups(references: Sequence[Path]) -> dict[tuple[str, str], list[Path]]:
    groups: dict[tuple[str, str], list[Path]] = {}
    for ref in references:
        parts = parse_m4raw_name(ref)
        if parts is None:
            raise C2SInputError(
                ref, "--reference-average needs M4Raw-style names <study>_<T1|T2|FLAIR><NN> for the references"
            )
        groups.setdefault((parts.study, parts.contrast), []).append(ref)
    return groups


def _match_references(denoised: Sequence[Path], references: Sequence[Path], average: bool) -> list[list[Path]]:
    """For each denoised file, the reference file(s) it is scored against."""
    if average:
        groups = _reference_groups(references)
        matched = []
        for path in denoised:
            parts = parse_m4raw_name(path)
            if parts is None:
                raise C2SInputError(path, "--reference-average needs an M4Raw-style name <study>_<T1|T2|FLAIR><NN>")
            key = (parts.study, parts.contrast)
            if key not in groups:
                raise C2SInputError(path, f"no reference for study {parts.study} contrast {parts.contrast}")
            matched.append(sorted(groups[key]))
        return matched
    if len(denoised) == 1 and len(references) == 1:
        return [[references[0]]]
    by_name = {ref.name: ref for ref in references}
    by_stem = {strip_suffix(ref.name): ref for ref in references}
    matched = []
    for path in denoised:
        ref = by_name.get(path.name) or by_stem.get(strip_suffix(path.name))
        if ref is None:
            raise C2SInputError(path, "no reference with the same file name (give one reference per denoised file)")
        matched.append([ref])
    return matched


def evaluate_files(
    denoised: Sequence[str | os.PathLike[str]],
    references: Sequence[str | os.PathLike[str]],
    *,
    reference_average: bool = False,
    read_options: ReadOptions | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score denoised files against references with PSNR and SSIM.

    Each denoised file is paired with the reference of the same file name
    (or the same name without suffix; a single file with a single
    reference). With ``reference_average``, files follow the M4Raw naming
    ``<study>_<contrast><repetition>`` and the reference is the mean of all
    reference repetitions of the same study and contrast (M4Raw's
    multi-repetition average labels). The intensity range of each score is
    the reference's ``max - min``.

    Parameters
    ----------
    denoised : sequence of path-like
        Files to score (files or folders).
    references : sequence of path-like
        Reference files or folders.
    reference_average : bool, default False
        Average the references' repetitions per study and contrast.
    read_options : ReadOptions, optional
        How both sides are read (e.g. the same crop).
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.

    Returns
    -------
    dict
        ``results`` (file, references, psnr, ssim, data_range per file) and
        their means.

    Raises
    ------
    C2SInputError
        For unreadable files, missing references, or shapes that differ.
    """
    from .metrics import data_range, psnr, ssim

    options = read_options or ReadOptions()
    files = _expand(denoised)
    refs = _expand(references)
    if not files:
        raise C2SInputError(None, "no denoised files given")
    if not refs:
        raise C2SInputError(None, "no reference files given")
    for path in [*files, *refs]:
        options.probe(path)
    pairs = _match_references(files, refs, reference_average)
    cache: dict[tuple[Path, ...], np.ndarray] = {}
    results = []
    for index, (path, ref_paths) in enumerate(zip(files, pairs, strict=True)):
        key = tuple(ref_paths)
        if key not in cache:
            stack = [options.load(r).data.astype(np.float64) for r in ref_paths]
            for r, arr in zip(ref_paths[1:], stack[1:], strict=True):
                if arr.shape != stack[0].shape:
                    raise C2SInputError(r, f"shape {arr.shape} differs from {ref_paths[0]} {stack[0].shape}")
            cache[key] = np.mean(stack, axis=0)
        reference = cache[key]
        image = options.load(path).data.astype(np.float64)
        if image.shape != reference.shape:
            raise C2SInputError(path, f"shape {image.shape} differs from its reference's {reference.shape}")
        results.append(
            {
                "file": str(path),
                "reference": [str(r) for r in ref_paths],
                "psnr": psnr(image, reference),
                "ssim": ssim(image, reference),
                "data_range": data_range(reference),
            }
        )
        if progress:
            progress(index + 1, len(files))
    return {
        "command": "evaluate",
        "reference_average": reference_average,
        "n_files": len(results),
        "mean_psnr": float(np.mean([r["psnr"] for r in results])),
        "mean_ssim": float(np.mean([r["ssim"] for r in results])),
        "results": results,
    }


# ----------------------------------------------------------------------------- estimate-noise
def estimate_noise_files(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    read_options: ReadOptions | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Estimate the noise level of each file with both estimators.

    Parameters
    ----------
    inputs : sequence of path-like
        Image files.
    read_options : ReadOptions, optional
        How the files are read.
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.

    Returns
    -------
    dict
        ``results``: per file its shape, ``sigma_wavelet`` (median absolute
        deviation of the finest diagonal wavelet band) and ``sigma_rayleigh``
        (signal-free background; None with a ``rayleigh_error`` when the
        image has no usable background), in the file's units.
    """
    from .noise import estimate_sigma

    options = read_options or ReadOptions()
    paths = _check_inputs(inputs, options)
    results = []
    for index, path in enumerate(paths):
        data = options.load(path).data
        entry: dict[str, Any] = {"file": str(path), "shape": list(data.shape)}
        for method in ("wavelet", "rayleigh"):
            try:
                entry[f"sigma_{method}"] = float(estimate_sigma(data, method))
            except ValueError as exc:
                entry[f"sigma_{method}"] = None
                entry[f"{method}_error"] = str(exc)
        results.append(entry)
        if progress:
            progress(index + 1, len(paths))
    return {"command": "estimate-noise", "n_files": len(results), "results": results}


# ----------------------------------------------------------------------------- demo
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


DEMO_FILES = ("before_after.png", "noisy.npy", "clean.npy", "model.joblib")


def run_demo(
    out_dir: str | os.PathLike[str],
    settings: DemoSettings | None = None,
    *,
    overwrite: bool = False,
    verbose: int = 0,
) -> dict[str, Any]:
    """Denoise a synthetic brain phantom end to end and write a before/after figure.

    Builds :func:`~c2s_denoise.phantom.brain_phantom` slices, adds Gaussian
    noise of known level (fixed seed), fits a short C2S model on the noisy
    slices only, denoises them and scores both against the clean phantom.

    Parameters
    ----------
    out_dir : path-like
        Folder for ``before_after.png`` (noisy | denoised | clean, middle
        slice), ``noisy.npy``, ``clean.npy`` and ``model.joblib``; created if
        missing.
    settings : DemoSettings, optional
        Phantom size, noise level and training length.
    overwrite : bool, default False
        Whether existing demo files may be replaced.
    verbose : int, default 0
        Passed to the estimator (progress bar on stderr).

    Returns
    -------
    dict
        PSNR/SSIM of the noisy and denoised slices, the files written, the
        settings and the fit time.
    """
    from .io.png import side_by_side, write_png
    from .metrics import psnr, ssim
    from .phantom import brain_phantom

    cfg = settings or DemoSettings()
    folder = Path(out_dir)
    _check_folder(folder)
    targets = {name: folder / name for name in DEMO_FILES}
    for target in targets.values():
        check_output_path(target, overwrite=overwrite)
    folder.mkdir(parents=True, exist_ok=True)

    clean = brain_phantom((cfg.n_slices, cfg.size, cfg.size), seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    noisy = clean + cfg.sigma * rng.standard_normal(clean.shape)
    model = _estimator_class()(
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
    figure = side_by_side([noisy[middle], denoised[middle], clean[middle]])
    write_png(
        targets["before_after.png"], figure, vmin=0.0, vmax=1.0, zoom=2 if cfg.size < 200 else 1, overwrite=overwrite
    )
    for name, array in (("noisy.npy", noisy), ("clean.npy", clean)):
        with atomic_write(targets[name], overwrite=overwrite) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array.astype(np.float32))
    save_model(model, targets["model.joblib"], overwrite=overwrite)
    return {
        "command": "demo",
        "psnr_noisy": psnr(noisy, clean),
        "psnr_denoised": psnr(denoised, clean),
        "ssim_noisy": ssim(noisy, clean),
        "ssim_denoised": ssim(denoised, clean),
        "fit_seconds": round(fit_seconds, 3),
        "n_iter": int(getattr(model, "n_iter_", cfg.max_iter)),
        "device": str(getattr(model, "device_", "")),
        "files": {name: str(path) for name, path in targets.items()},
        "settings": asdict(cfg),
    }
