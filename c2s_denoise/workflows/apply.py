"""``apply``: denoise files with a saved model, one subject at a time.

A subject is the files denoised together: the contrasts of one subject for a
multi-contrast model, one file for a single-contrast model. Every subject
goes through the same worker, in order, in parallel processes, or on the
workers of a Dask cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..estimator.rules import kind_mismatch
from ..io import C2SInputError, LoadedImage, ReadOptions, check_output_target, detect_format, reads_complex
from ._apply_jobs import (
    Job,
    Settings,
    check_extras,
    denoise_subject,
    describe_derivatives,
    extra_outputs,
    mask_setting,
    output_name,
)
from ._common import (
    Inputs,
    PathLike,
    Progress,
    Subject,
    check_inputs,
    check_output_folder,
    logger,
    package_version,
    torch_threads,
)
from ._dask import connect_scheduler, results_as_completed
from ._noise_map_files import AUTO, maps_for_model, read_noise_map
from .contrasts import contrast_summary, load_subject, magnitude_for_contrasts, subjects_for_model
from .model_files import cached_model, file_sha256, load_model

__all__ = ["apply_files"]


def apply_files(
    model_path: PathLike,
    inputs: Inputs,
    outdir: PathLike,
    *,
    n_jobs: int = 1,
    overwrite: bool = False,
    read_options: ReadOptions | None = None,
    progress: Progress | None = None,
    save_complex: bool = False,
    trust_pickle: bool = False,
    scheduler: str | None = None,
    scheduler_timeout: float = 10.0,
    mask: PathLike | None = None,
    noise_map: PathLike | Sequence[PathLike] | None = None,
    save_noise_map: bool = False,
    save_residual: bool = False,
    dtype: str = "float32",
    device: str | None = None,
    threads: int | None = None,
    adapt: int = 0,
) -> dict[str, Any]:
    """Denoise files with a saved model, writing ``<outdir>/<input name>`` in the input's format.

    K-space read as complex images (``read_options.combine``) is denoised as
    such and written as the magnitude on the scale of the root-sum-of-squares
    image (HDF5 dataset ``reconstruction``), plus the complex images
    (``reconstruction_complex``) with ``save_complex``.

    Everything that can be checked up front is checked before any output is
    written: the model, every input (read in full: type, shape, finite
    values, complex or magnitude against the model), and every output path
    (folder writable, name length; with contrasts also the contrasts against
    the model's and the shapes of each subject's contrasts). Each output is written atomically,
    so an interrupted run leaves the finished outputs whole and no partial
    file.

    Parameters
    ----------
    model_path : path-like
        Model saved by :func:`~c2s_denoise.workflows.fit_files` /
        :func:`~c2s_denoise.workflows.save_model`.
    inputs : sequence of path-like, or mapping of str to sequence of path-like
        Files to denoise; for a multi-contrast model ``{contrast: files}``
        with exactly the model's contrasts (in any order) and one file per
        subject for each (see :func:`~c2s_denoise.workflows.fit_files`). File
        names must be distinct. Only the model's target contrasts are
        written; the others are conditioning inputs.
    outdir : path-like
        Output folder, created if missing. It must not hold the inputs
        themselves (an input is never overwritten).
    n_jobs : int, default 1
        Subjects (single-contrast: files) denoised in parallel (separate
        processes, each loading the model once); ``-1`` for one per CPU core.
    overwrite : bool, default False
        Whether existing outputs may be replaced.
    read_options : ReadOptions, optional
        How the inputs are read (the outputs keep the cropped size).
    progress : callable, optional
        Called as ``progress(done, total)`` after each subject, counting its files.
    save_complex : bool, default False
        Also write the denoised complex images of k-space inputs (every input
        must then be read as complex images).
    trust_pickle : bool, default False
        Also load a pickled model (``joblib.dump``): only for files you trust, as
        unpickling can run code. Models in the safe format never need it.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``; needs the ``dask``
        extra): the subjects are denoised by the cluster's workers instead of
        local processes (``n_jobs`` is then not used), with the same checks,
        atomic writes and summary. The model, the inputs and ``outdir`` must be
        reachable under the same absolute paths on every worker.
    scheduler_timeout : float, default 10.0
        Seconds to wait for the scheduler; it is contacted first, before
        anything is read or written.
    mask : path-like or "auto", optional
        Denoise only inside a mask: a file of the inputs' shape (nonzero: inside) used for every
        input, or ``"auto"`` (each input's head, :func:`c2s_denoise.physics.masks.head_mask`).
        Outside it, the output is the input as read; the noise level is estimated as without a mask.
    noise_map : path-like, "auto" or sequence of path-like, optional
        Noise that varies across the image (accelerated or intensity-corrected scans): a file of
        the local noise level for every input, or one per input in the inputs' order (read like
        the inputs; the image's shape and, for NIfTI, its affine), or ``"auto"`` to estimate a
        map per volume (:func:`~c2s_denoise.physics.noise.estimate_noise_map`). Each file is then
        denoised with its map (``sigma=[map]``). Single-contrast magnitude models only.
    save_noise_map, save_residual : bool, default False
        Also write the noise level of each voxel (the map used, with ``noise_map``), and the input
        minus the output, beside each output.
    dtype : {"float32", "keep"}, default "float32"
        Type of the written images: float32 (float64 input stays float64), or the type the input
        was stored in (integers rounded and clipped to its range).
    device : str, optional
        Torch device for denoising, instead of the model's (``"cpu"``, ``"cuda"``, ``"auto"``). A
        model fitted on an accelerator this machine lacks denoises on the CPU anyway, with a warning.
    threads : int, optional
        Torch threads per process (default: torch's choice).
    adapt : int, default 0
        Before denoising each subject, continue the model's training for this many steps on that
        subject's noisy images (``set_params(warm_start=True, max_iter=adapt).fit``; no clean data):
        a model fitted on other anatomy catches up with one fitted on the scan (docs/estimator.md,
        "Continuing a fit"). The model file is not changed. 0: denoise with the model as saved.
        Not with ``noise_map``.

    Returns
    -------
    dict
        Summary with one entry per output (input, output, shape, images,
        noise level used, seconds), in input order. With contrasts, each entry
        also has its ``contrast`` (``seconds`` is then the time of the whole
        subject), entries are listed subject by subject, and the summary lists
        ``contrasts``, ``target_contrasts`` and ``n_subjects``.

    Raises
    ------
    C2SInputError
        For a bad model, a bad input, an output that exists or is an input, or
        a scheduler that cannot be reached (or dask.distributed missing).
    ContrastError
        For files given by contrast to a single-contrast model or the reverse,
        a contrast the model lacks or needs, contrasts with different numbers
        of files, or a subject whose contrasts differ in shape.

    Notes
    -----
    With more than one subject, every file is read twice: once to check all
    subjects before anything is written (one subject in memory at a time),
    once to denoise it.
    """
    with connect_scheduler(scheduler, scheduler_timeout) as client:  # an unreachable one fails before any work
        extras = dict(save_noise_map=save_noise_map, save_residual=save_residual, mask=mask, dtype=dtype, device=device)
        extras.update(noise_map=noise_map, adapt=adapt)
        with torch_threads(threads):
            return _apply(
                model_path,
                inputs,
                outdir,
                client,
                n_jobs,
                overwrite,
                read_options,
                progress,
                save_complex,
                trust_pickle,
                {**extras, "threads": threads},
            )


def _apply(
    model_path: PathLike,
    inputs: Inputs,
    outdir: PathLike,
    client: Any,
    n_jobs: int,
    overwrite: bool,
    read_options: ReadOptions | None,
    progress: Progress | None,
    save_complex: bool,
    trust_pickle: bool,
    extras: dict[str, Any],
) -> dict[str, Any]:
    """:func:`apply_files` with the Dask ``client`` (or None) and the further outputs and settings ``extras``."""
    options = read_options or ReadOptions()
    model_file = Path(model_path)
    check_extras(extras)
    model = load_model(model_file, trust_pickle=trust_pickle)
    if extras["device"] is not None:
        model.set_params(device=extras["device"])
    subjects = subjects_for_model(model, model_file, inputs)
    multi_contrast = model.contrasts_ is not None
    if multi_contrast:
        options = magnitude_for_contrasts(options)
    paths = check_inputs([path for subject in subjects for path in subject.values()], options)
    _check_inputs_fit_model(model, paths, options, save_complex)
    maps = maps_for_model(model, subjects, extras.pop("noise_map"))
    folder = Path(outdir)
    check_output_folder(folder)
    bids = "derivatives" in folder.absolute().parts
    written = tuple(model.target_contrasts_) if multi_contrast else (None,)
    settings = Settings(
        {},
        options,
        overwrite,
        save_complex,
        trust_pickle,
        **{**extras, "mask": mask_setting(extras["mask"])},
        bids=bids,
        params=model.get_params(),
    )
    planned = _plan_outputs([s[name] for s in subjects for name in written], folder, model_file, settings, paths)
    outputs = iter(planned)
    jobs = [Job(i, subject, {name: next(outputs) for name in written}, maps[i]) for i, subject in enumerate(subjects)]
    preloaded = _check_subjects(model, subjects, options, maps)
    folder.mkdir(parents=True, exist_ok=True)
    model_info = {
        "package_version": package_version(),
        "model_file": model_file.name,
        "model_sha256": file_sha256(model_file),
    }
    settings = dataclasses.replace(settings, model_info=model_info)
    if bids:
        describe_derivatives(folder, settings)
    results = _run_jobs(model, model_file, jobs, preloaded, settings, n_jobs, progress, client)
    return {
        "command": "apply",
        "model": str(model_file),
        **{k: v for k, v in model_info.items() if k != "model_file"},
        "outdir": str(folder),
        **contrast_summary(model, len(subjects)),
        "n_files": len(results),
        "outputs": results,
    }


def _check_inputs_fit_model(model: Any, paths: Sequence[Path], options: ReadOptions, save_complex: bool) -> None:
    """Before anything is written: complex vs magnitude against the model, and what the outputs can hold."""
    for path in paths:
        is_complex = reads_complex(path, options)
        mismatch = _kind_mismatch(model, is_complex)
        if mismatch:
            raise C2SInputError(path, mismatch)
        if save_complex and not is_complex:
            raise C2SInputError(
                path, "save_complex=True needs k-space combined as complex images; this input is magnitude"
            )
        if options.crop is not None and detect_format(path) == "nifti":
            raise C2SInputError(path, "crop=... is not supported when writing NIfTI outputs")


def _kind_mismatch(model: Any, is_complex: bool) -> str | None:
    """Why ``model`` cannot denoise this file's images (:func:`~c2s_denoise.estimator.rules.kind_mismatch`), in
    terms of files, or None."""
    if kind_mismatch(model.complex_input_, is_complex) is None:
        return None
    if model.complex_input_:
        return (
            "the model was fitted on k-space combined as complex images but this input gives magnitude images "
            "(denoise k-space files, with combine='complex' or 'auto')"
        )
    return (
        "the model was fitted on magnitude images but this k-space input is combined as complex images "
        "(use combine='rss', or fit a model on k-space files)"
    )


def _plan_outputs(
    paths: Sequence[Path], outdir: Path, model_path: Path, settings: Settings, protect: Sequence[Path]
) -> list[Path]:
    """The output of each path (``<outdir>/<name>``), checked with the files written beside it; ``protect``: all
    inputs, which must not be overwritten."""
    outputs: list[Path] = []
    seen: dict[Path, Path] = {}
    for path in paths:
        out = outdir / output_name(path.name, settings.bids)
        for written in (out, *extra_outputs(out, path, settings, detect_format(path)).values()):
            key = written.resolve()
            if key in seen:
                raise C2SInputError(written, f"inputs {seen[key]} and {path} would both be written here")
            seen[key] = path
            check_output_target(written, path, inputs=[*protect, model_path], overwrite=settings.overwrite)
        outputs.append(out)
    return outputs


def _check_subjects(
    model: Any, subjects: list[Subject], options: ReadOptions, maps: list[str | None]
) -> dict[str | None, LoadedImage] | None:
    """Read every subject before anything is written; return the images of a lone subject for reuse.

    Reading checks each file's content (type, shape, finite values, depth, the shapes of a
    subject's contrasts), the kind of images it gives against the model's, and its noise map file
    (``maps``). Subjects are read one at a time and dropped, so memory holds one subject; they are
    read again to be denoised.
    """
    images: dict[str | None, LoadedImage] | None = None
    for subject, noise_map in zip(subjects, maps, strict=True):
        images = load_subject(subject, options, None)  # a fitted model takes any depth
        for image in images.values():
            mismatch = _kind_mismatch(model, image.meta.get("combine") == "complex")
            if mismatch:
                raise C2SInputError(image.source, mismatch)
        if noise_map not in (None, AUTO):
            read_noise_map(noise_map, images[None], options)
    return images if len(subjects) == 1 else None


def _run_jobs(
    model: Any,
    model_file: Path,
    jobs: list[Job],
    preloaded: dict[str | None, LoadedImage] | None,
    settings: Settings,
    n_jobs: int,
    progress: Progress | None,
    client: Any = None,
) -> list[dict[str, Any]]:
    """Denoise every job, in order, in parallel processes or on a Dask cluster; the results in job order."""
    finished: Iterable[tuple[int, list[dict[str, Any]]]]
    if client is not None:
        finished = _on_cluster(client, model_file, jobs, settings)
    elif n_jobs == 1 or len(jobs) == 1:
        finished = ((job.index, denoise_subject(model, job, settings, preloaded)) for job in jobs)
    else:
        from joblib import Parallel, delayed

        runner = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
        finished = runner(delayed(_worker)(str(model_file), job, settings) for job in jobs)
    total = sum(len(job.sources) for job in jobs)
    done = 0
    by_job: dict[int, list[dict[str, Any]]] = {}
    for index, results in finished:
        for result in results:
            logger.info("wrote %s", result["output"])
        by_job[index] = results
        done += len(jobs[index].sources)
        if progress:
            progress(done, total)
    return [result for index in sorted(by_job) for result in by_job[index]]


def _on_cluster(
    client: Any, model_file: Path, jobs: list[Job], settings: Settings
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """The jobs run by :func:`_worker` on the Dask cluster, with absolute paths; results name the paths as given."""

    def absolute(subject: Subject) -> Subject:
        return {name: path.absolute() for name, path in subject.items()}

    work = [
        (str(model_file.absolute()), Job(j.index, absolute(j.sources), absolute(j.targets), j.noise_map), settings)
        for j in jobs
    ]
    for index, results in results_as_completed(client, _worker, work):
        job = jobs[index]
        names = list(job.targets)  # a job's results follow its targets
        yield (
            index,
            [
                {**result, "input": str(job.sources[name]), "output": str(job.targets[name])}
                for name, result in zip(names, results, strict=True)
            ],
        )


def _worker(model_path: str, job: Job, settings: Settings) -> tuple[int, list[dict[str, Any]]]:
    """A parallel worker: the job's index and results, with the model loaded once per process."""
    model = cached_model(model_path, settings.model_info["model_sha256"], settings.trust_pickle)
    return job.index, denoise_subject(model, job, settings)
