"""One ``apply`` job: denoise one subject and write its outputs (the denoised image and what was asked beside it).

Beside each denoised file, on request and in the same format and geometry:

- the **noise map**: the noise level used at each voxel, in the output's units (the map the file
  was denoised with, given or estimated, when it had one; for k-space combined as complex images,
  sigma times the RSS gain of each pixel; otherwise the file's sigma everywhere; zero outside the
  mask);
- the **residual**: input minus output (what was removed);
- for NIfTI outputs, always, a **JSON sidecar** with the model, the parameters, the versions and
  the input's SHA-256.

Names: ``<name>_noisemap<suffix>``, ``<name>_residual<suffix>``, ``<name>.json``; in a BIDS
derivatives folder (``bids``), ``desc-c2s`` / ``desc-c2snoisemap`` / ``desc-c2sresidual`` before
the BIDS suffix instead.

With a mask, voxels outside it are written as they were read: only the inside is denoised.
"""

from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import C2SInputError, LoadedImage, ReadOptions, load_image, save_image
from ..io.atomic import atomic_write
from ..io.errors import describe_exception
from ..io.file_names import strip_suffix
from ..io.options import OUTPUT_DTYPES
from ._common import PathLike, Subject, check_device, logger, torch_threads
from ._noise_map_files import AUTO, estimated_maps, read_noise_map, using_maps
from .contrasts import load_subject
from .model_files import file_sha256

__all__ = [
    "Job",
    "Settings",
    "check_extras",
    "denoise_subject",
    "describe_derivatives",
    "extra_outputs",
    "mask_setting",
    "output_name",
]

_BIDS_NAME = re.compile(r"^(?P<entities>(?:[a-zA-Z0-9]+-[a-zA-Z0-9]+_)+)(?P<suffix>[a-zA-Z0-9]+)$")


@dataclass(frozen=True)
class Job:
    """One subject to denoise: its files by contrast, the output of each contrast written, and its noise map
    (``"auto"``, the absolute path of a map file, or None)."""

    index: int
    sources: Subject
    targets: Subject
    noise_map: str | None = None


@dataclass(frozen=True)
class Settings:
    """What every job of one ``apply`` shares (sent once to each worker with its job)."""

    model_info: dict[str, Any]
    options: ReadOptions
    overwrite: bool
    save_complex: bool
    trust_pickle: bool = False
    save_noise_map: bool = False
    save_residual: bool = False
    mask: str | None = None  # a mask file for every input, "auto", or None
    dtype: str = "float32"
    bids: bool = False
    device: str | None = None
    threads: int | None = None
    adapt: int = 0  # training steps on each subject's noisy images before it is denoised
    params: dict[str, Any] = field(default_factory=dict)


def output_name(name: str, bids: bool, desc: str = "c2s") -> str:
    """The output name of input ``name``: itself, or in a BIDS derivatives folder with ``desc-<desc>``.

    A BIDS name ``sub-01_ses-1_T1w.nii.gz`` becomes ``sub-01_ses-1_desc-c2s_T1w.nii.gz`` (an
    existing ``desc`` entity is replaced); other names are kept.
    """
    stem = strip_suffix(name)
    suffix = name[len(stem) :]
    match = _BIDS_NAME.match(stem) if bids else None
    if match is None:
        return name if desc == "c2s" else f"{stem}_{desc.removeprefix('c2s')}{suffix}"
    entities = [part for part in match["entities"].rstrip("_").split("_") if not part.startswith("desc-")]
    return "_".join([*entities, f"desc-{desc}", match["suffix"]]) + suffix


def extra_outputs(target: Path, source: Path, settings: Settings, image_format: str) -> dict[str, Path]:
    """The files written beside ``target`` (the denoised output of ``source``), by kind."""
    extras = {}
    if settings.save_noise_map:
        extras["noise_map"] = target.with_name(output_name(source.name, settings.bids, "c2snoisemap"))
    if settings.save_residual:
        extras["residual"] = target.with_name(output_name(source.name, settings.bids, "c2sresidual"))
    if image_format == "nifti":
        extras["sidecar"] = target.with_name(strip_suffix(target.name) + ".json")
    return extras


def _mask(image: LoadedImage, settings: Settings) -> np.ndarray | None:
    """The mask of ``image`` (True: denoised), or None without one."""
    if settings.mask is None:
        return None
    volume = image.volumes[0].shape  # a series has one mask for all its volumes
    if settings.mask == "auto":
        from ..physics.masks import head_mask

        inside = head_mask(image.data if image.data.ndim == 3 else np.abs(image.data).mean(axis=0))
    else:
        mask = load_image(
            settings.mask, ReadOptions(crop=settings.options.crop, slice_axis=settings.options.slice_axis)
        )
        if mask.data.shape != volume:
            raise C2SInputError(
                mask.source, f"mask of shape {mask.data.shape} does not match {image.source.name} {volume}"
            )
        inside = mask.data != 0
    return np.broadcast_to(inside, image.data.shape)


def _stored(data: np.ndarray, image: LoadedImage, dtype: str) -> np.ndarray:
    """``data`` in the type written: float32 (float64 kept), or the input's stored type (integers rounded and
    clipped; a scaled integer NIfTI, whose stored integers are not its values, stays float32)."""
    keep = dtype == "keep" and "dtype" in image.meta and not image.meta.get("scaled", False)
    stored = np.dtype(image.meta["dtype"]) if keep else image.data.dtype
    if stored.kind == "b":
        stored = np.dtype(np.uint8)
    if stored.kind in "iu":
        info = np.iinfo(stored)
        return np.clip(np.rint(data), info.min, info.max).astype(stored)
    return data.astype(stored, copy=False)


def _output_images(image: LoadedImage, denoised: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """What is written: the magnitude (on the RSS scale for combined k-space) and the complex images, if any."""
    if image.meta.get("combine") != "complex":
        return denoised.astype(image.data.dtype, copy=False), None
    on_rss_scale = denoised * image.meta["rss_gain"]
    return np.abs(on_rss_scale).astype(np.float32), on_rss_scale.astype(np.complex64)


def _noise_map(
    image: LoadedImage, sigmas: np.ndarray, mask: np.ndarray | None, maps: list[np.ndarray] | None
) -> np.ndarray:
    """The noise level at each voxel, in the output's units (``sigmas``: one per volume of the file; ``maps``:
    the noise map of each volume, when the file was denoised with maps)."""
    if maps is not None:
        level = np.stack(maps).reshape(image.data.shape).astype(np.float32)
        return level if mask is None else np.where(mask, level, 0).astype(np.float32)
    per_volume = np.asarray(sigmas, dtype=np.float32).reshape(-1, *([1] * 3))  # (volumes, 1, 1, 1)
    level = np.broadcast_to(per_volume, (len(per_volume), *image.volumes[0].shape)).reshape(image.data.shape)
    if image.meta.get("combine") == "complex":
        level = (float(per_volume[0, 0, 0, 0]) * image.meta["rss_gain"]).astype(np.float32)
    return level if mask is None else np.where(mask, level, 0).astype(np.float32)


def _write_sidecar(path: Path, provenance: dict[str, Any], settings: Settings, source: Path) -> None:
    document = {
        "GeneratedBy": [{"Name": "c2s-denoise", "Version": settings.model_info.get("package_version")}],
        "Sources": [source.name],
        "SourceSHA256": file_sha256(source) if source.is_file() else None,
        "Parameters": settings.params,
        **provenance,
    }
    with atomic_write(path, overwrite=settings.overwrite) as temporary:
        temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")


def denoise_subject(
    model: Any, job: Job, settings: Settings, images: dict[str | None, LoadedImage] | None = None
) -> list[dict[str, Any]]:
    """Denoise one subject at the noise level estimated once per file; write the output of each target."""
    start = time.perf_counter()
    logger.info("denoising %s", ", ".join(str(path) for path in job.sources.values()))
    if images is None:
        images = load_subject(job.sources, settings.options, None)  # a fitted model takes any depth
    names = model.contrasts_
    if names is not None and any(image.data.ndim == 4 for image in images.values()):
        raise C2SInputError(next(iter(job.sources.values())), "a 4-D series cannot be denoised with contrasts yet")
    X: Any = images[None].volumes if names is None else {name: [images[name].data] for name in names}
    maps = _job_maps(model, job, images, settings.options)
    try:
        with torch_threads(settings.threads):
            model, adapt_seconds = _adapted(model, X, settings.adapt)
            with using_maps(model, maps):
                denoised, noise_levels = model.denoise(X)
    except ValueError as exc:
        raise C2SInputError(next(iter(job.sources.values())), f"cannot denoise: {describe_exception(exc)}") from None
    contrasts = (None,) if names is None else tuple(names)
    if names is None:  # one volume, or the volumes of a 4-D series
        volumes = [denoised[0] if images[None].data.ndim == 3 else np.stack(denoised)]
        levels = np.atleast_1d(np.asarray(noise_levels, dtype=float))[None]  # (1, volumes of the series)
    else:
        volumes = [denoised[name][0] for name in names]
        levels = np.atleast_2d(noise_levels)[:1].T  # (contrasts, 1): this subject's level of each contrast
    results = []
    for name, target in job.targets.items():
        position = contrasts.index(name)
        image = images[name]
        mask = _mask(image, settings)
        output, complex_images = _output_images(image, volumes[position])
        read, complex_read = _output_images(image, image.data)  # the input, as the output is written
        if mask is not None:
            output = np.where(mask, output, read).astype(output.dtype)
            if complex_images is not None:
                complex_images = np.where(mask, complex_images, complex_read)
        sigmas = levels[position]
        provenance = {
            **settings.model_info,
            "sigma": float(np.mean(sigmas)),
            **({"sigma_per_volume": [float(v) for v in sigmas]} if image.data.ndim == 4 else {}),
            "noise_model": model.noise_model_,
            "images": image.meta.get("combine", "magnitude"),
            "refinement": float(model.refinement),
            "source_file": image.source.name,
            "source_dataset": image.meta.get("dataset"),
            "mask": settings.mask,
            **({} if job.noise_map is None else {"noise_map_source": job.noise_map}),
            **({} if name is None else {"contrast": name}),
            **({"adapted_steps": settings.adapt, "adapt_seconds": adapt_seconds} if settings.adapt else {}),
        }
        write = dict(overwrite=settings.overwrite, inputs=job.sources.values())
        save_image(
            target,
            _stored(output, image, settings.dtype),
            image,
            provenance,
            complex_data=complex_images if settings.save_complex else None,
            **write,
        )
        extras = extra_outputs(target, job.sources[name], settings, image.format)
        if "noise_map" in extras:
            noise_map = _noise_map(image, sigmas, mask, maps)
            save_image(extras["noise_map"], noise_map, image, {**provenance, "content": "noise map"}, **write)
        if "residual" in extras:
            residual = (read - output).astype(output.dtype)
            save_image(extras["residual"], residual, image, {**provenance, "content": "residual"}, **write)
        if "sidecar" in extras:
            _write_sidecar(extras["sidecar"], provenance, settings, job.sources[name])
        results.append(
            {
                "input": str(job.sources[name]),
                "output": str(target),
                **{key: str(path) for key, path in extras.items()},
                **({} if name is None else {"contrast": name}),
                "shape": list(image.data.shape),
                "images": provenance["images"],
                "sigma": provenance["sigma"],
                **{
                    key: provenance[key]
                    for key in ("sigma_per_volume", "noise_map_source", "adapted_steps", "adapt_seconds")
                    if key in provenance
                },
            }
        )
    seconds = round(time.perf_counter() - start, 3)
    return [{**result, "seconds": seconds} for result in results]


def check_extras(extras: dict[str, Any]) -> None:
    """Refuse bad further outputs and settings of ``apply`` (``dtype``, ``threads``, ``adapt``, ``device``)."""
    if extras["dtype"] not in OUTPUT_DTYPES:
        raise C2SInputError(None, f"dtype={extras['dtype']!r} is not one of {', '.join(OUTPUT_DTYPES)}")
    if extras["threads"] is not None and int(extras["threads"]) < 1:
        raise C2SInputError(None, f"threads={extras['threads']} must be at least 1")
    adapt = extras["adapt"]
    if isinstance(adapt, bool) or not hasattr(adapt, "__index__") or adapt < 0:
        raise C2SInputError(None, f"adapt={adapt!r} must be a whole number of training steps, 0 or more")
    if adapt and extras["noise_map"] is not None:
        raise C2SInputError(
            None, f"adapt={adapt} cannot be combined with noise_map=... yet (adapt with one noise level per file)"
        )
    check_device(extras["device"])


def _adapted(model: Any, X: Any, steps: int) -> tuple[Any, float | None]:
    """A copy of ``model`` trained ``steps`` more steps on the subject's noisy ``X`` (the model itself for 0),
    and the seconds that took."""
    if not steps:
        return model, None
    start = time.perf_counter()
    adapted = copy.deepcopy(model).set_params(warm_start=True, max_iter=steps).fit(X)
    return adapted, round(time.perf_counter() - start, 3)


def _job_maps(
    model: Any, job: Job, images: dict[str | None, LoadedImage], options: ReadOptions
) -> list[np.ndarray] | None:
    """The noise map of each volume of the job's (single-contrast) file: read, estimated, or None without one."""
    if job.noise_map is None:
        return None
    if job.noise_map == AUTO:
        return estimated_maps(model, images[None])
    return read_noise_map(job.noise_map, images[None], options)


def mask_setting(mask: PathLike | None) -> str | None:
    """``mask`` as the jobs take it: None, ``"auto"``, or the absolute path of an existing mask file."""
    if mask is None or mask == "auto":
        return mask
    path = Path(mask)
    if not path.is_file():
        raise C2SInputError(path, "mask file not found")
    return str(path.absolute())


def describe_derivatives(folder: Path, settings: Settings) -> None:
    """A ``dataset_description.json`` at the root of the BIDS derivatives pipeline folder, if it has none."""
    parts = folder.absolute().parts
    index = len(parts) - 1 - parts[::-1].index("derivatives")
    root = Path(*parts[: min(index + 2, len(parts))])
    description = root / "dataset_description.json"
    if description.exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    document = {
        "Name": "c2s-denoise outputs",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "c2s-denoise", "Version": settings.model_info["package_version"]}],
    }
    with atomic_write(description) as temporary:
        temporary.write_text(json.dumps(document, indent=2) + "\n")
