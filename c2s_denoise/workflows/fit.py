"""``fit``: train a C2S model on image files and save it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import C2SInputError, LoadedImage, ReadOptions, check_output_path
from ..io.volume_cache import VolumeCache
from ._common import (
    Inputs,
    PathLike,
    Progress,
    Subject,
    check_device,
    check_inputs,
    check_output_folder,
    check_voxel_sizes,
    estimator_class,
    item_error,
    logger,
    torch_threads,
)
from ._distributed import distributed_run, ranks_agree
from ._noise_map_files import AUTO, check_fit_maps, sigma_for_fit
from .contrasts import (
    check_contrast_params,
    contrast_subjects,
    contrast_summary,
    load_subject,
    magnitude_for_contrasts,
)
from .model_files import file_sha256, load_model
from .recovery import save_model_or_fallback

__all__ = ["fit_files"]


def fit_files(
    inputs: Inputs,
    model_path: PathLike,
    *,
    params: dict[str, Any] | None = None,
    read_options: ReadOptions | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    resume: PathLike | None = None,
    trust_pickle: bool = False,
    stream: bool = False,
    threads: int | None = None,
    noise_map: PathLike | Sequence[PathLike] | None = None,
) -> dict[str, Any]:
    """Fit a C2S model on image files and save it.

    Each file is one training volume (its own intensity scale and noise
    level); files may have different image sizes. Given by contrast, the
    files of one subject (the i-th file of every contrast) are co-registered
    contrasts of one volume and the model is a multi-contrast
    :class:`~c2s_denoise.C2SDenoiser` whose ``contrasts`` are the mapping's
    keys, in order.

    Parameters
    ----------
    inputs : sequence of path-like, or mapping of str to sequence of path-like
        Noisy training files (any supported format), or ``{contrast: files}``
        with the same number of files for every contrast and, subject by
        subject, the same image shape (see
        :func:`~c2s_denoise.workflows.group_m4raw_files`).
    model_path : path-like
        Where to save the fitted model (the safe model format, see
        :func:`~c2s_denoise.workflows.save_model`; ``.c2s`` by convention).
        Checked before training (folder writable, name length, not an
        existing file); its folder is created if missing. If it still cannot
        be written after training (disk full), the model is saved to a
        fallback path named in the error.
    params : dict, optional
        Keyword arguments for :class:`~c2s_denoise.C2SDenoiser` (e.g.
        ``context_slices``; with contrasts also ``target_contrasts`` and a
        per-contrast ``sigma`` dict). ``contrasts`` is set from ``inputs``.
    read_options : ReadOptions, optional
        How the inputs are read.
    overwrite : bool, default False
        Whether an existing model file may be replaced.
    progress : callable, optional
        Called as ``progress(done, total)`` after each file (with contrasts:
        after each subject, counting its files) is read.
    resume : path-like, optional
        A model file to continue training (``warm_start``): its parameters,
        updated by ``params``, and its weights; the inputs must have its
        contrasts and kind. ``n_iter`` then counts all steps.
    trust_pickle : bool, default False
        Let ``resume`` be a pickled model (only a file you trust).
    stream : bool, default False
        Hold one volume in memory at a time (single-contrast fits): each file
        is read (k-space combined) once into a temporary HDF5 cache in the
        system's temporary folder (``TMPDIR``), removed at the end, and the
        estimator reads its statistics and training patches from there (see
        :mod:`c2s_denoise.estimator._lazy_layouts`). The model is the same as without.
    threads : int, optional
        Torch threads for the fit (default: torch's choice).
    noise_map : path-like, "auto" or sequence of path-like, optional
        Noise that varies across the image: a file of the local noise level for every input, or
        one per input in the inputs' order (read like the inputs; the image's shape and, for
        NIfTI, its affine), or ``"auto"`` (``sigma="local"``: a map estimated per volume). Not
        with ``sigma`` in ``params``, contrasts, ``stream`` or k-space combined as complex images.
        The model file keeps ``sigma="local"`` for ``"auto"``; map files belong to their inputs, so
        it keeps the ``sigma`` it had before them (the estimator's default, or the resumed model's).

    Returns
    -------
    dict
        Summary: model path, inputs with their shapes, the per-volume noise
        levels ``sigma`` (one per input, in input order), the estimator
        parameters, steps and time. With contrasts, each input also has its
        ``contrast``, ``subject`` (index) and ``sigma``, and the summary lists
        ``contrasts``, ``target_contrasts`` and ``n_subjects``; inputs are
        listed subject by subject, and ``n_slices`` counts each subject's
        slices once. ``partial`` is true when the fit was interrupted
        (KeyboardInterrupt, SIGTERM) and the model saved holds the weights
        reached so far. On the other ranks of a distributed run (below),
        ``model`` and ``model_sha256`` are None and ``rank`` is set.

    Notes
    -----
    Launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), or
    called inside an initialised process group, every rank reads the inputs
    and trains one model with ``DistributedDataParallel`` (see
    :mod:`c2s_denoise.engine.distributed`); rank 0 alone checks the output
    folder and writes the model. If reading fails on any rank, every rank
    raises (the others with a message naming the failed ranks). An
    interrupted distributed fit saves nothing.

    Raises
    ------
    C2SInputError
        For a bad input, a volume with fewer slices than ``context_slices``
        needs, an existing or colliding model path, or estimator parameters
        the estimator rejects (naming the file where the estimator names an item).
    ModelNotWrittenError
        When the model could not be written after training; its message and
        ``saved_to`` name the fallback file it was saved to.
    ContrastError
        For contrasts with different numbers of files or shapes, or target
        contrasts / per-contrast noise levels naming no input contrast.
    """
    params = dict(params or {})
    if stream and isinstance(inputs, Mapping):
        raise C2SInputError(None, "stream=True trains single-contrast models; give the files without contrasts")
    if threads is not None and int(threads) < 1:
        raise C2SInputError(None, f"threads={threads} must be at least 1")
    check_fit_maps(noise_map, contrasts=isinstance(inputs, Mapping), stream=stream, sigma_given="sigma" in params)
    with (
        torch_threads(threads),
        distributed_run(params.get("device")) as rank,
        VolumeCache() if stream else contextlib.nullcontext() as cache,
    ):
        with ranks_agree("reading the inputs"):
            prepared = _prepare(
                inputs, model_path, params, read_options, overwrite, progress, resume, trust_pickle, rank, cache
            )
            names, subjects, paths, out, images, model = prepared
            map_sources, map_sigma = sigma_for_fit(noise_map, paths, images, read_options or ReadOptions())
        sigma_before = model.get_params()["sigma"]
        if map_sigma is not None:
            model.set_params(sigma=map_sigma)
        volumes = [volume for image in images for volume in image.volumes]  # a 4-D series: one item per volume
        X: Any = volumes if names is None else {name: volumes[i :: len(names)] for i, name in enumerate(names)}
        start_time = time.perf_counter()
        try:
            model.fit(X)
        except ValueError as exc:  # includes InvalidParameterError (a bad parameter)
            raise item_error(exc, [next(iter(subject.values())) for subject in subjects], "cannot fit") from None
        except FloatingPointError as exc:
            raise C2SInputError(
                None, f"cannot fit: {exc} (check sigma=..., tau_max=... and learning_rate=...)"
            ) from None
        seconds = time.perf_counter() - start_time
        if map_sources is not None and map_sources[0] != AUTO:  # arrays of these inputs: not a model parameter
            model.set_params(sigma=sigma_before)
        if rank == 0:  # in a distributed run, rank 0 alone writes the model
            save_model_or_fallback(model, out, overwrite=overwrite)
            logger.info("saved model to %s", out)
        return {
            "command": "fit",
            "model": str(out) if rank == 0 else None,
            "model_sha256": file_sha256(out) if rank == 0 else None,
            **({"rank": rank} if rank else {}),
            **contrast_summary(model, len(subjects)),
            "inputs": _input_entries(model, paths, images, names, map_sources),
            "n_slices": int(sum(volumes[i].shape[0] for i in range(0, len(volumes), len(names or (None,))))),
            "sigma": [float(s) for s in np.asarray(model.sigma_).ravel()],  # subject-major, like paths
            "noise_model": model.noise_model_,
            "n_iter": int(model.n_iter_),
            "partial": bool(model.interrupted_),
            "fit_seconds": round(seconds, 3),
            "device": str(model.device_),
            "params": _as_json_params(model.get_params()),
        }


def _prepare(
    inputs: Inputs,
    model_path: PathLike,
    params: dict[str, Any],
    read_options: ReadOptions | None,
    overwrite: bool,
    progress: Progress | None,
    resume: PathLike | None,
    trust_pickle: bool,
    rank: int,
    cache: VolumeCache | None,
) -> tuple[tuple[str, ...] | None, list[Subject], list[Path], Path, list[LoadedImage], Any]:
    """Every check and read before training: contrasts, inputs, the output (rank 0), the device, the estimator.

    With a ``cache``, each volume read is moved into it (``data`` becomes its HDF5 dataset) and
    nothing of its size stays in memory.
    """
    options = read_options or ReadOptions()
    subjects: list[Subject]
    if isinstance(inputs, Mapping):
        options = magnitude_for_contrasts(options)
        names, subjects = contrast_subjects(inputs)  # type: ignore[assignment]
        params["contrasts"] = names
    else:
        names, subjects = None, [{None: Path(path)} for path in inputs]
    check_contrast_params(params, names)
    paths = check_inputs([path for subject in subjects for path in subject.values()], options)
    out = check_output_path(model_path, inputs=paths, overwrite=overwrite)
    if rank == 0:  # only rank 0 writes; other machines may not see its folder
        check_output_folder(out.parent)
    check_device(params.get("device"))
    resumed = None if resume is None else load_model(resume, trust_pickle=trust_pickle)
    images: list[LoadedImage] = []
    for subject in subjects:
        context = _param(params, None, "context_slices") if resumed is None else resumed.context_slices_
        read = load_subject(subject, options, context)
        for image in read.values():
            if image.data.ndim == 4 and (names is not None or cache is not None):
                what = "contrasts=..." if names is not None else "stream=True"
                raise C2SInputError(image.source, f"a 4-D series cannot be fitted with {what} yet; give 3-D volumes")
            if cache is not None:
                image.data = cache.add(image.data)
                # the RSS gain of combined k-space (half a volume in float32) serves apply, not a fit
                image.meta.pop("rss_gain", None)
            images.append(image)
        if progress:
            progress(len(images), len(paths))
    check_voxel_sizes(images, _param(params, resumed, "spatial_dims"))
    _use_physical_noise_level(images, params)
    try:
        model = estimator_class()(**params) if resumed is None else resumed.set_params(**params, warm_start=True)
    except (TypeError, ValueError) as exc:
        raise C2SInputError(None, f"invalid estimator parameter ({exc})") from None
    return names, subjects, paths, out, images, model


def _param(params: dict[str, Any], resumed: Any, name: str) -> object:
    """Estimator parameter ``name`` of this fit: as given, else the resumed model's, else the estimator's default."""
    if name in params:
        return params[name]
    return (estimator_class()() if resumed is None else resumed).get_params()[name]


def _input_entries(
    model: Any,
    paths: Sequence[Path],
    images: Sequence[LoadedImage],
    names: tuple[str, ...] | None,
    map_sources: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """One summary entry per input file, subject by subject (with contrasts: its contrast, subject and sigma;
    with noise maps: the map's source, ``"auto"`` or the map file)."""
    sigmas = [float(s) for s in np.asarray(model.sigma_).ravel()]
    methods = [str(m) for m in np.asarray(model.sigma_methods_).ravel()]
    entries = []
    first = 0  # the file's first item (a 4-D series is one item per volume)
    for index, (path, image) in enumerate(zip(paths, images, strict=True)):
        count = len(image.volumes)
        entry = {
            "file": str(path),
            "shape": list(image.data.shape),
            "images": image.meta.get("combine", "magnitude"),
            "noise_estimator": methods[first],
            **({"sigma_per_volume": sigmas[first : first + count]} if image.data.ndim == 4 else {}),
            **({} if map_sources is None else {"noise_map_source": map_sources[index]}),
        }
        first += count
        if names is not None:
            entry.update(contrast=names[index % len(names)], subject=index // len(names), sigma=sigmas[index])
        entries.append(entry)
    return entries


def _use_physical_noise_level(images: Sequence[LoadedImage], params: dict[str, Any]) -> None:
    """K-space combined as complex images has unit noise by construction: fit with sigma = 1."""
    combined = [image.meta.get("combine") == "complex" for image in images]
    if not any(combined):
        return
    if not all(combined):
        odd = images[combined.index(False)]
        raise C2SInputError(
            odd.source,
            "this file gives magnitude images but other inputs are k-space combined as complex images; a model "
            "takes one kind (give only k-space files, or read all as magnitude with combine='rss')",
        )
    if params.get("sigma") not in (None, "auto"):
        raise C2SInputError(
            None,
            "sigma=... does not apply to k-space combined as complex images: their noise level is 1 by construction "
            "(prewhitened coils, SNR units); leave sigma=... out, or use combine='rss'",
        )
    params["sigma"] = images[0].meta["noise_sigma"]


def _as_json_params(params: dict[str, Any]) -> dict[str, Any]:
    """Estimator parameters as JSON values (tuples as lists, other objects by their repr)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = list(value)
        elif isinstance(value, dict):  # per-contrast sigma
            out[key] = _as_json_params({str(k): v for k, v in value.items()})
        else:
            out[key] = repr(value)
    return out
