"""medmm: a toolkit that assists chest CT reading.

Geometry is LPS millimetres throughout; arrays are indexed ``(z, y, x)``; see
:mod:`medmm.types`.
"""

from medmm.errors import (
    AnnotationError,
    CheckpointError,
    DicomReadError,
    ExportError,
    InputError,
    MedmmError,
    ModelError,
    OntologyError,
    SeriesGeometryError,
    UnsupportedSeriesError,
)
from medmm.types import ReferenceNodule, SeriesInfo, Volume, VolumeGeometry

__version__ = "0.1.0.dev0"

__all__ = [
    "AnnotationError",
    "CheckpointError",
    "DicomReadError",
    "ExportError",
    "InputError",
    "MedmmError",
    "ModelError",
    "OntologyError",
    "ReferenceNodule",
    "SeriesGeometryError",
    "SeriesInfo",
    "UnsupportedSeriesError",
    "Volume",
    "VolumeGeometry",
    "__version__",
]
