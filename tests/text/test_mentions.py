"""Mention extraction: against the synthetic reports' ground truth, and `medmm findings`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medmm.cli import main
from medmm.reason.ontology import load_ontology
from medmm.synth.cases import generate_case
from medmm.synth.dataset import case_report
from medmm.text import extract_mentions
from tests.conftest import REPO_ROOT


def test_sentences_sections_sizes_and_context() -> None:
    text = "FINDINGS: A 1.6 cm nodule in the left upper lobe. No pleural effusion.\n\nIMPRESSION: Possible mass."
    found = [(m.label, m.section, m.site, m.size_mm, m.negated, m.uncertain) for m in extract_mentions(text)]
    assert found == [
        ("pulmonary nodule", "FINDINGS", "LUL", 16.0, False, False),
        ("pleural effusion", "FINDINGS", "", None, True, False),
        ("mass", "IMPRESSION", "", None, False, True),
    ]
    assert extract_mentions("") == [] and extract_mentions("\x00\x01 ###") == []


def test_a_size_is_read_from_where_its_number_starts() -> None:
    """``.5 cm`` is 5 mm (not ``5 cm``); the end of a digit run is not a size of its own."""
    found = [(m.label, m.size_mm) for m in extract_mentions("A .5 cm nodule. Nodule 12345678 x 3 mm. Mass 4.25 cm.")]
    assert found == [("pulmonary nodule", 5.0), ("pulmonary nodule", 12345678.0), ("mass", 42.5)]


def test_site_headings_and_multi_dimension_sizes() -> None:
    """A lobe heading sites its sentence (and opens no section); ``8 x 7 mm`` is 8 mm; a side is a site."""
    text = (
        "FINDINGS:\nRML: well-circumscribed nodular opacity measuring 8 x 7 mm.\n"
        "LUL: nodule measuring 1.1 x 0.9 cm. A 12 x 9 x 8 mm mass in the right lower lobe.\n"
        "Pleura: Small left effusion. No right pneumothorax."
    )
    found = [(m.label, m.section, m.site, m.size_mm) for m in extract_mentions(text)]
    assert found == [
        ("pulmonary nodule", "FINDINGS", "RML", 8.0),
        ("pulmonary nodule", "FINDINGS", "LUL", 11.0),
        ("mass", "FINDINGS", "RLL", 12.0),
        ("pleural effusion", "FINDINGS", "left", None),
        ("pneumothorax", "FINDINGS", "right", None),
    ]


def _score(cases: list[tuple[str, list[dict]]]) -> tuple[float, float]:
    onto = load_ontology()
    tp = fp = fn = negation_right = 0
    for text, truth in cases:
        pred = [m for m in extract_mentions(text) if onto.is_a(m.concept, "urn:medmm:finding")]
        used: set[int] = set()
        for g in truth:
            gi = onto.lookup(g["concept"]).iri  # type: ignore[union-attr]
            k = next(
                (
                    k
                    for k, p in enumerate(pred)
                    if k not in used
                    and p.start < g["end"]
                    and p.end > g["start"]
                    and (p.concept == gi or onto.is_a(gi, p.concept) or onto.is_a(p.concept, gi))
                ),
                None,
            )
            if k is None:
                fn += 1
                continue
            used.add(k)
            tp += 1
            negation_right += pred[k].negated == g["negated"]
        fp += len(pred) - len(used)
    return 2 * tp / (2 * tp + fp + fn), negation_right / max(tp, 1)


@pytest.mark.slow
def test_mention_f1_on_synthetic_reports() -> None:
    """Ground-truth mentions of 60 generated reports (seeds 5000-5059); target F1 >= 0.95."""
    cases = []
    for seed in range(5000, 5060):
        case = generate_case(seed, matrix=64, slice_thickness_mm=5.0)
        report = case_report(case, seed, disagree_rate=0.15)  # exactly what `medmm synth` writes
        truth = [{"concept": m.concept, "start": m.start, "end": m.end, "negated": m.negated} for m in report.mentions]
        cases.append((report.text, truth))
    f1, negation = _score(cases)
    print(f"synthetic reports: mention F1 {f1:.3f}, negation right on matched mentions {negation:.3f}")
    assert f1 >= 0.95 and negation >= 0.97


def test_cli_findings_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report = REPO_ROOT / "sample_dicom" / "case_metastases" / "report.txt"
    assert main(["findings", str(report)]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["label"] for r in rows} >= {"pulmonary nodule", "pleural effusion", "pneumothorax"}
    assert all(
        {"id", "concept", "label", "code", "negated", "uncertain", "site", "size_mm", "span"} <= set(r) for r in rows
    )
    text = report.read_text()
    assert all(text[r["span"][0] : r["span"][1]] == r["text"] for r in rows)
    many = tmp_path / "reports.csv"
    many.write_text('id,text\nA,"No nodule."\nB,"A 5 mm nodule in the right lower lobe."\n')
    assert main(["findings", str(many), "--csv"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["negated"], r["site"]) for r in rows] == [("A", True, ""), ("B", False, "RLL")]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\n1,x\n")
    assert main(["findings", str(bad), "--csv"]) == 2
