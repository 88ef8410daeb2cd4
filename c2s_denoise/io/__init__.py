"""Reading and writing MRI files: fastMRI / M4Raw HDF5, NIfTI, NumPy, and PNG figures.

The main entry points are :func:`load_image`, which returns a
:class:`LoadedImage` whose ``data`` is a ``(D, H, W)`` float volume, and
:func:`save_image`, which writes a result atomically in the format of its
source. Problems with files raise :class:`C2SInputError`, whose one-line
message names the file and the problem.

h5py and nibabel are imported only when a file of their format is read or
written; nibabel is the optional extra ``nifti``.
"""

from .atomic import TEMP_PREFIX, atomic_write, check_output_path, same_file
from .core import check_input_path, load_image, probe_image, reads_complex, save_image
from .errors import C2SInputError
from .image import FORMATS, LoadedImage, M4RawName, detect_format, parse_m4raw_name, strip_suffix

__all__ = [
    "FORMATS",
    "TEMP_PREFIX",
    "C2SInputError",
    "LoadedImage",
    "M4RawName",
    "atomic_write",
    "check_input_path",
    "check_output_path",
    "detect_format",
    "load_image",
    "parse_m4raw_name",
    "probe_image",
    "reads_complex",
    "same_file",
    "save_image",
    "strip_suffix",
]
