"""DICOM SR (TID 1500) and SEG: validated by tools medmm did not write, and read back."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from medmm.report import codes as mc
from medmm.report.read_back import read_seg, read_sr
from medmm.report.seg import build_seg
from medmm.report.sources import read_source_headers
from medmm.report.sr import build_sr
from tests.report.conftest import Exported, dciodvfy_errors


def test_sr_and_seg_have_no_dciodvfy_errors(exported: Exported, tmp_path) -> None:
    assert dciodvfy_errors(exported.folder / "sr.dcm") == []
    assert dciodvfy_errors(exported.folder / "seg.dcm") == []
    # The other variants the exporter can write: SR without a SEG, SEG of nodules only.
    headers = read_source_headers(exported.result)
    build_sr(exported.result, headers).save_as(tmp_path / "sr_alone.dcm", enforce_file_format=True)
    seg = build_seg(exported.result, exported.volume.affine, headers)
    assert seg is not None
    seg.save_as(tmp_path / "seg_nodules.dcm", enforce_file_format=True)
    assert dciodvfy_errors(tmp_path / "sr_alone.dcm") == []
    assert dciodvfy_errors(tmp_path / "seg_nodules.dcm") == []


def test_dsrdump_parses_the_sr(exported: Exported) -> None:
    exe = shutil.which("dsrdump")
    if exe is None:
        pytest.skip("dsrdump (Debian dcmtk) is not installed; .ci/run installs it")
    proc = subprocess.run([exe, str(exported.folder / "sr.dcm")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Imaging Measurement Report" in proc.stdout
    for n in range(1, len(exported.result.nodules or ()) + 1):
        assert f'"Nodule {n}"' in proc.stdout
    assert "(27925004,SCT," in proc.stdout  # finding type: Nodule


def test_sr_round_trip_recovers_every_nodule(exported: Exported) -> None:
    nodules = exported.result.nodules
    assert nodules
    groups = read_sr(exported.folder / "sr.dcm")
    assert len(groups) == len(nodules)
    seg = pydicom.dcmread(exported.folder / "seg.dcm")
    seg_tracking = {str(s.TrackingUID): int(s.SegmentNumber) for s in seg.SegmentSequence if "TrackingUID" in s}
    for n, (nodule, group) in enumerate(zip(nodules, groups, strict=True), start=1):
        assert np.allclose(group.center_lps_mm, nodule.center_lps_mm, atol=0.01)
        assert group.measurements["Diameter"] == (pytest.approx(nodule.diameter_mm, abs=1e-6), "mm")
        assert group.measurements["Volume"] == (pytest.approx(nodule.volume_mm3, abs=1e-6), "mm3")
        assert group.measurements["Probability"][0] == pytest.approx(nodule.probability, abs=1e-6)
        assert group.finding == (mc.NODULE.value, "SCT")
        site = mc.lobe_code(nodule.lobe)
        assert group.finding_site == ((site.value, site.scheme) if site else None)
        tex = mc.texture_code(nodule.texture)
        assert group.evaluations[mc.TEXTURE_NAME.meaning] == (tex.value, tex.scheme)
        calc = mc.CALCIFIED if nodule.calcification == "calcified" else mc.NOT_CALCIFIED
        assert group.evaluations[mc.CALCIFICATION_NAME.meaning] == (calc.value, calc.scheme)
        # The SR group and the SEG segment of the same nodule share the tracking UID.
        assert group.tracking_id == f"Nodule {n}"
        assert seg_tracking[group.tracking_uid] == n
    # The SR lists the SEG and every source CT instance as evidence.
    sr = pydicom.dcmread(exported.folder / "sr.dcm")
    referenced = {
        str(i.ReferencedSOPInstanceUID)
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for i in series.ReferencedSOPSequence
    }
    assert str(seg.SOPInstanceUID) in referenced
    assert set(exported.volume.info.slice_sop_uids) <= referenced


def test_seg_masks_equal_the_written_masks(exported: Exported) -> None:
    maps = exported.result.maps
    assert maps is not None and maps.nodules is not None
    masks, segments = read_seg(exported.folder / "seg.dcm", exported.volume.affine, exported.volume.shape)
    n_nod = len(exported.result.nodules or ())
    assert [s.label for s in segments] == [f"Nodule {i}" for i in range(1, n_nod + 1)] + [
        "RUL",
        "RML",
        "RLL",
        "LUL",
        "LLL",
    ]
    for s in range(n_nod):
        assert segments[s].property_type == (mc.NODULE.value, "SCT")
        assert masks[..., s].any()
        assert np.array_equal(masks[..., s], maps.nodules == s + 1)
    for k in range(5):
        assert np.array_equal(masks[..., n_nod + k], maps.lobes == k + 1)
    seg = pydicom.dcmread(exported.folder / "seg.dcm")
    assert str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID) == exported.result.series.series_uid
    assert str(seg.FrameOfReferenceUID) == exported.result.series.frame_of_reference_uid


def test_export_uids_are_stable_and_valid(exported: Exported) -> None:
    headers = read_source_headers(exported.result)
    a = build_sr(exported.result, headers)
    b = build_sr(exported.result, headers)
    assert a.SOPInstanceUID == b.SOPInstanceUID
    s1, s2 = (build_seg(exported.result, exported.volume.affine, headers) for _ in range(2))
    assert s1 is not None and s2 is not None
    assert (
        s1.DimensionOrganizationSequence[0].DimensionOrganizationUID
        == s2.DimensionOrganizationSequence[0].DimensionOrganizationUID
    )
    for uid in (a.SOPInstanceUID, a.SeriesInstanceUID):
        assert uid.startswith("2.25.") and len(uid) <= 64 and uid.is_valid


def test_a_study_without_nodules_exports_every_format(exported: Exported, tmp_path) -> None:
    """TID 1500 needs one measurement group: a study with no detection says "Nodule: Absent"."""
    from dataclasses import replace

    from medmm.report import export_result, series_folder

    empty = replace(exported.result, nodules=(), report=None, differential=None)
    report = export_result(empty, series_folder(tmp_path, empty), volume=exported.volume)
    assert report.ok, report.failed
    sr_path = report.folder / "sr.dcm"
    assert read_sr(sr_path) == []  # no volumetric group: no nodule made up
    raw = sr_path.read_bytes()
    assert b"No nodule detected" in raw and b"272519000" in raw  # SCT Absent
    assert dciodvfy_errors(sr_path) == []
