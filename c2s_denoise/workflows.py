"""File-level workflows behind the ``c2s-denoise`` command line.

Each function does one whole job on files (fit a model, apply it to a list of
files, score results against references, estimate noise, run the demo) and
returns a JSON-serialisable summary. They are usable from Python as well as
through :mod:`c2s_denoise.cli`, which only parses arguments and prints.

Every problem with a file raises :class:`~c2s_denoise.io.C2SInputError`
*before* any output is written where it can be detected up front (missing or
unreadable inputs, existing outputs, an output that is an input, a bad model
file); all writes are atomic.

:func:`fit_files` and :func:`apply_files` also take multi-contrast inputs: a
mapping ``{contrast: [file of subject 0, file of subject 1, ...]}`` (the i-th
file of every contrast belongs to subject i), for which the model is a
multi-contrast :class:`~c2s_denoise.C2SDenoiser`; :func:`group_m4raw_files`
builds such a mapping from M4Raw file names. Inputs that do not form valid
subjects, or do not match the model's contrasts, raise :class:`ContrastError`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    reads_complex,
    save_image,
    strip_suffix,
)
from .io.errors import describe_exception

__all__ = [
    "ContrastError",
    "ReadOptions",
    "apply_files",
    "estimate_noise_files",
    "evaluate_files",
    "file_sha256",
    "fit_files",
    "group_m4raw_files",
    "load_model",
    "run_demo",
    "save_model",
]

logger = logging.getLogger("c2s_denoise")

#: Called after each finished item with (done, total); the CLI passes a progress bar's update.
Progress = Callable[[int, int], None]

PathLike = str | os.PathLike[str]

#: Input files: a sequence (one volume each), or ``{contrast: files}`` with one file per subject and contrast.
Inputs = Sequence[PathLike] | Mapping[str, Sequence[PathLike]]


class ContrastError(C2SInputError):
    """Multi-contrast inputs that do not fit together or do not fit the model.

    Raised for a contrast given a different number of files than the others,
    contrasts of one subject whose images differ in shape, a contrast the model
    was not fitted on or one it needs but is not given, target contrasts or
    per-contrast noise levels naming no input contrast, and files that
    :func:`group_m4raw_files` cannot group; the message names the contrast
    concerned where there is one. A subclass of
    :class:`~c2s_denoise.io.C2SInputError` with the same one-line message;
    the command line exits with status 2 on it (a usage problem) instead of 1.
    """


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
    combine : {"auto", "complex", "rss"}
        HDF5 k-space: "complex" (what "auto" does for files with k-space) prewhitens and
        combines the coils into complex images with unit noise; "rss" reads the stored
        reconstruction or the root-sum-of-squares of the coils (see
        :func:`c2s_denoise.io.fastmri.load_fastmri`).
    """

    crop: tuple[int, int] | None = None
    slice_axis: int = -1
    npz_key: str | None = None
    dataset: str | None = None
    combine: str = "auto"

    def _kwargs(self) -> dict[str, Any]:
        return {
            "crop": self.crop,
            "slice_axis": self.slice_axis,
            "npz_key": self.npz_key,
            "dataset": self.dataset,
            "combine": self.combine,
        }

    def load(self, path: str | os.PathLike[str]) -> LoadedImage:
        """Load ``path`` with these options."""
        return load_image(path, **self._kwargs())

    def probe(self, path: str | os.PathLike[str]) -> None:
        """Cheaply check ``path`` with these options (see :func:`c2s_denoise.io.probe_image`)."""
        probe_image(path, **self._kwargs())

    def reads_complex(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` is read as complex images (k-space combined as complex)."""
        return reads_complex(path, dataset=self.dataset, combine=self.combine)


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


def _sigma_used(model: Any, volume: np.ndarray, contrast: str | None = None) -> float:
    """The noise level the estimator uses for ``volume`` (of ``contrast``)."""
    return model.noise_level(volume, contrast)


# ----------------------------------------------------------------------------- contrasts
def _names(names: Iterable[str]) -> str:
    return ", ".join(names)


def _contrast_subjects(contrasts: Mapping[str, Sequence[PathLike]]) -> tuple[tuple[str, ...], list[dict[str, Path]]]:
    """The contrast names (in the mapping's order) and one ``{contrast: file}`` per subject."""
    names = tuple(contrasts)
    if not names:
        raise ContrastError(None, "no contrasts given")
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ContrastError(None, f"invalid contrast name {name!r}")
    first = names[0]
    files = {name: list(contrasts[name]) for name in names}
    count = len(files[first])
    if count == 0:
        raise ContrastError(None, f"contrast {first!r} has no files")
    for name in names[1:]:
        if len(files[name]) != count:
            raise ContrastError(
                None,
                f"contrast {name!r} has {len(files[name])} file(s) but contrast {first!r} has {count}; every contrast "
                "needs one file per subject (the i-th file of each contrast belongs to subject i)",
            )
    return names, [{name: Path(files[name][index]) for name in names} for index in range(count)]


def _check_contrast_params(params: dict[str, Any], names: tuple[str, ...] | None) -> None:
    """Check the contrast-related estimator parameters against the input contrasts (None: single-contrast)."""
    targets = params.get("target_contrasts")
    sigma = params.get("sigma")
    if names is None:
        if targets is not None or isinstance(sigma, dict):
            what = "target contrasts" if targets is not None else "per-contrast noise levels"
            raise ContrastError(
                None, f"{what} need multi-contrast inputs (files given by contrast, e.g. --contrast NAME=PATH)"
            )
        return
    given = params.get("contrasts")
    if given is not None and tuple(given) != names:
        raise ContrastError(None, f"params contrasts={tuple(given)} differ from the input contrasts {names}")
    for name in targets or ():
        if name not in names:
            raise ContrastError(None, f"target contrast {name!r} is not one of the input contrasts ({_names(names)})")
    if isinstance(sigma, dict):
        for name in sigma:
            if name not in names:
                raise ContrastError(
                    None, f"sigma given for contrast {name!r}, not one of the input contrasts ({_names(names)})"
                )
        for name in names:
            if name not in sigma:
                raise ContrastError(
                    None, f"no sigma for contrast {name!r} (give one value for all contrasts or one per contrast)"
                )


def _check_depth(image: LoadedImage, context_slices: int) -> None:
    """A volume must have enough slices for ``context_slices`` (the estimator's rule)."""
    from ._channels import min_depth

    needed = min_depth(int(context_slices))
    if image.data.shape[0] < needed:
        raise C2SInputError(
            image.source,
            f"has {image.data.shape[0]} slice(s) but context_slices={context_slices} needs volumes of at least "
            f"{needed} slices",
        )


def _check_subject(images: Mapping[str, LoadedImage]) -> None:
    """The contrasts of one subject must have the same shape (co-registered on one grid)."""
    (first, reference), *others = images.items()
    for name, image in others:
        if image.data.shape != reference.data.shape:
            raise ContrastError(
                image.source,
                f"contrast {name!r} has shape {image.data.shape} but contrast {first!r} of the same subject "
                f"({reference.source.name}) has shape {reference.data.shape}; the contrasts of a subject must be "
                "on the same grid",
            )


def _load_subject(subject: Mapping[str, Path], options: ReadOptions, context_slices: int) -> dict[str, LoadedImage]:
    images = {}
    for name, path in subject.items():
        logger.info("reading %s (%s)", path, name)
        images[name] = options.load(path)
        _check_depth(images[name], context_slices)
    _check_subject(images)
    return images


def group_m4raw_files(
    paths: Sequence[PathLike], contrasts: Sequence[str] | None = None
) -> dict[str, list[Path]]:
    """Group M4Raw files into multi-contrast subjects, one per study and repetition.

    Files named ``<study>_<T1|T2|FLAIR><NN>`` (any supported suffix, see
    :func:`~c2s_denoise.io.parse_m4raw_name`) of the same study and
    repetition ``NN`` form one subject. The result is the input of
    :func:`fit_files` and :func:`apply_files` for multi-contrast models.

    Parameters
    ----------
    paths : sequence of path-like
        M4Raw files, in any order.
    contrasts : sequence of str, optional
        The contrasts and their order (e.g. ``("T1", "T2", "FLAIR")``).
        Default: the contrasts found, sorted by name.

    Returns
    -------
    dict of str to list of pathlib.Path
        ``{contrast: files}`` in contrast order; the i-th file of every
        contrast belongs to the i-th subject (sorted by study, then repetition).

    Raises
    ------
    C2SInputError
        If no file is given.
    ContrastError
        For a name that is not M4Raw-style, a study and repetition given twice
        for one contrast, a file whose contrast is not in ``contrasts``, or a
        study and repetition without a file of every contrast.
    """
    if not paths:
        raise C2SInputError(None, "no input files given")
    groups: dict[tuple[str, int], dict[str, Path]] = {}
    for item in paths:
        path = Path(item)
        parts = parse_m4raw_name(path)
        if parts is None:
            raise ContrastError(path, "grouping by study needs M4Raw-style names <study>_<T1|T2|FLAIR><NN>")
        group = groups.setdefault((parts.study, parts.repetition), {})
        if parts.contrast in group:
            raise ContrastError(
                path, f"contrast {parts.contrast!r} of study {parts.study} repetition {parts.repetition:02d} is also "
                f"given as {group[parts.contrast]}"
            )
        group[parts.contrast] = path
    found = sorted({name for group in groups.values() for name in group})
    if contrasts is None:
        order = tuple(found)
    else:
        order = tuple(contrasts)
        if not order:
            raise ContrastError(None, "no contrasts given")
        duplicates = sorted({name for name in order if order.count(name) > 1})
        if duplicates:
            raise ContrastError(None, f"contrast {duplicates[0]!r} is listed more than once")
        for group in groups.values():
            for name, path in group.items():
                if name not in order:
                    raise ContrastError(
                        path, f"contrast {name!r} is not one of the contrasts asked for ({_names(order)})"
                    )
    keys = sorted(groups)
    for study, repetition in keys:
        for name in order:
            if name not in groups[study, repetition]:
                raise ContrastError(
                    None,
                    f"contrast {name!r} is missing for study {study} repetition {repetition:02d} (every study and "
                    f"repetition needs a file of each contrast: {_names(order)})",
                )
    return {name: [groups[key][name] for key in keys] for name in order}


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
    inputs: Inputs,
    model_path: PathLike,
    *,
    params: dict[str, Any] | None = None,
    read_options: ReadOptions | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
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
        subject, the same image shape (see :func:`group_m4raw_files`).
    model_path : path-like
        Where to save the fitted model (joblib). Checked before training; its
        folder is created if missing.
    params : dict, optional
        Keyword arguments for :class:`~c2s_denoise.C2SDenoiser` (e.g.
        ``context_slices``; with contrasts also ``target_contrasts`` and a
        per-contrast ``sigma`` dict). ``contrasts`` is set from ``inputs``.
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
        levels ``sigma`` (one per input, in input order), the estimator
        parameters, steps and time. With contrasts, each input also has its
        ``contrast``, ``subject`` (index) and ``sigma``, and the summary lists
        ``contrasts``, ``target_contrasts`` and ``n_subjects``; inputs are
        listed subject by subject, and ``n_slices`` counts each subject's
        slices once.

    Raises
    ------
    C2SInputError
        For a bad input, a volume with fewer slices than ``context_slices``
        needs, an existing or colliding model path, or estimator parameters
        the estimator rejects.
    ContrastError
        For contrasts with different numbers of files or shapes, or target
        contrasts / per-contrast noise levels naming no input contrast.
    """
    options = read_options or ReadOptions()
    params = dict(params or {})
    if isinstance(inputs, Mapping):
        options = _magnitude_for_contrasts(options)
        names, subjects = _contrast_subjects(inputs)
        _check_contrast_params(params, names)
        params["contrasts"] = names
        sources = [path for subject in subjects for path in subject.values()]
    else:
        names, subjects = None, []
        _check_contrast_params(params, None)
        sources = list(inputs)
    paths = _check_inputs(sources, options)
    out = check_output_path(model_path, inputs=paths, overwrite=overwrite)
    _check_folder(out.parent)
    context_slices = params.get("context_slices", 0)
    images: list[LoadedImage] = []
    for index, path in enumerate(paths):
        logger.info("reading %s", path)
        images.append(options.load(path))
        _check_depth(images[-1], context_slices)
        if progress:
            progress(index + 1, len(paths))
    volumes = [image.data for image in images]
    _use_physical_noise_level(images, params)
    if names is None:
        X: Any = volumes
    else:
        n = len(names)
        for start in range(0, len(images), n):
            _check_subject(dict(zip(names, images[start : start + n], strict=True)))
        X = {name: volumes[position::n] for position, name in enumerate(names)}
    try:
        model = _estimator_class()(**params)
    except TypeError as exc:
        raise C2SInputError(None, f"invalid estimator parameter ({exc})") from None
    start_time = time.perf_counter()
    try:
        model.fit(X)
    except ValueError as exc:  # includes scikit-learn's InvalidParameterError
        raise C2SInputError(None, f"cannot fit: {describe_exception(exc)}") from None
    seconds = time.perf_counter() - start_time
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, out, overwrite=overwrite)
    logger.info("saved model to %s", out)
    sigmas = [float(s) for s in np.asarray(model.sigma_).ravel()]  # subject-major, like paths
    methods = [str(m) for m in np.asarray(model.sigma_methods_).ravel()]
    entries: list[dict[str, Any]] = [
        {"file": str(p), "shape": list(v.shape), "images": image.meta.get("combine", "magnitude"), "noise_estimator": m}
        for p, v, image, m in zip(paths, volumes, images, methods, strict=True)
    ]
    contrast_info: dict[str, Any] = {}
    if names is not None:
        for index, entry in enumerate(entries):
            entry.update(contrast=names[index % len(names)], subject=index // len(names), sigma=sigmas[index])
        contrast_info = {
            "contrasts": list(model.contrasts_),
            "target_contrasts": list(model.target_contrasts_),
            "n_subjects": len(subjects),
        }
        volumes = volumes[:: len(names)]  # one volume per subject for n_slices
    return {
        "command": "fit",
        "model": str(out),
        "model_sha256": file_sha256(out),
        **contrast_info,
        "inputs": entries,
        "n_slices": int(sum(v.shape[0] for v in volumes)),
        "sigma": sigmas,
        "noise_model": model.noise_model_,
        "n_iter": int(getattr(model, "n_iter_", -1)),
        "fit_seconds": round(seconds, 3),
        "device": str(getattr(model, "device_", "")),
        "params": _jsonable_params(model.get_params()),
    }


def _magnitude_for_contrasts(options: ReadOptions) -> ReadOptions:
    """Multi-contrast models take magnitude images: "auto" reads k-space files as RSS, "complex" is refused."""
    if options.combine == "complex":
        raise ContrastError(
            None, "--combine complex is not supported with contrasts yet; multi-contrast models denoise magnitude "
            "images (use --combine rss, the default with contrasts)"
        )
    return dataclasses.replace(options, combine="rss")


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
            "takes one kind (give only k-space files, or read all as magnitude with --combine rss)",
        )
    if params.get("sigma") not in (None, "auto"):
        raise C2SInputError(
            None,
            "--sigma does not apply to k-space combined as complex images: their noise level is 1 by construction "
            "(prewhitened coils, SNR units); leave --sigma out, or use --combine rss",
        )
    params["sigma"] = images[0].meta["noise_sigma"]


def _kind_mismatch(model: Any, is_complex: bool) -> str | None:
    """Why ``model`` cannot denoise images of this kind (complex vs magnitude), or None."""
    fitted_complex = bool(getattr(model, "complex_input_", False))
    if fitted_complex == is_complex:
        return None
    if fitted_complex:
        return (
            "the model was fitted on k-space combined as complex images but this input gives magnitude images "
            "(denoise k-space files, with --combine complex or auto)"
        )
    return (
        "the model was fitted on magnitude images but this k-space input is combined as complex images "
        "(use --combine rss, or fit a model on k-space files)"
    )


def _output_images(model: Any, image: LoadedImage, denoised: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """What is written: the magnitude (on the RSS scale for combined k-space) and the complex images, if any."""
    if image.meta.get("combine") != "complex":
        return denoised.astype(image.data.dtype, copy=False), None
    on_rss_scale = denoised * image.meta["rss_gain"]
    return np.abs(on_rss_scale).astype(np.float32), on_rss_scale.astype(np.complex64)


def _jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = list(value)
        elif isinstance(value, dict):  # per-contrast sigma
            out[key] = _jsonable_params({str(k): v for k, v in value.items()})
        else:
            out[key] = repr(value)
    return out


# ----------------------------------------------------------------------------- apply
def _plan_outputs(
    paths: Sequence[Path], outdir: Path, model_path: Path, overwrite: bool, protect: Sequence[Path] = ()
) -> list[Path]:
    """``<outdir>/<name>`` of each path, checked; ``protect``: further inputs that must not be overwritten."""
    outputs: list[Path] = []
    seen: dict[Path, Path] = {}
    for path in paths:
        out = outdir / path.name
        key = out.resolve()
        if key in seen:
            raise C2SInputError(out, f"inputs {seen[key]} and {path} would both be written here")
        seen[key] = path
        check_output_path(out, inputs=[*paths, *protect, model_path], overwrite=overwrite)
        outputs.append(out)
    return outputs


def _apply_one(
    model: Any,
    model_info: dict[str, Any],
    source: Path,
    target: Path,
    options: ReadOptions,
    overwrite: bool,
    save_complex: bool = False,
) -> dict[str, Any]:
    start = time.perf_counter()
    image = options.load(source)
    mismatch = _kind_mismatch(model, bool(np.iscomplexobj(image.data)))
    if mismatch:
        raise C2SInputError(source, mismatch)
    try:
        denoised = model.transform([image.data])[0]
    except ValueError as exc:
        raise C2SInputError(source, f"cannot denoise: {describe_exception(exc)}") from None
    output, complex_images = _output_images(model, image, denoised)
    provenance = {
        **model_info,
        "sigma": _sigma_used(model, image.data),
        "noise_model": getattr(model, "noise_model_", "gaussian"),
        "images": image.meta.get("combine", "magnitude"),
        "refinement": float(model.refinement),
        "source_file": source.name,
        "source_dataset": image.meta.get("dataset"),
    }
    if complex_images is None and save_complex:
        raise C2SInputError(source, "--save-complex needs k-space combined as complex images; this input is magnitude")
    save_image(
        target, output, image, provenance, overwrite=overwrite, complex_data=complex_images if save_complex else None
    )
    return {
        "input": str(source),
        "output": str(target),
        "shape": list(image.data.shape),
        "images": provenance["images"],
        "sigma": provenance["sigma"],
        "seconds": round(time.perf_counter() - start, 3),
    }


def _apply_worker(
    model_path: str,
    model_info: dict[str, Any],
    source: Path,
    target: Path,
    options: ReadOptions,
    overwrite: bool,
    save_complex: bool,
) -> dict[str, Any]:
    model = _cached_model(model_path, model_info["model_sha256"])
    return _apply_one(model, model_info, source, target, options, overwrite, save_complex)


def _apply_subject(
    model: Any,
    model_info: dict[str, Any],
    sources: dict[str, Path],
    targets: dict[str, Path],
    options: ReadOptions,
    overwrite: bool,
    images: dict[str, LoadedImage] | None = None,
) -> list[dict[str, Any]]:
    """Denoise one multi-contrast subject; write the output of each target contrast (``targets``)."""
    start = time.perf_counter()
    if images is None:
        images = _load_subject(sources, options, model.context_slices)
    try:
        denoised = model.transform({name: [image.data] for name, image in images.items()})
    except ValueError as exc:
        raise C2SInputError(next(iter(sources.values())), f"cannot denoise: {describe_exception(exc)}") from None
    results = []
    for name, target in targets.items():
        image = images[name]
        provenance = {
            **model_info,
            "sigma": _sigma_used(model, image.data, name),
            "refinement": float(model.refinement),
            "source_file": image.source.name,
            "source_dataset": image.meta.get("dataset"),
            "contrast": name,
        }
        data = denoised[name][0].astype(image.data.dtype, copy=False)
        save_image(target, data, image, provenance, overwrite=overwrite, inputs=sources.values())
        results.append(
            {
                "input": str(sources[name]),
                "output": str(target),
                "contrast": name,
                "shape": list(image.data.shape),
                "sigma": provenance["sigma"],
            }
        )
    seconds = round(time.perf_counter() - start, 3)
    return [{**result, "seconds": seconds} for result in results]


def _apply_subject_worker(
    index: int,
    model_path: str,
    model_info: dict[str, Any],
    sources: dict[str, Path],
    targets: dict[str, Path],
    options: ReadOptions,
    overwrite: bool,
) -> tuple[int, list[dict[str, Any]]]:
    model = _cached_model(model_path, model_info["model_sha256"])
    return index, _apply_subject(model, model_info, sources, targets, options, overwrite)


def _apply_subjects(model: Any, model_file: Path, inputs: Inputs) -> list[dict[str, Path]] | None:
    """The subjects ``{contrast: file}`` in the model's contrast order (None for a single-contrast model)."""
    fitted = getattr(model, "contrasts_", None)
    if not isinstance(inputs, Mapping):
        if fitted is not None:
            raise ContrastError(
                model_file,
                f"the model was fitted on contrasts {_names(fitted)}; give the files by contrast "
                "(e.g. --contrast NAME=PATH, or --group-by-study)",
            )
        return None
    if fitted is None:
        raise ContrastError(
            model_file, "the model was fitted on single-contrast files; give the files without contrast names"
        )
    for name in inputs:
        if name not in fitted:
            raise ContrastError(None, f"contrast {name!r} is not one of the model's contrasts ({_names(fitted)})")
    for name in fitted:
        if name not in inputs:
            raise ContrastError(
                None, f"contrast {name!r} is missing: the model needs a file of each of its contrasts "
                f"({_names(fitted)}) for every subject"
            )
    return _contrast_subjects({name: inputs[name] for name in fitted})[1]


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
) -> dict[str, Any]:
    """Denoise files with a saved model, writing ``<outdir>/<input name>`` in the input's format.

    K-space read as complex images (``read_options.combine``) is denoised as
    such and written as the magnitude on the scale of the root-sum-of-squares
    image (HDF5 dataset ``reconstruction``), plus the complex images
    (``reconstruction_complex``) with ``save_complex``.

    Everything that can be checked up front is checked before any output is
    written: the model, every input's type and structure, and every output
    path (with contrasts also the contrasts against the model's and the
    shapes of each subject's contrasts). Each output is written atomically,
    so an interrupted run leaves the finished outputs whole and no partial
    file.

    Parameters
    ----------
    model_path : path-like
        Model saved by :func:`fit_files` / :func:`save_model`.
    inputs : sequence of path-like, or mapping of str to sequence of path-like
        Files to denoise; for a multi-contrast model ``{contrast: files}``
        with exactly the model's contrasts (in any order) and one file per
        subject for each (see :func:`fit_files`). File names must be distinct.
        Only the model's target contrasts are written; the others are
        conditioning inputs.
    outdir : path-like
        Output folder, created if missing. It must not hold the inputs
        themselves (an input is never overwritten).
    n_jobs : int, default 1
        Files (with contrasts: subjects) denoised in parallel (separate
        processes, each loading the model once); ``-1`` for one per CPU core.
    overwrite : bool, default False
        Whether existing outputs may be replaced.
    read_options : ReadOptions, optional
        How the inputs are read (the outputs keep the cropped size).
    progress : callable, optional
        Called as ``progress(done, total)`` after each file (with contrasts:
        after each subject, counting its files).
    save_complex : bool, default False
        Also write the denoised complex images of k-space inputs.

    Returns
    -------
    dict
        Summary with one entry per output (input, output, shape, noise level
        used, seconds), in input order. With contrasts, each entry also has
        its ``contrast`` (``seconds`` is then the time of the whole subject),
        entries are listed subject by subject, and the summary lists
        ``contrasts``, ``target_contrasts`` and ``n_subjects``.

    Raises
    ------
    C2SInputError
        For a bad model, a bad input, or an output that exists or is an input.
    ContrastError
        For files given by contrast to a single-contrast model or the reverse,
        a contrast the model lacks or needs, contrasts with different numbers
        of files, or a subject whose contrasts differ in shape.

    Notes
    -----
    With contrasts and more than one subject, every file is read twice: once
    to check all subjects before anything is written, once to denoise it.
    """
    options = read_options or ReadOptions()
    model_file = Path(model_path)
    model = load_model(model_file)
    subjects = _apply_subjects(model, model_file, inputs)
    if subjects is not None:
        options = _magnitude_for_contrasts(options)
    if subjects is None:
        paths = _check_inputs(list(inputs), options)  # type: ignore[arg-type]
    else:
        paths = _check_inputs([path for subject in subjects for path in subject.values()], options)
    if subjects is None:
        for path in paths:  # complex vs magnitude against the model, before anything is written
            mismatch = _kind_mismatch(model, options.reads_complex(path))
            if mismatch:
                raise C2SInputError(path, mismatch)
    if options.crop is not None:
        for path in paths:
            if detect_format(path) == "nifti":
                raise C2SInputError(path, "--crop is not supported when writing NIfTI outputs")
    folder = Path(outdir)
    _check_folder(folder)
    if subjects is not None:
        targets = tuple(model.target_contrasts_)
        written = [subject[name] for subject in subjects for name in targets]
        outputs = iter(_plan_outputs(written, folder, model_file, overwrite, protect=paths))
        plans = [(subject, {name: next(outputs) for name in targets}) for subject in subjects]
        preloaded = _check_subjects(subjects, options, model.context_slices)
    else:
        outputs_list = _plan_outputs(paths, folder, model_file, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    model_info = {
        "package_version": _version(),
        "model_file": model_file.name,
        "model_sha256": file_sha256(model_file),
    }
    total = len(paths)
    results: list[dict[str, Any]] = []
    if subjects is not None:
        results = _run_subjects(model, model_file, model_info, plans, preloaded, options, n_jobs, overwrite, progress)
    elif n_jobs == 1 or total == 1:
        for index, (source, target) in enumerate(zip(paths, outputs_list, strict=True)):
            logger.info("denoising %s -> %s", source, target)
            results.append(_apply_one(model, model_info, source, target, options, overwrite, save_complex))
            if progress:
                progress(index + 1, total)
    else:
        from joblib import Parallel, delayed

        jobs = (
            delayed(_apply_worker)(str(model_file), model_info, source, target, options, overwrite, save_complex)
            for source, target in zip(paths, outputs_list, strict=True)
        )
        runner = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
        for index, result in enumerate(runner(jobs)):
            logger.info("wrote %s", result["output"])
            results.append(result)
            if progress:
                progress(index + 1, total)
        order = {str(p): i for i, p in enumerate(paths)}
        results.sort(key=lambda r: order[r["input"]])
    contrast_info: dict[str, Any] = {}
    if subjects is not None:
        contrast_info = {
            "contrasts": list(model.contrasts_),
            "target_contrasts": list(model.target_contrasts_),
            "n_subjects": len(subjects),
        }
    return {
        "command": "apply",
        "model": str(model_file),
        **{k: v for k, v in model_info.items() if k != "model_file"},
        "outdir": str(folder),
        **contrast_info,
        "n_files": len(results),
        "outputs": results,
    }


def _check_subjects(
    subjects: list[dict[str, Path]], options: ReadOptions, context_slices: int
) -> dict[str, LoadedImage] | None:
    """Read every subject to check its shapes and depths; return the images of a lone subject for reuse."""
    if len(subjects) == 1:
        return _load_subject(subjects[0], options, context_slices)
    for subject in subjects:
        _load_subject(subject, options, context_slices)
    return None


def _run_subjects(
    model: Any,
    model_file: Path,
    model_info: dict[str, Any],
    plans: list[tuple[dict[str, Path], dict[str, Path]]],
    preloaded: dict[str, LoadedImage] | None,
    options: ReadOptions,
    n_jobs: int,
    overwrite: bool,
    progress: Progress | None,
) -> list[dict[str, Any]]:
    """Denoise the subjects ``(sources, targets)`` of a multi-contrast apply, in order or in parallel."""
    total = sum(len(sources) for sources, _ in plans)
    done = 0
    by_subject: dict[int, list[dict[str, Any]]] = {}
    if n_jobs == 1 or len(plans) == 1:
        for index, (sources, targets) in enumerate(plans):
            logger.info("denoising subject %d: %s", index, ", ".join(str(p) for p in sources.values()))
            by_subject[index] = _apply_subject(model, model_info, sources, targets, options, overwrite, preloaded)
            done += len(sources)
            if progress:
                progress(done, total)
    else:
        from joblib import Parallel, delayed

        jobs = (
            delayed(_apply_subject_worker)(index, str(model_file), model_info, sources, targets, options, overwrite)
            for index, (sources, targets) in enumerate(plans)
        )
        runner = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
        for index, results in runner(jobs):
            for result in results:
                logger.info("wrote %s", result["output"])
            by_subject[index] = results
            done += len(plans[index][0])
            if progress:
                progress(done, total)
    return [result for index in sorted(by_subject) for result in by_subject[index]]


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
    n_coils: int = 1,
    noise_model: str = "auto",
) -> dict[str, Any]:
    """Estimate the noise level of each file with every estimator, and say which ``auto`` uses.

    Parameters
    ----------
    inputs : sequence of path-like
        Image files.
    read_options : ReadOptions, optional
        How the files are read; with ``combine`` "auto" the estimators see the magnitude
        image (the stored reconstruction, or the RSS of the coils), and the coil noise
        covariance of files with k-space is reported beside it.
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.
    n_coils : int, default 1
        Coils behind a root-sum-of-squares magnitude image (background estimator).
    noise_model : {"auto", "gaussian", "rician", "ncchi"}, default "auto"
        As :class:`~c2s_denoise.C2SDenoiser`'s ``noise_model``, for the ``auto`` choice.

    Returns
    -------
    dict
        ``results``: per file its shape, ``images`` ("magnitude" or "complex"), ``sigma_<method>``
        for the wavelet, background, foreground and Rayleigh estimators (None with a
        ``<method>_error`` when an estimator cannot work on the image), ``auto`` (the noise
        model, estimator and level that ``sigma="auto"`` uses) and, for files with k-space,
        ``kspace_noise`` (per-coil noise level per real component, the largest coil
        correlation, and the covariance as real and imaginary parts).
    """
    from .io.fastmri import kspace_noise_covariance
    from .noise import auto_noise_level, estimate_sigma, resolve_noise_model

    options = read_options or ReadOptions()
    magnitude_options = dataclasses.replace(options, combine="rss") if options.combine == "auto" else options
    paths = _check_inputs(inputs, magnitude_options)
    results = []
    for index, path in enumerate(paths):
        data = magnitude_options.load(path).data
        is_complex = bool(np.iscomplexobj(data))
        entry: dict[str, Any] = {
            "file": str(path),
            "shape": list(data.shape),
            "images": "complex" if is_complex else "magnitude",
        }
        for method in ("wavelet", "background", "foreground", "rayleigh"):
            try:
                if is_complex and method != "wavelet":
                    raise ValueError("a magnitude-image estimator; the complex images have Gaussian noise")
                coils = 1 if method == "rayleigh" else n_coils
                entry[f"sigma_{method}"] = float(estimate_sigma(data, method, n_coils=coils))
            except ValueError as exc:
                entry[f"sigma_{method}"] = None
                entry[f"{method}_error"] = str(exc)
        try:
            model = resolve_noise_model([data], noise_model, n_coils=n_coils)
        except ValueError as exc:
            raise C2SInputError(path, str(exc)) from None
        try:
            level, chosen = auto_noise_level(data, model, n_coils=n_coils)
        except ValueError as exc:
            level, chosen = None, None
            entry["auto_error"] = str(exc)
        entry["auto"] = {"noise_model": model, "estimator": chosen, "sigma": level}
        if detect_format(path) == "hdf5" and options.combine != "rss":
            covariance = kspace_noise_covariance(path)
            if covariance is not None:
                levels = np.sqrt(np.real(np.diag(covariance)) / 2.0)
                correlation = np.abs(covariance) / np.sqrt(np.outer(np.real(np.diag(covariance)), np.real(np.diag(covariance))))
                np.fill_diagonal(correlation, 0.0)
                entry["kspace_noise"] = {
                    "n_coils": int(covariance.shape[0]),
                    "sigma_per_coil": [float(v) for v in levels],
                    "sigma_mean": float(np.sqrt(np.mean(levels**2))),
                    "max_correlation": float(correlation.max()) if covariance.shape[0] > 1 else 0.0,
                    "covariance_real": np.real(covariance).tolist(),
                    "covariance_imag": np.imag(covariance).tolist(),
                }
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
