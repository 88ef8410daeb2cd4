"""The model file: a fitted :class:`~c2s_denoise.C2SDenoiser` as one safetensors file, with no pickle.

Layout (format ``c2s-denoise-model``, version 1):

- tensors ``networks.<i>.<name>``: the state dict of network ``i`` (float32 CPU tensors, the
  EMA weights); one network without contrasts, one per target contrast with them;
- metadata key ``c2s_denoise_model``: a JSON document with ``format``, ``format_version``,
  ``c2s_version``, ``torch_version``, ``params`` (``get_params()``, tuples as lists),
  ``fitted`` (every fitted attribute but the networks; arrays as ``{"dtype", "shape",
  "data"}``), ``networks`` (``[{"contrast": name or null, "config": constructor arguments}]``
  in tensor order), ``partial`` (the fit was interrupted) and ``tensors_sha256`` (SHA-256 of
  the tensors' names, dtypes, shapes and bytes, checked on load).

Loading reads the file with :func:`safetensors.safe_open` and :func:`json.loads` only: nothing
in the file is executed. Every value is type-checked, and the parameters are validated by the
estimator, before a model is built; a wrong or corrupt file raises
:class:`~c2s_denoise.io.C2SInputError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from ..io.atomic import atomic_write
from ..io.errors import C2SInputError, describe_exception
from .legacy import upgrade_fitted, upgrade_params, version_warnings

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "is_model_file", "load_model_file", "save_model_file"]

FORMAT_NAME = "c2s-denoise-model"
FORMAT_VERSION = 1
_METADATA_KEY = "c2s_denoise_model"
#: Fitted attributes (besides the networks) and the JSON kind each is stored as.
_FITTED = {
    "sigma_": "array",
    "scales_": "array",
    "sigma_methods_": "array",
    "noise_model_": "str",
    "magnitude_correction_": "str",
    "n_coils_": "float",
    "device_": "str",
    "training_dtype_": "str",
    "context_slices_": "int",
    "complex_input_": "bool",
    "phase_demodulated_": "bool",
    "n_iter_": "int",
    "init_": "str",
    "n_features_in_": "int",
    "fit_time_": "float",
    "loss_curve_": "floats",
    "contrasts_": "strs",
    "target_contrasts_": "strs",
}
_REQUIRED = ("sigma_", "scales_", "sigma_methods_", "noise_model_", "complex_input_", "n_iter_", "loss_curve_")
_ARRAY_DTYPES = ("float64", "float32", "str")
_TUPLE_PARAMS = ("image_shape", "contrasts", "target_contrasts")
_NETWORK_CONFIG = {
    "in_channels": int,
    "out_channels": int,
    "width": int,
    "depth": int,
    "attention": bool,
    "noise_conditioning": bool,
    "signal_std": float,
    "embedding_dim": int,
}
#: Network config entries that may be absent (their default then applies): 3-D networks only.
_OPTIONAL_NETWORK_CONFIG = {"spatial_dims": int, "separable": bool}


def is_model_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like a safetensors file (an 8-byte header length, then a JSON object).

    Parameters
    ----------
    path : str or path-like
        An existing file.

    Returns
    -------
    bool
        True for a safetensors file (the model format), False for anything else.
    """
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    header_size = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 2 <= header_size <= os.path.getsize(path) - 8


# ----------------------------------------------------------------------------- save
def save_model_file(model: Any, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write a fitted model as one safetensors file, atomically.

    Parameters
    ----------
    model : C2SDenoiser
        A fitted estimator.
    path : str or path-like
        The file (``.c2s`` by convention); its folder must exist.
    overwrite : bool, default=True
        Whether an existing file may be replaced.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from safetensors.torch import save
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    networks = list(model.networks_.items())
    tensors = {
        f"networks.{index}.{name}": tensor.detach().cpu().contiguous().clone()
        for index, (_, network) in enumerate(networks)
        for name, tensor in network.state_dict().items()
    }
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "c2s_version": __version__,
        "torch_version": torch.__version__,
        "params": _json_params(model.get_params()),
        "fitted": {
            name: _encode(getattr(model, name), kind)
            for name, kind in _FITTED.items()
            if getattr(model, name, None) is not None
        },
        "networks": [{"contrast": contrast, "config": dict(network.config)} for contrast, network in networks],
        "partial": bool(model.interrupted_),
        "tensors_sha256": tensors_sha256(tensors),
    }
    data = save(tensors, metadata={_METADATA_KEY: json.dumps(document, default=_json_scalar)})
    out = Path(path)
    with atomic_write(out, overwrite=overwrite) as tmp:
        Path(tmp).write_bytes(data)
    return out


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{list(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """``get_params()`` as JSON values (tuples as lists; a RandomState instance and noise maps are not kept)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "sigma" and isinstance(value, (list, tuple, np.ndarray)):
            warnings.warn(
                "sigma holds noise maps, which belong to the images, not to the model: the model file keeps "
                "sigma='auto' in their place; give the maps of the images to denoise with set_params(sigma=[...])",
                UserWarning,
                stacklevel=4,
            )
            value = "auto"
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.random.RandomState):
            value = None
        out[key] = value
    return out


def _json_scalar(value: Any) -> Any:
    """NumPy scalars (e.g. from a parameter grid) as Python ones; anything else is not JSON."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store a {type(value).__name__} in a model file")


def _encode(value: Any, kind: str) -> Any:
    if kind == "array":
        array = np.asarray(value)
        dtype = "str" if array.dtype.kind in "UO" else str(array.dtype)
        data = array.astype(str) if dtype == "str" else array
        return {"dtype": dtype, "shape": list(array.shape), "data": data.ravel().tolist()}
    if kind in ("floats", "strs"):
        return [float(v) if kind == "floats" else str(v) for v in value]
    return {"str": str, "bool": bool, "int": int, "float": float}[kind](value)


# ----------------------------------------------------------------------------- load
def load_model_file(path: str | os.PathLike[str], cls: type) -> Any:
    """Read a model written by :func:`save_model_file`, executing nothing from the file.

    Parameters
    ----------
    path : str or path-like
        The model file.
    cls : type
        The estimator class to build (:class:`~c2s_denoise.C2SDenoiser`; ``C2SDenoiser.load`` passes it).

    Returns
    -------
    C2SDenoiser
        The fitted estimator, transforming bitwise like the one saved.

    Raises
    ------
    C2SInputError
        If the file is missing, is not a model file of this format, is corrupt (checksum), or
        holds values of the wrong type or parameters the estimator rejects.
    """
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise C2SInputError(p, "model file not found" if not p.exists() else "model path is not a regular file")
    if not is_model_file(p):
        raise C2SInputError(p, "not a c2s-denoise model file (not a safetensors file)")
    try:
        with safe_open(str(p), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # the reader's errors come in several types
        raise C2SInputError(p, f"not a readable model file ({describe_exception(exc)})") from None
    try:
        return _build(cls, _document(metadata), tensors)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        if isinstance(exc, C2SInputError):
            raise C2SInputError(p, exc.problem) from None
        raise C2SInputError(p, f"invalid model file ({describe_exception(exc)})") from None


def _document(metadata: dict[str, str]) -> dict[str, Any]:
    """The JSON document of the metadata, its format and version checked."""
    if _METADATA_KEY not in metadata:
        raise C2SInputError(None, "not a c2s-denoise model file (a safetensors file without c2s-denoise metadata)")
    document = json.loads(metadata[_METADATA_KEY])
    _expect(document, dict, "the metadata")
    if document.get("format") != FORMAT_NAME:
        raise C2SInputError(None, f"not a c2s-denoise model file (format {document.get('format')!r})")
    version = document.get("format_version")
    _expect(version, int, "format_version")
    if version > FORMAT_VERSION:
        raise C2SInputError(
            None, f"model format version {version} is newer than this c2s-denoise ({__version__}) reads; upgrade it"
        )
    for key, kind in (("params", dict), ("fitted", dict), ("networks", list), ("partial", bool)):
        _expect(document.get(key), kind, key)
    _expect(document.get("tensors_sha256"), str, "tensors_sha256")
    return document


def _build(cls: type, document: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Any:
    """The estimator of a checked document and its tensors."""
    if tensors_sha256(tensors) != document["tensors_sha256"]:
        raise C2SInputError(None, "the model file is corrupt (its weights do not match their checksum)")
    params = _params(cls, document["params"])
    upgrade_params(params)
    model = cls(**params)
    model._validate_params()
    fitted = document["fitted"]
    unknown = sorted(set(fitted) - set(_FITTED))
    if unknown or any(name not in fitted for name in _REQUIRED):
        raise C2SInputError(None, f"invalid model file (unknown or missing fitted attributes: {unknown or _REQUIRED})")
    for name, value in fitted.items():
        setattr(model, name, _decode(value, _FITTED[name], name))
    contrasts = getattr(model, "contrasts_", None)
    networks = _networks(document["networks"], tensors, contrasts)
    if contrasts is None and list(networks) != [None]:
        raise C2SInputError(None, "invalid model file (a single-contrast model needs exactly one network)")
    model.networks_ = networks
    if contrasts is not None:
        model.target_contrasts_ = tuple(networks)
    upgrade_fitted(model)
    model.interrupted_ = document["partial"]
    version_warnings(document.get("c2s_version"), document.get("torch_version"), stacklevel=4)
    return model


def _params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments from the JSON ``params``: known names only, JSON values only."""
    known = cls().get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise C2SInputError(None, f"invalid model file (unknown parameters {unknown})")
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            _expect_scalars(value.values(), key)
        elif isinstance(value, list):
            _expect_scalars(value, key)
            value = tuple(value) if key in _TUPLE_PARAMS else value
        else:
            _expect_scalars([value], key)
        out[key] = value
    return out


def _decode(value: Any, kind: str, name: str) -> Any:
    if kind == "array":
        _expect(value, dict, name)
        dtype, shape, data = value.get("dtype"), value.get("shape"), value.get("data")
        if dtype not in _ARRAY_DTYPES or not isinstance(shape, list) or not isinstance(data, list):
            raise C2SInputError(None, f"invalid model file ({name} is not an array of float64, float32 or str)")
        _expect_scalars(data, name, str if dtype == "str" else (int, float))
        if not all(isinstance(n, int) and n >= 0 for n in shape) or int(np.prod(shape)) != len(data):
            raise C2SInputError(None, f"invalid model file ({name} has a wrong shape)")
        return np.array(data, dtype=str if dtype == "str" else dtype).reshape(shape)
    if kind in ("floats", "strs"):
        _expect(value, list, name)
        _expect_scalars(value, name, str if kind == "strs" else (int, float))
        return tuple(value) if kind == "strs" else [float(v) for v in value]
    types = {"str": str, "bool": bool, "int": int, "float": (int, float)}[kind]
    _expect(value, types, name)
    if kind != "bool" and isinstance(value, bool):
        raise C2SInputError(None, f"invalid model file ({name} has the wrong type)")
    return float(value) if kind == "float" else value


def _networks(
    entries: list[Any], tensors: dict[str, torch.Tensor], contrasts: tuple[str, ...] | None
) -> dict[str | None, torch.nn.Module]:
    """The networks, by contrast (None without contrasts), checked against their config and the tensors."""
    from ..engine import NoiseConditionedUNet

    networks: dict[str | None, torch.nn.Module] = {}
    used = 0
    for index, entry in enumerate(entries):
        _expect(entry, dict, "networks")
        contrast, config = entry.get("contrast"), entry.get("config")
        if not (contrast is None if contrasts is None else contrast in contrasts) or contrast in networks:
            raise C2SInputError(None, f"invalid model file (network {index} has contrast {contrast!r})")
        _expect(config, dict, "network config")
        schema = {**_NETWORK_CONFIG, **{k: t for k, t in _OPTIONAL_NETWORK_CONFIG.items() if k in config}}
        if set(config) != set(schema) or not all(
            isinstance(config[k], t) and (t is bool or not isinstance(config[k], bool)) for k, t in schema.items()
        ):
            raise C2SInputError(None, f"invalid model file (network {index} has an invalid config)")
        prefix = f"networks.{index}."
        weights = {name[len(prefix) :]: t for name, t in tensors.items() if name.startswith(prefix)}
        used += len(weights)
        with torch.device("meta"):  # shapes only: nothing is allocated before they match the file's tensors
            expected = NoiseConditionedUNet(**config).state_dict()
        if {k: tuple(v.shape) for k, v in expected.items()} != {k: tuple(v.shape) for k, v in weights.items()}:
            raise C2SInputError(None, f"invalid model file (the weights of network {index} do not fit its config)")
        network = NoiseConditionedUNet(**config)
        network.load_state_dict(weights)
        networks[contrast] = network.eval()
    if not networks or used != len(tensors):
        raise C2SInputError(None, "invalid model file (no network, or tensors that belong to no network)")
    return networks


def _expect(value: Any, kind: type | tuple[type, ...], name: str) -> None:
    if not isinstance(value, kind):
        raise C2SInputError(None, f"invalid model file ({name} has the wrong type)")


def _expect_scalars(values: Any, name: str, kinds: type | tuple[type, ...] = (str, int, float, bool)) -> None:
    """Every value is a JSON scalar of ``kinds`` (None allowed only for the default kinds)."""
    allow_none = kinds == (str, int, float, bool)
    for value in values:
        if not (isinstance(value, kinds) or (allow_none and value is None)):
            raise C2SInputError(None, f"invalid model file ({name} holds a value of the wrong type)")
