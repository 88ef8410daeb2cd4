"""Turning user input into volumes and back (the estimator's input layouts).

Accepted layouts (see :class:`c2s_denoise.C2SDenoiser`):

- 2-D array ``(n_samples, n_features)``: each row is one image of shape ``image_shape``
  (default ``(1, n_features)``: a one-pixel-high image). This is what scikit-learn's tabular
  tools pass around.
- 3-D array ``(n, H, W)``: ``n`` independent images.
- 4-D array ``(n, D, H, W)``: ``n`` volumes, denoised slice by slice.
- list of arrays, each ``(H, W)`` or ``(D, H, W)``, sizes may differ.

Every image or volume is one *normalisation unit*: it is scaled by its own intensity scale and
has its own noise level, so the result for one item never depends on the other items.

With named contrasts (:func:`split_contrast_items`), X carries a contrast axis at position 1:

- array ``(n, n_contrasts, H, W)`` or ``(n, n_contrasts, D, H, W)``;
- list of arrays, each ``(n_contrasts, H, W)`` or ``(n_contrasts, D, H, W)``;
- dict ``{contrast name: single-contrast input}`` (any layout above except 2-D rows), the
  same shapes for every contrast. Key order does not matter; names do.

Each contrast of each item is its own normalisation unit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.utils.validation import check_array

from .rules import depth_problem, image_kind

__all__ = [
    "Layout",
    "check_fitted_contrasts",
    "check_kind",
    "check_min_depth",
    "intensity_scale",
    "is_label_vector",
    "is_rows",
    "item_scales",
    "join_contrast_items",
    "join_volumes",
    "split_contrast_items",
    "split_volumes",
]


@dataclass
class Layout:
    """How to put denoised volumes back into the caller's layout."""

    kind: str  # "rows", "array", "list" or (named contrasts only) "dict"
    shapes: list[tuple[int, ...]]
    dtypes: list[np.dtype]
    array_shape: tuple[int, ...] | None = None
    parts: dict[str, Layout] = field(default_factory=dict)  # "dict": each contrast's layout


def _output_dtype(dtype: np.dtype) -> np.dtype:
    if np.dtype(dtype).kind == "c":
        return dtype if dtype in (np.complex64, np.complex128) else np.dtype(np.complex128)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _check_complex_array(array: np.ndarray, name: str) -> np.ndarray:
    """Validate a complex image array: finite, non-empty, at least 2-D (no copy unless needed)."""
    checked = array if array.dtype in (np.complex64, np.complex128) else array.astype(np.complex128)
    if checked.ndim < 2:
        raise ValueError(f"{name} must be at least 2-D (an image (H, W)), got shape {checked.shape}")
    if 0 in checked.shape:
        raise ValueError(f"{name} has a zero-size dimension: shape {checked.shape}")
    if not np.isfinite(checked).all():
        raise ValueError(f"Input {name} contains NaN or infinity.")
    return checked


def _check_image_array(array: object, *, name: str, allow_nd: bool = True) -> np.ndarray:
    """Validate one array: numeric, finite, non-empty (no copy unless needed); complex stays complex."""
    if np.asarray(array).dtype.kind == "c":
        return _check_complex_array(np.asarray(array), name)
    checked = check_array(
        array,
        dtype=[np.float64, np.float32],
        allow_nd=allow_nd,
        ensure_2d=False,
        ensure_all_finite=True,
        ensure_min_samples=1,
        input_name=name,
    )
    if checked.ndim < 2:
        raise ValueError(f"{name} must be at least 2-D (an image (H, W)), got shape {checked.shape}")
    if 0 in checked.shape:
        raise ValueError(f"{name} has a zero-size dimension: shape {checked.shape}")
    return checked


_CONTRASTS_COMPLEX = (
    "Complex data not supported with named contrasts: {name} is complex; denoise complex images without "
    "contrasts, or pass magnitudes np.abs(data)"
)


def _reject_complex(X: object, name: str, message: str | None = None) -> None:
    dtype = getattr(X, "dtype", None)
    if dtype is None:
        dtype = np.asarray(X).dtype
    if np.dtype(dtype).kind == "c":
        if message is not None:
            raise ValueError(message.format(name=name))
        raise ValueError(
            f"Complex data not supported: {name} is complex 2-D rows; pass complex images as (n, H, W) or "
            "(n, D, H, W) arrays or a list of (H, W) / (D, H, W) arrays"
        )


def split_volumes(X: object, image_shape: tuple[int, int] | None, validate_rows) -> tuple[list[np.ndarray], Layout]:
    """Return ``(volumes, layout)`` with each volume a float array ``(D, H, W)``.

    Parameters
    ----------
    X : array-like or list of array-like
        The caller's input.
    image_shape : tuple of int or None
        Shape of each row for 2-D input.
    validate_rows : callable
        ``validate_rows(X) -> ndarray``: the estimator's ``validate_data`` for 2-D input (it
        records or checks ``n_features_in_``).
    """
    if isinstance(X, Mapping):
        names = tuple(str(name) for name in X)
        raise ValueError(
            f"X is a dict of contrasts {{name: images}} (keys {', '.join(map(repr, names))}), but contrasts=None: "
            f"pass contrasts={names!r} (their order on the contrast axis) to denoise the contrasts of each "
            "subject together, or give the images of one contrast"
        )
    if isinstance(X, (list, tuple)) and len(X) > 0 and all(np.ndim(item) >= 2 for item in X):
        volumes, shapes, dtypes = [], [], []
        for index, item in enumerate(X):
            original_dtype = np.asarray(item).dtype
            array = _check_image_array(item, name=f"X[{index}]")
            if array.ndim == 2:
                volume = array[None]
            elif array.ndim == 3:
                volume = array
            else:
                raise ValueError(f"X[{index}] must be an image (H, W) or a volume (D, H, W), got shape {array.shape}")
            volumes.append(volume)
            shapes.append(array.shape)
            dtypes.append(_output_dtype(original_dtype))
        return volumes, Layout("list", shapes, dtypes)
    if isinstance(X, (list, tuple)) and len(X) == 0:
        raise ValueError("X is empty: expected at least one image")
    if sparse.issparse(X):
        validate_rows(X)  # raises scikit-learn's "sparse data not supported" error
    given = X  # validated as given (a DataFrame keeps its column names: feature_names_in_)
    X = np.asarray(X)  # no copy for arrays; array-likes and nested lists of equal size become arrays
    if X.ndim <= 2:  # tabular rows (scikit-learn's 2-D convention) are real; complex is for images
        _reject_complex(X, "X")
    original_dtype = X.dtype
    ndim = X.ndim
    if ndim < 2:
        validate_rows(X)  # raises scikit-learn's "Expected 2D array ... Reshape your data" error
    if ndim == 2:
        rows = validate_rows(given)
        if 0 in rows.shape:
            raise ValueError(f"X has a zero-size dimension: shape {rows.shape}")
        shape = tuple(image_shape) if image_shape is not None else (1, rows.shape[1])
        if int(np.prod(shape)) != rows.shape[1]:
            raise ValueError(
                f"image_shape={tuple(shape)} holds {int(np.prod(shape))} pixels but X has {rows.shape[1]} features"
            )
        volumes = [row.reshape((1,) + shape) for row in rows]
        layout = Layout("rows", [shape] * len(volumes), [_output_dtype(original_dtype)], rows.shape)
        return volumes, layout
    if ndim in (3, 4):
        array = _check_image_array(X, name="X")
        volumes = [item[None] if ndim == 3 else item for item in array]
        layout = Layout("array", [item.shape for item in volumes], [_output_dtype(original_dtype)], array.shape)
        return volumes, layout
    raise ValueError(
        "X must be a 2-D array (n_samples, n_features), a stack of images (n, H, W), volumes "
        f"(n, D, H, W) or a list of images/volumes; got an input with {ndim} dimension(s)"
    )


def join_volumes(volumes: list[np.ndarray], layout: Layout) -> np.ndarray | list[np.ndarray]:
    """Inverse of :func:`split_volumes` for the denoised volumes."""
    if layout.kind == "list":
        return [
            v.reshape(shape).astype(dtype, copy=False) for v, shape, dtype in zip(volumes, layout.shapes, layout.dtypes)
        ]
    stacked = np.stack(volumes).reshape(layout.array_shape)
    return stacked.astype(layout.dtypes[0], copy=False)


def intensity_scale(volume: np.ndarray, percentile: float = 99.5) -> float:
    """Intensity scale of a volume: a high percentile of its magnitude (1.0 if it is all zero)."""
    magnitude = np.abs(volume)
    scale = float(np.percentile(magnitude, percentile))
    if not scale > 0:
        scale = float(magnitude.max())
    return scale if scale > 0 else 1.0


def _no_rows(name: str):
    def reject(X: object) -> None:
        raise ValueError(
            f"contrast {name!r}: 2-D rows are not supported with named contrasts; pass images (n, H, W) "
            "or volumes (n, D, H, W)"
        )

    return reject


def _check_same_names(
    given: Iterable[str], names: tuple[str, ...], *, unknown: Callable[[str], str], missing: Callable[[str], str]
) -> None:
    """Raise ``ValueError(unknown(name))`` for the first name of ``given`` not in ``names``, then ``missing`` vice versa."""
    for name in given:
        if name not in names:
            raise ValueError(unknown(name))
    for name in names:
        if name not in given:
            raise ValueError(missing(name))


def split_contrast_items(X: object, contrasts: tuple[str, ...]) -> tuple[list[np.ndarray], Layout]:
    """Return ``(items, layout)`` with each item a float array ``(n_contrasts, D, H, W)``.

    Parameters
    ----------
    X : array-like, list of array-like, or dict
        The caller's multi-contrast input (layouts in the module docstring).
    contrasts : tuple of str
        The contrast names, in the order of the contrast axis.

    Raises
    ------
    ValueError
        Naming the contrast for a missing or unknown contrast, or shapes that differ between
        contrasts; for a contrast axis of the wrong size; for NaN, complex or empty input.
    """
    n_contrasts = len(contrasts)
    if isinstance(X, Mapping):
        _check_same_names(
            X,
            contrasts,
            unknown=lambda name: f"X has contrast {name!r}, which is not one of the model's contrasts {contrasts}",
            missing=lambda name: f"contrast {name!r} is missing from X (the model's contrasts are {contrasts})",
        )
        parts = {name: split_volumes(X[name], None, _no_rows(name)) for name in contrasts}
        for name, (volumes, _) in parts.items():
            if any(volume.dtype.kind == "c" for volume in volumes):
                raise ValueError(_CONTRASTS_COMPLEX.format(name=f"contrast {name!r}"))
        first = contrasts[0]
        reference = parts[first][0]
        for name in contrasts[1:]:
            volumes = parts[name][0]
            if len(volumes) != len(reference):
                raise ValueError(
                    f"contrast {name!r} has {len(volumes)} images/volumes but contrast {first!r} has {len(reference)}"
                )
            for index, (a, b) in enumerate(zip(reference, volumes)):
                if a.shape != b.shape:
                    raise ValueError(
                        f"contrast {name!r} item {index} has shape {b.shape} but contrast {first!r} has shape "
                        f"{a.shape}: contrasts must be co-registered on the same grid"
                    )
        items = [np.stack([parts[name][0][i] for name in contrasts]) for i in range(len(reference))]
        layout = Layout("dict", [], [], parts={name: parts[name][1] for name in contrasts})
        return items, layout

    axis_hint = "put the contrasts on axis 1: (n, n_contrasts, H, W) or (n, n_contrasts, D, H, W)"

    def check_contrast_axis(size: int, name: str) -> None:
        if size != n_contrasts:
            raise ValueError(
                f"{name} has {size} contrast(s) on its contrast axis but the model's contrasts are {contrasts} "
                f"({n_contrasts}); {axis_hint}"
            )

    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError("X is empty: expected at least one image")
        items, shapes, dtypes = [], [], []
        for index, element in enumerate(X):
            _reject_complex(element, f"X[{index}]", _CONTRASTS_COMPLEX)
            original_dtype = np.asarray(element).dtype
            array = _check_image_array(element, name=f"X[{index}]")
            if array.ndim not in (3, 4):
                raise ValueError(
                    f"X[{index}] must be (n_contrasts, H, W) or (n_contrasts, D, H, W), got shape {array.shape}"
                )
            check_contrast_axis(array.shape[0], f"X[{index}]")
            items.append(array[:, None] if array.ndim == 3 else array)
            shapes.append(array.shape)
            dtypes.append(_output_dtype(original_dtype))
        return items, Layout("list", shapes, dtypes)
    if sparse.issparse(X):
        raise TypeError("sparse input is not supported: pass dense images")
    X = np.asarray(X)
    _reject_complex(X, "X", _CONTRASTS_COMPLEX)
    original_dtype = X.dtype
    if X.ndim not in (4, 5):
        raise ValueError(f"with named contrasts X must be 4-D or 5-D ({axis_hint}); got shape {X.shape}")
    array = _check_image_array(X, name="X")
    check_contrast_axis(array.shape[1], "X")
    items = [item[:, None] if array.ndim == 4 else item for item in array]
    return items, Layout("array", [item.shape for item in items], [_output_dtype(original_dtype)], array.shape)


def join_contrast_items(items: list[np.ndarray], layout: Layout, contrasts: tuple[str, ...]):
    """Inverse of :func:`split_contrast_items` for the denoised items ``(n_contrasts, D, H, W)``."""
    if layout.kind == "dict":
        return {name: join_volumes([item[c] for item in items], layout.parts[name]) for c, name in enumerate(contrasts)}
    if layout.kind == "list":
        return [
            i.reshape(shape).astype(dtype, copy=False) for i, shape, dtype in zip(items, layout.shapes, layout.dtypes)
        ]
    return np.stack(items).reshape(layout.array_shape).astype(layout.dtypes[0], copy=False)


def item_scales(items: list[np.ndarray]) -> np.ndarray:
    """:func:`intensity_scale` of each contrast of each item ``(n_contrasts, D, H, W)``: ``(n_items, n_contrasts)``."""
    return np.array([[intensity_scale(volume) for volume in item] for item in items])


def is_label_vector(y: object) -> bool:
    """Whether ``y`` is a vector of labels or targets (what scikit-learn passes as ``y``), not images."""
    if isinstance(y, Mapping):
        return False
    if isinstance(y, (list, tuple)):
        return all(np.ndim(value) == 0 for value in y)
    return np.ndim(y) <= 1


def is_rows(X: object) -> bool:
    """Whether ``X`` is a 2-D array ``(n_samples, n_features)`` of rows (a table), not images."""
    if isinstance(X, Mapping):
        return False
    try:
        return np.ndim(X) == 2
    except ValueError:  # a list of images of different sizes
        return False


def check_fitted_contrasts(names: tuple[str, ...] | None, fitted: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """``names`` after checking that they are the fitted contrasts ``fitted``, in the same order."""
    if names != fitted:
        if fitted is None or names is None:
            raise ValueError(f"contrasts={names} but the model was fitted with contrasts={fitted}")
        for position, (given, expected) in enumerate(zip(names, fitted)):
            if given != expected:
                raise ValueError(
                    f"contrast {given!r} is at position {position} but the model was fitted with {expected!r} "
                    f"there (fitted order {fitted})"
                )
        extra = set(names) ^ set(fitted)
        raise ValueError(f"contrast {sorted(extra)[0]!r} differs from the fitted contrasts {fitted}")
    return names


def check_min_depth(depths: list[int], context_slices: int | str) -> None:
    """Raise for the first item too thin for ``context_slices`` (:func:`~c2s_denoise.estimator.rules.depth_problem`)."""
    for index, depth in enumerate(depths):
        problem = depth_problem(depth, context_slices)
        if problem:
            raise ValueError(
                f"item {index} {problem} (pass volumes (n, D, H, W), or context_slices=0 for single images)"
            )


def check_kind(items: list[np.ndarray], expected: bool | None) -> bool:
    """Whether the items are complex; all must be alike, and like ``expected`` unless it is None
    (:func:`~c2s_denoise.estimator.rules.image_kind`)."""
    return image_kind([np.iscomplexobj(item) for item in items], expected)
