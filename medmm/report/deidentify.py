"""De-identified exports (``medmm analyze --deidentify``), following PS3.15 Annex E.

The Basic Application Level Confidentiality Profile (PS3.15 Annex E, Table E.1-1) is
applied to what the exports carry:

- **dicognito** (a maintained pydicom-based anonymizer) replaces names, IDs, UIDs, dates
  and times, accession numbers and institution attributes with consistent pseudonyms. It
  is keyed: the same key maps the same value to the same pseudonym, so every series of a
  batch, and a resumed run, stay consistent (the key is the batch's secret; without it a
  pseudonym cannot be linked back).
- The profile's remove/empty actions that dicognito leaves undone on the attributes our
  exports copy are applied here: SeriesDescription, StudyDescription, PatientAge,
  PatientSex, PatientWeight, PatientSize and the other patient characteristics
  (``X``/``Z`` in Table E.1-1).
- Every exported DICOM object says so: PatientIdentityRemoved ``YES``, a
  DeidentificationMethod, and DeidentificationMethodCodeSequence (DCM 113100, "Basic
  Application Confidentiality Profile"; PS3.16 CID 7050).

The analysis itself runs on the original data; only its exports (SR, SEG, FHIR, JSON,
HTML, NIfTI, the batch tables and the folder names) are de-identified. The original source
file paths are left out of ``result.json``. Report text is never exported; the finding
spans kept are ontology phrases (``"spiculated nodule"``).

Example:
    >>> deid = Deidentifier("batch-secret")
    >>> deid.uid("1.2.840.113619.2.55.3") == Deidentifier("batch-secret").uid("1.2.840.113619.2.55.3")
    True
"""

from __future__ import annotations

import copy
import dataclasses
import os
import secrets
from importlib.metadata import version
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset

from medmm.types import AnalysisResult
from medmm.volume import SeriesInfo

__all__ = ["METHOD", "Deidentifier", "batch_key"]

METHOD = "PS3.15 Annex E Basic Profile (medmm; pseudonyms by dicognito {version})"

# Table E.1-1 attributes with action X (remove) or Z (empty) that dicognito keeps.
_REMOVE = (
    "SeriesDescription",
    "StudyDescription",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "AdditionalPatientHistory",
    "PatientComments",
    "ImageComments",
    "RequestingPhysician",
    "OperatorsName",
    "PerformingPhysicianName",
    "ProtocolName",
)
_EMPTY = ("PatientSex",)  # action Z: present (Type 2 where exports need it) but empty
_KEY_FILE = ".deid-key"


def batch_key(out: Path, explicit: str | None = None) -> str:
    """The de-identification key of a batch: ``explicit``, else the one kept in ``OUT/.deid-key``.

    A new random key is written there (mode 0600) on the first run, so ``--resume`` maps
    values exactly as the interrupted run did. Remove the file before sharing OUT.
    """
    if explicit:
        return explicit
    path = out / _KEY_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_hex(32)
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key


class Deidentifier:
    """Keyed, consistent de-identification of headers, UIDs and analysis results.

    Args:
        key: The batch's secret; equal keys give equal pseudonyms.
    """

    def __init__(self, key: str) -> None:
        from dicognito.anonymizer import Anonymizer

        self._anonymizer = Anonymizer(seed=key)
        self.method = METHOD.format(version=version("dicognito"))

    def dataset(self, ds: Dataset) -> Dataset:
        """De-identify a copy of ``ds`` (header attributes; pixel data untouched)."""
        out = copy.deepcopy(ds)
        if not hasattr(out, "file_meta"):
            out.file_meta = FileMetaDataset()
        self._anonymizer.anonymize(out)
        for keyword in _REMOVE:
            if keyword in out:
                delattr(out, keyword)
        for keyword in _EMPTY:
            setattr(out, keyword, "")
        self.mark(out)
        return out

    def mark(self, ds: Dataset) -> None:
        """Set PatientIdentityRemoved and the de-identification method attributes on ``ds``."""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = self.method[:64]
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator = "113100", "DCM"
        item.CodeMeaning = "Basic Application Confidentiality Profile"
        ds.DeidentificationMethodCodeSequence = [item]

    def uid(self, uid: str) -> str:
        """The pseudonym UID of ``uid`` (consistent for the key; empty stays empty)."""
        if not uid:
            return uid
        probe = Dataset()
        probe.file_meta = FileMetaDataset()
        probe.SeriesInstanceUID = uid
        self._anonymizer.anonymize(probe)
        return str(probe.SeriesInstanceUID)

    def series_info(self, info: SeriesInfo) -> SeriesInfo:
        """``info`` with its UIDs replaced, identifying text removed and source paths left out."""
        accession = ""
        if info.accession_number:
            probe = Dataset()
            probe.file_meta = FileMetaDataset()
            probe.AccessionNumber = info.accession_number
            self._anonymizer.anonymize(probe)
            accession = str(probe.AccessionNumber)
        return dataclasses.replace(
            info,
            series_uid=self.uid(info.series_uid),
            study_uid=self.uid(info.study_uid),
            frame_of_reference_uid=self.uid(info.frame_of_reference_uid),
            slice_sop_uids=tuple(self.uid(u) for u in info.slice_sop_uids),
            series_description="",
            patient_age_years=None,
            patient_sex="",
            accession_number=accession,
            source_files=(),
        )

    def result(self, result: AnalysisResult) -> AnalysisResult:
        """A copy of ``result`` whose series identity is de-identified."""
        return dataclasses.replace(result, series=self.series_info(result.series))
