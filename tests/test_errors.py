from __future__ import annotations

import pytest

from medmm import errors


def test_every_error_is_a_medmm_error_and_names_its_context() -> None:
    exc = errors.SeriesGeometryError("1 missing slice", series_uid="1.2.3", path="/data/x.dcm")
    assert isinstance(exc, errors.InputError)
    assert isinstance(exc, errors.MedmmError)
    text = str(exc)
    assert "series 1.2.3" in text and "x.dcm" in text and "1 missing slice" in text
    assert exc.hint in text  # a default hint tells the reader what to do


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (errors.DicomReadError, errors.InputError),
        (errors.UnsupportedSeriesError, errors.InputError),
        (errors.AnnotationError, errors.InputError),
        (errors.CheckpointError, errors.ModelError),
        (errors.OntologyError, errors.MedmmError),
        (errors.ExportError, errors.MedmmError),
    ],
)
def test_hierarchy(cls: type, parent: type) -> None:
    assert issubclass(cls, parent)
    assert cls("x").hint  # never an empty hint
