"""Exceptions raised by medmm.

Every exception carries the file or series it is about and a sentence telling the
reader what to do next, so that a batch log line is enough to act on.

The hierarchy::

    MedmmError
    ├── InputError                  something wrong with what the user gave us
    │   ├── DicomReadError          a file could not be read or decoded
    │   ├── SeriesGeometryError     slices do not form a trustworthy 3D grid
    │   ├── UnsupportedSeriesError  readable, but not something medmm analyses
    │   └── AnnotationError         a LUNA16 CSV / LIDC XML file is malformed
    ├── ModelError                  a network could not be built or run
    │   └── CheckpointError         weights missing, corrupt or mismatched
    ├── OntologyError               the RDF vocabulary is missing or invalid
    └── ExportError                 a report could not be written

Catch ``MedmmError`` to handle everything medmm raises on purpose; anything else
escaping the library is a bug.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AnnotationError",
    "CheckpointError",
    "DicomReadError",
    "ExportError",
    "InputError",
    "MedmmError",
    "ModelError",
    "OntologyError",
    "SeriesGeometryError",
    "UnsupportedSeriesError",
]


class MedmmError(Exception):
    """Base class of every error medmm raises on purpose.

    Args:
        message: What went wrong, in one sentence.
        path: The file (or folder) concerned, if any.
        series_uid: The SeriesInstanceUID concerned, if any.
        hint: What the reader can do about it. Defaults to the class's ``default_hint``.
    """

    default_hint: str = "See the medmm documentation or report the problem with this message."

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        series_uid: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.series_uid = series_uid
        self.hint = hint if hint is not None else self.default_hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.series_uid:
            where.append(f"series {self.series_uid}")
        if self.path is not None:
            where.append(f"file {self.path}")
        prefix = f"[{', '.join(where)}] " if where else ""
        return f"{prefix}{self.message} -- {self.hint}"


class InputError(MedmmError):
    """The input data (files, folders, arguments) cannot be used as given."""

    default_hint = "Check the input path and its contents."


class DicomReadError(InputError):
    """A DICOM file could not be parsed or its pixel data could not be decoded."""

    default_hint = (
        "Check that the file is complete DICOM; for compressed transfer syntaxes make sure "
        "pylibjpeg, pylibjpeg-libjpeg and pylibjpeg-openjpeg are installed."
    )


class SeriesGeometryError(InputError):
    """The slices of a series do not form a regular, trustworthy 3D grid."""

    default_hint = (
        "Inspect the series with `medmm info`; re-export it from the scanner/PACS, or pass a "
        "geometry policy to load_series if resampling is acceptable."
    )


class UnsupportedSeriesError(InputError):
    """The series is valid DICOM but not a kind of image medmm analyses."""

    default_hint = "medmm analyses grayscale cross-sectional CT/MR series with patient geometry."


class AnnotationError(InputError):
    """An annotation file (LUNA16 CSV, LIDC XML) is malformed or does not fit the series."""

    default_hint = "Check that the annotation file belongs to this series and is not truncated."


class ModelError(MedmmError):
    """A model could not be built or run."""

    default_hint = "Check the model configuration and the input tensor shapes."


class CheckpointError(ModelError):
    """Model weights are missing, corrupt, or do not match the architecture."""

    default_hint = "Reinstall medmm or retrain with `medmm train`; weights are never downloaded."


class OntologyError(MedmmError):
    """The ontology files are missing, unparsable or fail validation."""

    default_hint = "Reinstall medmm; the ontology ships inside the package."


class ExportError(MedmmError):
    """A report or overlay could not be written."""

    default_hint = "Check that the output folder exists and is writable."
