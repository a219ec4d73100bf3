"""Fuzz the DICOM scanner and loader with mutated headers and damaged bytes.

Property: for any mutation of a small valid CT series, ``scan`` and ``load_series`` either
succeed or raise a :class:`~medmm.errors.MedmmError` naming the file or series; nothing
else escapes, no input takes longer than the time bound, and allocation stays bounded
(an absurd Rows/Columns/NumberOfFrames is refused from the header, before any pixel
buffer exists).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag

from medmm.io import load_series, scan
from medmm.synth.dicom_writer import SeriesTemplate, write_ct_series
from medmm.types import Volume
from tests.fuzz.conftest import (
    BUDGETS,
    DEFAULT_EXAMPLES,
    Tally,
    bounded,
    fuzz_settings,
    only_medmm_errors,
    run_fuzz,
)

# Header elements the reader depends on, with the VR the standard gives them.
TARGETS = {
    "Rows": "US",
    "Columns": "US",
    "BitsAllocated": "US",
    "BitsStored": "US",
    "HighBit": "US",
    "PixelRepresentation": "US",
    "SamplesPerPixel": "US",
    "NumberOfFrames": "IS",
    "PixelSpacing": "DS",
    "SliceThickness": "DS",
    "ImagePositionPatient": "DS",
    "ImageOrientationPatient": "DS",
    "RescaleSlope": "DS",
    "RescaleIntercept": "DS",
    "PhotometricInterpretation": "CS",
    "SeriesInstanceUID": "UI",
    "SOPInstanceUID": "UI",
    "StudyInstanceUID": "UI",
    "FrameOfReferenceUID": "UI",
    "SOPClassUID": "UI",
    "Modality": "CS",
    "InstanceNumber": "IS",
    "PatientAge": "AS",
    "SpecificCharacterSet": "CS",
    "ModalityLUTSequence": "SQ",
    "PerFrameFunctionalGroupsSequence": "SQ",
    "SharedFunctionalGroupsSequence": "SQ",
}
WRONG_VRS = ["LO", "UN", "OB", "DS", "IS", "US", "UL", "SS", "FD", "CS", "UI", "ST"]

absurd_ints = st.sampled_from([0, 1, -1, 3, 7, 12, 17, 64, 255, 4095, 65535, 100_000, 2**31 - 1, 2**32 - 1])
number_texts = st.sampled_from(
    [
        "NaN",
        "nan",
        "inf",
        "-inf",
        "-1",
        "0",
        "1e308",
        "-1e-320",
        "1e9",
        "2147483648",
        "",
        " ",
        "\\",
        "1\\",
        "abc",
        "1.5",
    ]
)


@st.composite
def element_values(draw: st.DrawFn, vr: str) -> object:
    """A value of VR ``vr`` that a hostile writer might put there."""
    if vr in ("US", "UL", "SS"):
        lo, hi = {"US": (0, 65535), "UL": (0, 2**32 - 1), "SS": (-32768, 32767)}[vr]
        return draw(absurd_ints.filter(lambda v: lo <= v <= hi))
    if vr == "FD":
        return draw(st.floats(allow_nan=True, allow_infinity=True))
    if vr in ("DS", "IS"):
        parts = draw(st.lists(number_texts | st.integers(-(10**12), 10**12).map(str), min_size=1, max_size=7))
        return "\\".join(parts)
    if vr in ("OB", "UN"):
        return draw(st.binary(max_size=64))
    if vr == "UI":
        return draw(st.sampled_from(["", "1.2.3", "../../etc/passwd", "1." + "9" * 80, "1.2\x00.3", "a b"]))
    if vr == "SQ":
        return draw(nested_sequence())
    return draw(st.text(max_size=80))


@st.composite
def nested_sequence(draw: st.DrawFn) -> DicomSequence:
    """A sequence nested ``depth`` deep (the recursive-sequence case), sometimes empty items."""
    depth = draw(st.integers(0, 60))
    inner = Dataset()
    private = Tag(0x0009, 0x1001)  # unknown to pydicom: stays raw UN bytes, nothing validates them
    inner[private] = DataElement(private, "UN", (draw(number_texts) or "1").encode())
    for _ in range(depth):
        outer = Dataset()
        outer.ReferencedImageSequence = DicomSequence([inner])
        inner = outer
    return DicomSequence([inner] * draw(st.integers(0, 3)))


@st.composite
def header_mutations(draw: st.DrawFn) -> list[tuple[str, str, object]]:
    muts = []
    for keyword in draw(st.lists(st.sampled_from(sorted(TARGETS)), min_size=1, max_size=4, unique=True)):
        right = TARGETS[keyword]
        vr = right if (right == "SQ" or draw(st.booleans())) else draw(st.sampled_from(WRONG_VRS))
        muts.append((keyword, vr, draw(element_values(vr))))
    return muts


@pytest.fixture(scope="module")
def template_files() -> list[bytes]:
    """Three 16x16 CT slices (bytes), written by medmm's own writer."""
    aff = np.diag([2.0, 0.7, 0.7, 1.0])[[0, 1, 2, 3]]
    aff = np.array([[0, 0, 0.7, -5], [0, 0.7, 0, -5], [2.0, 0, 0, -2], [0, 0, 0, 1]], float)
    rng = np.random.default_rng(0)
    vol = Volume(rng.normal(-700, 50, (3, 16, 16)).astype(np.float32), aff)
    tmp = Path(tempfile.mkdtemp(prefix="medmm-fuzz-"))
    try:
        files = write_ct_series(vol, tmp, SeriesTemplate(seed=1, patient_name="FUZZ^CASE", patient_id="FZ1"))
        return [f.read_bytes() for f in files]
    finally:
        shutil.rmtree(tmp)


def _write_mutated(data: bytes, muts: list[tuple[str, str, object]], path: Path) -> bool:
    from pydicom import config

    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
    old = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for keyword, vr, value in muts:
                tag = Tag(keyword)
                if value == [] or value == "":
                    value = None if vr not in ("SQ", "OB", "UN") else value
                ds[tag] = DataElement(tag, vr, value)
            ds.save_as(path, enforce_file_format=False)
    except Exception:
        return False  # pydicom cannot encode this value at all: not an input a file can hold
    finally:
        config.settings.writing_validation_mode = old
    return True


def _read_everything(folder: Path, tally: Tally) -> None:
    found = scan(folder, workers=1)
    outcomes = ["a file skipped with its reason"] if found.skipped else []
    for series in found.series:
        error = only_medmm_errors(lambda s=series: load_series(s, workers=1), folder, series.series_uid)
        outcomes.append(f"load: {type(error).__name__}" if error else "load: ok")
    tally.add(", ".join(outcomes) or "nothing found")


@pytest.mark.parametrize("budget", BUDGETS)
def test_mutated_headers_raise_only_medmm_errors(template_files: list[bytes], budget: int) -> None:
    tally = Tally("DICOM header mutations")

    @fuzz_settings("dicom", budget)
    @given(which=st.integers(0, 2), muts=header_mutations(), all_files=st.booleans())
    def check(which: int, muts: list[tuple[str, str, object]], all_files: bool) -> None:
        with tempfile.TemporaryDirectory(prefix="medmm-fuzz-") as d:
            folder = Path(d)
            for i, data in enumerate(template_files):
                target = folder / f"CT{i}.dcm"
                if i == which or all_files:
                    assume(_write_mutated(data, muts, target))
                else:
                    target.write_bytes(data)
            with bounded(f"mutations {muts}"):
                only_medmm_errors(lambda: _read_everything(folder, tally), folder)

    run_fuzz(check, tally, minimum=DEFAULT_EXAMPLES["dicom"] * budget // 2)


@pytest.mark.parametrize("budget", BUDGETS)
def test_damaged_bytes_raise_only_medmm_errors(template_files: list[bytes], budget: int) -> None:
    tally = Tally("DICOM damaged bytes")

    @fuzz_settings("dicom", budget)
    @given(
        which=st.integers(0, 2),
        cut=st.none() | st.integers(0, 1300),
        flips=st.lists(st.tuples(st.integers(0, 1300), st.integers(0, 255)), max_size=12),
    )
    def check(which: int, cut: int | None, flips: list[tuple[int, int]]) -> None:
        data = bytearray(template_files[which])
        for pos, byte in flips:
            if pos < len(data):
                data[pos] = byte
        if cut is not None:
            data = data[:cut]
        with tempfile.TemporaryDirectory(prefix="medmm-fuzz-") as d:
            folder = Path(d)
            for i, original in enumerate(template_files):
                (folder / f"CT{i}.dcm").write_bytes(bytes(data) if i == which else original)
            with bounded(f"cut {cut}, flips {flips}"):
                only_medmm_errors(lambda: _read_everything(folder, tally), folder)

    run_fuzz(check, tally, minimum=DEFAULT_EXAMPLES["dicom"] * budget // 2)
