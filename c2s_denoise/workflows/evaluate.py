"""``evaluate``: score denoised files against references (PSNR, SSIM), pairing files by name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import (
    C2SInputError,
    ReadOptions,
    detect_format,
    is_dicom_folder,
    load_image,
    parse_m4raw_name,
    probe_image,
    strip_suffix,
)
from ..metrics import DEFAULT_SSIM
from ._common import PathLike, Progress

__all__ = ["evaluate_files"]


def _expand(paths: Iterable[PathLike]) -> list[Path]:
    """Files as given, with folders replaced by the supported files they hold (sorted)."""
    out: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir() and not is_dicom_folder(p):  # a folder of files (a DICOM series folder is one image)
            found = sorted(f for f in p.iterdir() if (f.is_file() and detect_format(f)) or is_dicom_folder(f))
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
                ref, "reference_average=True needs M4Raw-style names <study>_<T1|T2|FLAIR><NN> for the references"
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
                raise C2SInputError(path, "reference_average=True needs an M4Raw-style name <study>_<T1|T2|FLAIR><NN>")
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
    denoised: Sequence[PathLike],
    references: Sequence[PathLike],
    *,
    reference_average: bool = False,
    ssim: str = DEFAULT_SSIM,
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
    the reference's ``max - min`` (PSNR, and SSIM "gaussian"); the "fastmri" SSIM takes the
    reference's maximum, as fastMRI does.

    Parameters
    ----------
    denoised : sequence of path-like
        Files to score (files or folders).
    references : sequence of path-like
        Reference files or folders.
    reference_average : bool, default False
        Average the references' repetitions per study and contrast.
    ssim : {"gaussian", "fastmri"}, default "gaussian"
        The SSIM: "gaussian" (:func:`c2s_denoise.metrics.ssim`, an 11-tap Gaussian window and
        range ``max - min``) or "fastmri" (:func:`c2s_denoise.metrics.ssim_fastmri`, the
        fastMRI challenge's: 7 x 7 uniform window, range ``max``, per volume), to compare with
        published fastMRI numbers.
    read_options : ReadOptions, optional
        How both sides are read (e.g. the same crop).
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.

    Returns
    -------
    dict
        ``results`` (file, references, psnr, ssim, data_range per file),
        their means, and ``ssim_convention`` (which SSIM it is).

    Raises
    ------
    C2SInputError
        For unreadable files, missing references, or shapes that differ.
    """
    from ..metrics import data_range, psnr, ssim_function

    score_ssim = ssim_function(ssim)
    options = read_options or ReadOptions()
    files = _expand(denoised)
    refs = _expand(references)
    if not files:
        raise C2SInputError(None, "no denoised files given")
    if not refs:
        raise C2SInputError(None, "no reference files given")
    for path in [*files, *refs]:
        probe_image(path, options)
    pairs = _match_references(files, refs, reference_average)
    cache: dict[tuple[Path, ...], np.ndarray] = {}
    results = []
    for index, (path, ref_paths) in enumerate(zip(files, pairs, strict=True)):
        key = tuple(ref_paths)
        if key not in cache:
            stack = [load_image(r, options).data.astype(np.float64) for r in ref_paths]
            for r, arr in zip(ref_paths[1:], stack[1:], strict=True):
                if arr.shape != stack[0].shape:
                    raise C2SInputError(r, f"shape {arr.shape} differs from {ref_paths[0]} {stack[0].shape}")
            cache[key] = np.mean(stack, axis=0)
        reference = cache[key]
        image = load_image(path, options).data.astype(np.float64)
        if image.shape != reference.shape:
            raise C2SInputError(path, f"shape {image.shape} differs from its reference's {reference.shape}")
        results.append(
            {
                "file": str(path),
                "reference": [str(r) for r in ref_paths],
                "psnr": psnr(image, reference),
                "ssim": score_ssim(image, reference),
                "data_range": data_range(reference),
            }
        )
        if progress:
            progress(index + 1, len(files))
    return {
        "command": "evaluate",
        "reference_average": reference_average,
        "ssim_convention": ssim,
        "n_files": len(results),
        "mean_psnr": float(np.mean([r["psnr"] for r in results])),
        "mean_ssim": float(np.mean([r["ssim"] for r in results])),
        "results": results,
    }
