"""How input files are read (:class:`ReadOptions`, the one object the readers take) and outputs typed."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMBINE_MODES", "MAGNITUDE_READ", "OUTPUT_DTYPES", "ReadOptions"]

#: How HDF5 k-space becomes images: "auto" (complex when the file has k-space), "complex", "rss".
COMBINE_MODES: tuple[str, ...] = ("auto", "complex", "rss")
#: Type of written images: "float32" (float64 data stays float64), or "keep" the type the input was stored in.
OUTPUT_DTYPES: tuple[str, ...] = ("float32", "keep")


@dataclass(frozen=True)
class ReadOptions:
    """How input files are read (see :func:`c2s_denoise.io.load_image`).

    The options are checked when the object is made, so every reader can rely on them.

    Attributes
    ----------
    crop : tuple of int or None
        Centre crop ``(h, w)`` of every slice (all formats).
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
        :func:`c2s_denoise.io.fastmri.load_fastmri`). "complex" is an error for other
        formats, which hold no k-space.

    Raises
    ------
    ValueError
        For an unknown ``combine`` mode or a crop size that is not positive.
    """

    crop: tuple[int, int] | None = None
    slice_axis: int = -1
    npz_key: str | None = None
    dataset: str | None = None
    combine: str = "auto"

    def __post_init__(self) -> None:
        if self.combine not in COMBINE_MODES:
            raise ValueError(f"unknown combine mode {self.combine!r}; use one of {', '.join(COMBINE_MODES)}")
        if self.crop is not None:
            crop = tuple(int(size) for size in self.crop)
            if len(crop) != 2 or min(crop) <= 0:
                raise ValueError(f"crop sizes must be two positive numbers (h, w), got {self.crop!r}")
            object.__setattr__(self, "crop", crop)


#: What :func:`~c2s_denoise.io.load_image` reads without options: magnitude images (k-space as
#: root-sum-of-squares, or the stored reconstruction).
MAGNITUDE_READ = ReadOptions(combine="rss")
