"""Synthetic data: DICOM writing (phantoms and reports arrive with the synthesis issue)."""

from medmm.synth.dicom_writer import (
    SeriesTemplate,
    deterministic_uid,
    write_ct_series,
    write_ct_slice,
)

__all__ = ["SeriesTemplate", "deterministic_uid", "write_ct_series", "write_ct_slice"]
