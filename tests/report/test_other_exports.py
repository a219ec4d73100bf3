"""JSON (+ schema), FHIR R4, NIfTI and HTML exports; stages that did not run stay absent."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fhir.resources.R4B.bundle import Bundle

from medmm.errors import ExportError
from medmm.io.nifti import read_nifti
from medmm.report import export_result, load_result, validate_result
from medmm.report.fhir import build_fhir_bundle
from medmm.report.html import render_html
from medmm.types import RESULT_SCHEMA_VERSION
from tests.conftest import REPO_ROOT
from tests.report.conftest import Exported


def test_result_json_validates_and_reads_back(exported: Exported) -> None:
    data = json.loads((exported.folder / "result.json").read_text())
    assert data["schema_version"] == RESULT_SCHEMA_VERSION
    validate_result(data)
    back = load_result(exported.folder / "result.json")
    assert json.loads(json.dumps(back.to_dict())) == json.loads(json.dumps(exported.result.to_dict()))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("nodules", 0, "probability"), 1.5, "greater than the maximum of 1"),
        (("nodules", 0, "texture"), "glassy", "is not one of"),
        (("schema_version",), "2.0", "does not match"),
        (("shape",), [1, 2], "is too short"),
    ],
)
def test_schema_rejects_bad_results(exported: Exported, path: tuple, value: object, message: str) -> None:
    data = json.loads((exported.folder / "result.json").read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ExportError, match=message):
        validate_result(data)


def test_fhir_bundle_validates_with_r4b_models(exported: Exported) -> None:
    bundle = Bundle.model_validate_json((exported.folder / "fhir.json").read_text())
    resources = [e.resource for e in bundle.entry]
    kinds = [r.__resource_type__ for r in resources]
    nodules = exported.result.nodules or ()
    assert kinds.count("Observation") == len(nodules)
    assert {"DiagnosticReport", "ImagingStudy", "Patient", "Device"} <= set(kinds)
    urls = {e.fullUrl for e in bundle.entry}
    text = (exported.folder / "fhir.json").read_text()
    for ref in re.findall(r'"reference": "([^"]+)"', text):
        assert ref in urls, f"dangling reference {ref}"
    observations = [r for r in resources if r.__resource_type__ == "Observation"]
    for nodule, obs in zip(nodules, observations, strict=True):
        assert obs.status == "preliminary"
        assert obs.code.coding[0].code == "27925004"
        diameter = next(c for c in obs.component if c.code.coding[0].code == "81827009")
        assert float(diameter.valueQuantity.value) == pytest.approx(nodule.diameter_mm)
        assert diameter.valueQuantity.system == "http://unitsofmeasure.org"
        centre = next(c for c in obs.component if c.code.coding[0].code == "111010")
        assert np.allclose([float(v) for v in centre.valueString.split()], nodule.center_lps_mm, atol=0.01)
    study = next(r for r in resources if r.__resource_type__ == "ImagingStudy")
    assert study.series[0].uid == exported.result.series.series_uid


def test_nifti_maps_share_the_ct_geometry(exported: Exported) -> None:
    ct = nib.load(exported.folder / "ct.nii.gz")
    for name in ("lungs", "lobes", "nodules"):
        img = nib.load(exported.folder / f"{name}.nii.gz")
        assert img.shape == ct.shape
        assert np.allclose(img.affine, ct.affine)
        assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    assert np.allclose(read_nifti(exported.folder / "ct.nii.gz").affine, exported.volume.affine)
    # RAS world of nodule n's centre falls on label n in nodules.nii.gz.
    labels = np.asarray(nib.load(exported.folder / "nodules.nii.gz").dataobj)
    inverse = np.linalg.inv(ct.affine)
    for n, nodule in enumerate(exported.result.nodules or (), start=1):
        x, y, z = nodule.center_lps_mm
        ijk = np.rint(inverse @ [-x, -y, z, 1.0])[:3].astype(int)
        window = labels[ijk[0] - 1 : ijk[0] + 2, ijk[1] - 1 : ijk[1] + 2, ijk[2] - 1 : ijk[2] + 2]
        assert (window == n).any()


def test_html_is_self_contained_and_escapes_header_text(exported: Exported) -> None:
    html = (exported.folder / "report.html").read_text()
    g = exported.result.guidelines
    assert g is not None and f"Lung-RADS v2022: {g.lung_rads}</b>" in html
    assert html.count("Assumed, not measured") == 1 and all(a in html for a in g.assumptions if "'" not in a)
    assert "<table id='nodules'>" in html
    assert html.count("<tr class='nodule'>") == len(exported.result.nodules or ())
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html), "the report must not load anything"
    hostile = dataclasses.replace(
        exported.result,
        series=dataclasses.replace(exported.result.series, series_description="<script>alert(1)</script>"),
    )
    page = render_html(hostile)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_html_renders_in_headless_chromium(exported: Exported, tmp_path: Path) -> None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed; .ci/run installs it")
    url = (exported.folder / "report.html").resolve().as_uri()
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1700"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count('class="nodule"') == len(exported.result.nodules or ())
    assert "Diameter (mm)" in dom
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a rendered page, not a blank one
    # docs/images/html_report.png is the same screenshot, drawn by docs/make_figures.py.
    assert (REPO_ROOT / "docs" / "images" / "html_report.png").exists()


def test_exports_leave_out_stages_that_did_not_run(exported: Exported, tmp_path: Path) -> None:
    anatomy_only = dataclasses.replace(
        exported.result,
        stages=("anatomy",),
        nodules=None,
        candidates=None,
        nodule_threshold=None,
        detector=None,
        guidelines=None,
        differential=None,
        maps=dataclasses.replace(exported.result.maps, nodules=None),
    )
    rep = export_result(anatomy_only, tmp_path / "s", volume=exported.volume)
    assert rep.ok, rep.failed
    assert "sr" in rep.skipped and "seg" in rep.skipped
    assert not (tmp_path / "s" / "sr.dcm").exists() and not (tmp_path / "s" / "nodules.nii.gz").exists()
    data = json.loads((tmp_path / "s" / "result.json").read_text())
    assert "nodules" not in data and "detector" not in data
    html = (tmp_path / "s" / "report.html").read_text()
    assert "id='nodules'" not in html and "nodule detection" in html  # listed as not in this result
    assert "id='guidelines'" not in html and "Lung-RADS" not in data.get("guidelines", "")
    bundle = build_fhir_bundle(anatomy_only)
    assert [e.resource.__resource_type__ for e in bundle.entry].count("Observation") == 0
    assert "did not run" in bundle.entry[0].resource.conclusion
    assert "id='differential'" not in html and "differential diagnosis" in html
    assert "differential" not in data and not bundle.entry[0].resource.conclusionCode


def test_differential_in_json_html_and_fhir(exported: Exported) -> None:
    diff = exported.result.differential
    assert diff is not None and "reasoning" in exported.result.stages
    data = json.loads((exported.folder / "result.json").read_text())
    assert [d["label"] for d in data["differential"]["diagnoses"]] == [d.label for d in diff.diagnoses]
    assert load_result(exported.folder / "result.json").differential == diff  # round trip, evidence included
    assert diff.reported_diagnoses  # the metastases report states its impression; shown, not used
    html = (exported.folder / "report.html").read_text()
    assert "id='differential'" in html and diff.diagnoses[0].label in html
    report = build_fhir_bundle(exported.result).entry[0].resource
    assert diff.diagnoses[0].label in report.conclusion
    coded = {c.code for cc in (report.conclusionCode or []) for c in (cc.coding or [])}
    top = diff.diagnoses[0]
    if top.probability >= 0.25 and top.code.startswith("SNOMED CT:"):
        assert top.code.split(":")[1] in coded
