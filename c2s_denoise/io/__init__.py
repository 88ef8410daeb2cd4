"""Reading and writing MRI files: fastMRI / M4Raw HDF5, NIfTI, NumPy, DICOM series, and PNG figures.

The main entry points are :func:`load_image`, which reads a file with one
:class:`ReadOptions` and returns a :class:`LoadedImage` whose ``data`` is a
``(D, H, W)`` float volume, and :func:`save_image`, which writes a result
atomically in the format of its source. Problems with files raise
:class:`C2SInputError`, whose one-line message names the file and the problem.

h5py, nibabel and pydicom are imported only when a file of their format is
read or written; nibabel is the optional extra ``nifti``, pydicom the extra
``dicom``. A DICOM input is a file or a folder holding one series; its output,
a derived series, is a file or a folder alike.
"""

from .atomic import TEMP_PREFIX, atomic_write, check_output_folder, check_output_path, same_file
from .dicom_read import DICOM_EXTRA, has_dicom_marker, is_dicom_folder, load_dicom, probe_dicom
from .dicom_write import check_series_output, write_dicom
from .errors import C2SInputError
from .file_names import FORMATS, M4RawName, detect_format, parse_m4raw_name, strip_suffix
from .loaded_image import LoadedImage
from .options import COMBINE_MODES, MAGNITUDE_READ, ReadOptions
from .read_write import check_input_path, check_output_target, load_image, probe_image, reads_complex, save_image

__all__ = [
    "COMBINE_MODES",
    "DICOM_EXTRA",
    "FORMATS",
    "MAGNITUDE_READ",
    "TEMP_PREFIX",
    "C2SInputError",
    "LoadedImage",
    "M4RawName",
    "ReadOptions",
    "atomic_write",
    "check_input_path",
    "check_output_folder",
    "check_output_path",
    "check_output_target",
    "check_series_output",
    "detect_format",
    "has_dicom_marker",
    "is_dicom_folder",
    "load_dicom",
    "load_image",
    "parse_m4raw_name",
    "probe_dicom",
    "probe_image",
    "reads_complex",
    "same_file",
    "save_image",
    "strip_suffix",
    "write_dicom",
]
