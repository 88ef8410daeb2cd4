"""Multi-contrast inputs: subjects from ``{contrast: files}`` or M4Raw names, and their checks.

The i-th file of every contrast belongs to subject i. The rules on how files form
subjects, and how subjects and contrast parameters fit a model, live here;
a violation raises :class:`ContrastError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..estimator.rules import check_contrast_names
from ..io import C2SInputError, LoadedImage, ReadOptions, load_image, parse_m4raw_name
from ._common import Inputs, PathLike, Subject, check_depth, logger

__all__ = [
    "ContrastError",
    "check_contrast_params",
    "check_subject",
    "contrast_subjects",
    "contrast_summary",
    "group_m4raw_files",
    "load_subject",
    "magnitude_for_contrasts",
    "subjects_for_model",
]


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


def _listed(names: Iterable[str]) -> str:
    return ", ".join(names)


def _check_unique(names: Sequence[str], what: str) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ContrastError(None, f"contrast {duplicates[0]!r} is {what} more than once")


def contrast_subjects(contrasts: Mapping[str, Sequence[PathLike]]) -> tuple[tuple[str, ...], list[Subject]]:
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


def check_contrast_params(params: dict[str, Any], names: tuple[str, ...] | None) -> None:
    """Check the contrast-related estimator parameters against the input contrasts (None: single-contrast)."""
    given = params.get("contrasts")
    if names is not None and given is not None and tuple(given) != names:
        raise ContrastError(None, f"params contrasts={tuple(given)} differ from the input contrasts {names}")
    try:
        check_contrast_names(names, params.get("target_contrasts"), params.get("sigma"))
    except ValueError as exc:
        raise ContrastError(None, str(exc)) from None


def check_subject(images: Mapping[str | None, LoadedImage]) -> None:
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


def load_subject(
    subject: Subject, options: ReadOptions, context_slices: int | str | None
) -> dict[str | None, LoadedImage]:
    """Read the files of one subject, checking the contrasts' shapes and each volume's depth for training with
    ``context_slices`` (None: for a fitted model, which denoises volumes of any depth, single images included)."""
    images = {}
    for name, path in subject.items():
        logger.info("reading %s", path if name is None else f"{path} ({name})")
        images[name] = load_image(path, options)
        if context_slices is not None:
            check_depth(images[name], context_slices)
    check_subject(images)
    return images


def magnitude_for_contrasts(options: ReadOptions) -> ReadOptions:
    """Multi-contrast models take magnitude images: "auto" reads k-space files as RSS, "complex" is refused."""
    if options.combine == "complex":
        raise ContrastError(
            None,
            "combine='complex' is not supported with contrasts yet; multi-contrast models denoise magnitude "
            "images (use combine='rss', the default with contrasts)",
        )
    return dataclasses.replace(options, combine="rss")


def subjects_for_model(model: Any, model_file: Path, inputs: Inputs) -> list[Subject]:
    """The subjects of ``inputs`` for ``model``: ``{contrast: file}`` in the model's contrast order.

    A single-contrast model takes a sequence of files, each a subject ``{None: file}``.
    """
    fitted = model.contrasts_
    if not isinstance(inputs, Mapping):
        if fitted is not None:
            raise ContrastError(
                model_file,
                f"the model was fitted on contrasts {_listed(fitted)}; give the files by contrast "
                "(contrasts=..., or group_by_study=True)",
            )
        return [{None: Path(path)} for path in inputs]
    if fitted is None:
        raise ContrastError(
            model_file, "the model was fitted on single-contrast files; give the files without contrast names"
        )
    for name in inputs:
        if name not in fitted:
            raise ContrastError(None, f"contrast {name!r} is not one of the model's contrasts ({_listed(fitted)})")
    for name in fitted:
        if name not in inputs:
            raise ContrastError(
                None,
                f"contrast {name!r} is missing: the model needs a file of each of its contrasts "
                f"({_listed(fitted)}) for every subject",
            )
    return contrast_subjects({name: inputs[name] for name in fitted})[1]  # type: ignore[return-value]


def contrast_summary(model: Any, n_subjects: int) -> dict[str, Any]:
    """The contrasts part of a fit or apply summary ({} for a single-contrast model)."""
    if model.contrasts_ is None:
        return {}
    return {
        "contrasts": list(model.contrasts_),
        "target_contrasts": list(model.target_contrasts_),
        "n_subjects": n_subjects,
    }


def group_m4raw_files(paths: Sequence[PathLike], contrasts: Sequence[str] | None = None) -> dict[str, list[Path]]:
    """Group M4Raw files into multi-contrast subjects, one per study and repetition.

    Files named ``<study>_<T1|T2|FLAIR><NN>`` (any supported suffix, see
    :func:`~c2s_denoise.io.parse_m4raw_name`) of the same study and
    repetition ``NN`` form one subject. The result is the input of
    :func:`~c2s_denoise.workflows.fit_files` and
    :func:`~c2s_denoise.workflows.apply_files` for multi-contrast models.

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
        for one contrast, a contrast listed twice or not found in ``contrasts``,
        or a study and repetition without a file of every contrast.
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
                path,
                f"contrast {parts.contrast!r} of study {parts.study} repetition {parts.repetition:02d} is also "
                f"given as {group[parts.contrast]}",
            )
        group[parts.contrast] = path
    found = sorted({name for group in groups.values() for name in group})
    if contrasts is None:
        order = tuple(found)
    else:
        order = tuple(contrasts)
        if not order:
            raise ContrastError(None, "no contrasts given")
        _check_unique(list(order), "listed")
        for group in groups.values():
            for name, path in group.items():
                if name not in order:
                    raise ContrastError(
                        path, f"contrast {name!r} is not one of the contrasts asked for ({_listed(order)})"
                    )
    keys = sorted(groups)
    for study, repetition in keys:
        for name in order:
            if name not in groups[study, repetition]:
                raise ContrastError(
                    None,
                    f"contrast {name!r} is missing for study {study} repetition {repetition:02d} (every study and "
                    f"repetition needs a file of each contrast: {_listed(order)})",
                )
    return {name: [groups[key][name] for key in keys] for name in order}
