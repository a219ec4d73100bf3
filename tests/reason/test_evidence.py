"""Evidence links in the ontology, what a study is observed to show, and the ontology-only ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medmm.errors import OntologyError
from medmm.reason.evidence import DIFFERENTIAL, evidence_links, observe, ontology_log_odds
from medmm.reason.inputs import NoduleObservation, ReasoningInputs
from medmm.reason.ontology import load_ontology
from medmm.types import ReportFinding

PREFIXES = (
    "@prefix mm: <urn:medmm:> . @prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
    "@prefix dcterms: <http://purl.org/dc/terms/> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
    '<urn:site:src> rdfs:label "local teaching file"@en .\n'
)


def nodule(lobe: str, d: float, tex: str = "solid", calc: float = 0.02, **kw) -> NoduleObservation:
    probs = {"solid": (0.9, 0.07, 0.03), "part_solid": (0.1, 0.85, 0.05), "ground_glass": (0.05, 0.1, 0.85)}[tex]
    return NoduleObservation(lobe, d, 0.9, probs, calc, kw.get("jp", False), kw.get("pf", False), kw.get("brock"))


def finding(concept: str, *, negated: bool = False, site: str = "") -> ReportFinding:
    onto = load_ontology()
    c = onto.concept(concept)
    return ReportFinding(c.iri, c.pref_label, "", c.pref_label, 0, 1, "FINDINGS", site, None, negated, False, False)


def ranked(inputs: ReasoningInputs) -> list[str]:
    onto = load_ontology()
    scores = ontology_log_odds(observe(inputs, onto), evidence_links(onto), DIFFERENTIAL, onto)
    return [DIFFERENTIAL[k].rsplit(":", 1)[-1] for k in np.argsort(-scores, kind="stable")]


def test_every_link_is_typed_weighted_and_sourced() -> None:
    onto = load_ontology(validate=True)
    table = evidence_links(onto)
    assert len(table) >= 40
    for link in table.links:
        assert onto.is_a(link.diagnosis, "urn:medmm:diagnosis")
        assert -6 <= link.log_lr <= 6 and link.log_lr != 0
        assert link.basis in {"published", "derived", "assigned"}
        assert len(link.source) > 20  # a citation, not a placeholder
        if link.basis != "assigned":
            assert link.comment, f"{link.evidence} -> {link.diagnosis}: say how the number was read"
    for dx in DIFFERENTIAL:
        assert any(link.diagnosis == dx and link.log_lr > 0 for link in table.links), f"nothing supports {dx}"
    # Published figures carried over exactly: Gurney 1993 LR 5.54 (spiculation), Brock upper lobe 0.6581.
    assert table.weight("urn:medmm:spiculated-margin", DIFFERENTIAL[0]) == pytest.approx(np.log(5.54), abs=1e-3)
    assert table.weight("urn:medmm:nodule-upper-lobe", DIFFERENTIAL[0]) == pytest.approx(0.6581, abs=1e-3)


def test_descriptor_labels_never_capture_report_words() -> None:
    from medmm.text.mentions import extract_mentions

    text = "FINDINGS: Multiple pulmonary nodules in both lungs. A solitary pulmonary nodule, no pulmonary nodule."
    concepts = {m.concept for m in extract_mentions(text)}
    assert not any("count" in c or "distribution" in c for c in concepts)
    assert "urn:medmm:pulmonary-nodule" in concepts


def test_extension_adds_a_link_and_a_bad_link_names_its_line(tmp_path: Path) -> None:
    good = tmp_path / "site.ttl"
    good.write_text(
        PREFIXES + "mm:ev-site a mm:EvidenceLink ; mm:evidence mm:cavitation ; mm:supports mm:lung-metastasis ;\n"
        '  mm:logLikelihoodRatio 0.7 ; mm:weightBasis "assigned" ; dcterms:source <urn:site:src> .\n'
    )
    merged = load_ontology(extra=[good], validate=True)
    assert evidence_links(merged).weight("urn:medmm:cavitation", "urn:medmm:lung-metastasis") == pytest.approx(0.7)
    assert evidence_links().weight("urn:medmm:cavitation", "urn:medmm:lung-metastasis") == 0.0
    bad = tmp_path / "bad.ttl"
    bad.write_text(
        PREFIXES + "\n\nmm:ev-bad a mm:EvidenceLink ; mm:evidence mm:cavitation ; mm:supports mm:emphysema ;\n"
        '  mm:logLikelihoodRatio 0.7 ; mm:weightBasis "assigned" ; dcterms:source <urn:site:src> .\n'
    )
    with pytest.raises(OntologyError, match=r"not a diagnosis.*line 6") as info:
        evidence_links(load_ontology(extra=[bad]))
    assert info.value.path == bad
    heavy = tmp_path / "heavy.ttl"
    heavy.write_text(
        PREFIXES + "mm:ev-heavy a mm:EvidenceLink ; mm:evidence mm:cavitation ; mm:supports mm:granuloma ;\n"
        '  mm:logLikelihoodRatio 9.0 ; mm:weightBasis "guessed" ; dcterms:source <urn:site:src> .\n'
    )
    with pytest.raises(OntologyError, match="does not conform"):
        load_ontology(extra=[heavy], validate=True)
    with pytest.raises(OntologyError, match="outside"):
        evidence_links(load_ontology(extra=[heavy]))


def test_observations_of_a_metastatic_pattern() -> None:
    inputs = ReasoningInputs(
        (nodule("RLL", 12.0, jp=True), nodule("LLL", 8.0), nodule("LLL", 6.0), nodule("RUL", 5.0)),
        (
            finding("smooth-margin"),
            finding("pleural-effusion", negated=True),
            finding("lung-metastasis"),  # the impression's diagnosis is not evidence
        ),
        has_report=True,
    )
    obs = {(o.concept.rsplit(":", 1)[-1], o.source) for o in observe(inputs)}
    assert {
        ("nodule-count-three-or-more", "image"),
        ("nodules-bilateral", "image"),
        ("nodules-lower-lobe-predominant", "image"),
        ("juxtapleural-nodule", "image"),
        ("nodule-diameter-11-to-20mm", "image"),
        ("nodule-lower-lobe", "image"),
        ("solid-nodule", "image"),
        ("smooth-margin", "report"),
    } <= obs
    assert not any(c in {"pleural-effusion", "lung-metastasis"} for c, _ in obs)
    assert ranked(inputs)[0] == "lung-metastasis"


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        (ReasoningInputs((nodule("RUL", 24.0, brock=0.3),), (finding("spiculated-margin"),)), "primary-lung-cancer"),
        (ReasoningInputs((nodule("LUL", 14.0, "part_solid", brock=0.08),), ()), "lung-adenocarcinoma"),
        (ReasoningInputs(tuple(nodule(lb, 5.0, calc=0.95) for lb in ("RUL", "LLL")), ()), "granuloma"),
        (ReasoningInputs((nodule("RLL", 18.0, calc=0.9),), (finding("popcorn-calcification"),)), "pulmonary-hamartoma"),
        (ReasoningInputs((nodule("RLL", 5.5, pf=True, brock=0.01),), ()), "intrapulmonary-lymph-node"),
        (ReasoningInputs((nodule("RML", 6.0, brock=0.02),), ()), "indeterminate-nodule"),
        (ReasoningInputs((), ()), "no-abnormality"),
    ],
)
def test_ontology_ranks_textbook_pictures_first(inputs: ReasoningInputs, expected: str) -> None:
    assert ranked(inputs)[0] == expected


def test_brock_band_is_guideline_evidence() -> None:
    high = observe(ReasoningInputs((nodule("RUL", 20.0, brock=0.25),), ()))
    low = observe(ReasoningInputs((nodule("RUL", 20.0, brock=0.05),), ()))
    assert ("urn:medmm:brock-risk-high", "guideline") in {(o.concept, o.source) for o in high}
    assert ("urn:medmm:brock-risk-low", "guideline") in {(o.concept, o.source) for o in low}
    assert "Brock 25.0 %" in next(o.detail for o in high if o.source == "guideline")


def test_cli_merges_a_site_ontology_and_refuses_a_broken_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medmm.cli import main

    site = tmp_path / "site.ttl"
    site.write_text(
        PREFIXES + "mm:tree-in-bud a skos:Concept ; skos:inScheme mm:scheme ; skos:broader mm:finding ;\n"
        '  skos:prefLabel "tree-in-bud opacity"@en ; skos:altLabel "tree in bud"@en .\n'
    )
    report = tmp_path / "r.txt"
    report.write_text("FINDINGS: Tree in bud opacities in the right lower lobe.\n")
    assert main(["findings", str(report), "--ontology", str(site)]) == 0
    assert '"concept": "urn:medmm:tree-in-bud"' in capsys.readouterr().out
    assert main(["findings", str(report)]) == 0
    assert "tree-in-bud" not in capsys.readouterr().out
    broken = tmp_path / "broken.ttl"
    broken.write_text(PREFIXES + 'mm:x a skos:Concept ; skos:prefLabel "x"@en ;\n  skos:altLabel "unterminated .\n')
    assert main(["findings", str(report), "--ontology", str(broken)]) == 2
    assert "broken.ttl" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "out"), "--ontology", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "broken.ttl" in err and "line" in err
