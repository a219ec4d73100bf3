"""The shipped ontology: SHACL conformance, codes, normalization of synthetic and real wording."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pyshacl
import pytest
import rdflib

from medmm.errors import OntologyError
from medmm.reason.ontology import (
    ONTOLOGY_DIR,
    CodeSystem,
    MatchKind,
    label_key,
    load_ontology,
    verhoeff_valid,
)
from medmm.synth.nodules import Calcification, NodulePosition, NoduleSpec, NoduleTexture, RenderedNodule
from medmm.synth.phantom import Lobe
from medmm.synth.report_text import Disagreement, write_report

REPO = Path(__file__).resolve().parents[2]
MM = "urn:medmm:"

# Ground-truth concept names of synthetic reports (medmm.synth.report_text.Mention.concept).
SYNTH_CONCEPTS = {
    "solid nodule": "solid-nodule",
    "ground-glass nodule": "non-solid-nodule",
    "part-solid nodule": "part-solid-nodule",
    "calcified nodule": "calcified-nodule",
    "mass": "mass",
    "emphysema": "emphysema",
    "pleural effusion": "pleural-effusion",
    "pneumothorax": "pneumothorax",
    "consolidation": "consolidation",
    "lymphadenopathy": "lymphadenopathy",
}
SITES = {
    "RUL": "right-upper-lobe",
    "RML": "right-middle-lobe",
    "RLL": "right-lower-lobe",
    "LUL": "left-upper-lobe",
    "LLL": "left-lower-lobe",
}
SIDES = {"right": "right lung", "left": "left lung", "bilateral": "both lungs"}
SIDE_CONCEPTS = {"right": "right-lung", "left": "left-lung", "bilateral": "lungs"}


@pytest.fixture(scope="module")
def onto():
    return load_ontology()


def test_shipped_ontology_conforms_to_shapes(onto) -> None:
    shapes = rdflib.Graph().parse(ONTOLOGY_DIR / "shapes.ttl")
    conforms, _, text = pyshacl.validate(onto.graph, shacl_graph=shapes, inference="none")
    assert conforms, text
    load_ontology(validate=True)  # the library's own path too


def test_shapes_catch_a_bad_code_and_a_missing_label(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text(
        "@prefix mm: <urn:medmm:> . @prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
        "mm:x a skos:Concept ; skos:inScheme mm:scheme ;\n"
        '  mm:code [ a mm:Code ; skos:notation "R1D5"^^mm:RadLexId ] .\n'
    )
    graph = rdflib.Graph().parse(ONTOLOGY_DIR / "medmm.ttl").parse(bad)
    shapes = rdflib.Graph().parse(ONTOLOGY_DIR / "shapes.ttl")
    conforms, _, text = pyshacl.validate(graph, shacl_graph=shapes, inference="none")
    assert not conforms
    assert "prefLabel" in text
    assert "notation" in text
    assert "source" in text


def test_codes_are_well_formed_sourced_and_unique(onto) -> None:
    patterns = {
        CodeSystem.RADLEX: r"RID\d+",
        CodeSystem.SNOMED_CT: r"[1-9]\d{5,17}",
        CodeSystem.ICD10CM: r"[A-Z]\d{2}(\.[0-9A-Z]{1,4})?",
        CodeSystem.DCM: r"\d+",
    }
    rows = onto.codes()
    assert len(rows) >= 40
    for system, code, _ in rows:
        assert re.fullmatch(patterns[system], code), (system, code)
        if system is CodeSystem.SNOMED_CT:
            assert verhoeff_valid(code), code
    keys = [(system, code) for system, code, _ in rows]
    assert len(keys) == len(set(keys)), "a code is on two concepts"
    for concept in onto.concepts:
        for code in concept.codes:
            assert code.source, (concept.iri, code)


def test_required_codes_present(onto) -> None:
    expected = {
        "pulmonary-nodule": ("RID50149", "27925004"),
        "solid-nodule": ("RID5741",),
        "part-solid-nodule": ("RID46011",),
        "non-solid-nodule": ("RID46016",),
        "ground-glass-opacity": ("112120",),
        "calcification": ("RID5196",),
        "spiculated-margin": ("RID5713",),
        "right-upper-lobe": ("RID1303",),
        "right-middle-lobe": ("RID1310",),
        "right-lower-lobe": ("RID1315",),
        "left-upper-lobe": ("RID1327",),
        "left-lower-lobe": ("RID1338",),
        "lingula": ("RID1333",),
        "right-lung": ("RID1302",),
        "left-lung": ("RID1326",),
        "mediastinum": ("RID1384",),
        "trachea": ("RID1247",),
        "pleura": ("RID1362",),
    }
    for name, codes in expected.items():
        have = {c.code for c in onto.concept(name).codes}
        assert set(codes) <= have, (name, have)


def test_verhoeff() -> None:
    assert verhoeff_valid("27925004")
    assert verhoeff_valid("236")  # the textbook example
    assert not verhoeff_valid("27925005")
    assert not verhoeff_valid("2792500x")


def test_label_key_folds_case_hyphens_spacing_and_spelling() -> None:
    assert label_key("Ground-glass  opacity") == label_key("ground glass opacity") == label_key("groundglass opacity")
    assert label_key("organising pneumonia") == label_key("Organizing Pneumonia")
    assert label_key("the right upper lobe") == label_key("right upper lobe")


def test_every_synthetic_diagnosis_is_a_label(onto) -> None:
    from medmm.synth.cases import DIAGNOSIS

    for label in DIAGNOSIS.values():
        hit = onto.normalize(label)
        assert hit.match is MatchKind.EXACT, label
        assert onto.is_a(hit.concept, "diagnosis"), (label, hit.label)


def _fake_nodules(rng: np.random.Generator) -> tuple[RenderedNodule, ...]:
    nodules = []
    for label in range(1, int(rng.integers(0, 5)) + 1):
        spec = NoduleSpec(
            diameter_mm=float(rng.uniform(4, 40)),
            texture=NoduleTexture(rng.choice(list(NoduleTexture))),
            calcification=Calcification(rng.choice(list(Calcification))),
            spiculation=float(rng.uniform(0, 1)),
            lobulation=float(rng.uniform(0, 1)),
            position=NodulePosition(rng.choice(list(NodulePosition))),
        )
        lobe = Lobe[str(rng.choice(list(SITES)))]
        nodules.append(RenderedNodule(spec, label, (0.0, 0.0, 0.0), spec.diameter_mm, 1.0, lobe, spec.diameter_mm / 2))
    return tuple(nodules)


def _synthetic_mentions() -> list[tuple[str, str, str]]:
    """(surface text, ground-truth concept, site) over generated reports and the committed samples."""
    from medmm.synth.cases import DIAGNOSIS

    out = []
    diagnoses = list(DIAGNOSIS.values())
    for seed in range(60):
        rng = np.random.default_rng(seed)
        report = write_report(
            _fake_nodules(rng),
            diagnoses[seed % len(diagnoses)],
            rng,
            emphysema=float(rng.choice([0.0, 0.3, 0.9])),
            effusion_side=str(rng.choice(["", "right", "left"])),
            disagreement=Disagreement(rng.choice(list(Disagreement))),
        )
        out += [(report.text[m.start : m.end], m.concept, m.site) for m in report.mentions]
    for truth in sorted((REPO / "sample_dicom").glob("*/ground_truth.json")):
        data = json.loads(truth.read_text())
        text = (truth.parent / "report.txt").read_text()
        out += [(text[m["start"] : m["end"]], m["concept"], m["site"]) for m in data["report"]["mentions"]]
    return out


def test_synthetic_report_mentions_map_to_their_concept(onto) -> None:
    mentions = _synthetic_mentions()
    assert len(mentions) > 300
    assert {concept for _, concept, _ in mentions} == set(SYNTH_CONCEPTS)
    exact = 0
    for surface, concept, _ in mentions:
        expected = MM + SYNTH_CONCEPTS[concept]
        hit = onto.normalize(surface)
        assert hit.concept is not None, surface
        # Generic wording ("nodule", "GGO") maps to the broader concept it names; never to a sibling.
        assert (
            hit.concept == expected
            or hit.concept in onto.ancestors(expected)
            or expected in onto.ancestors(hit.concept)
        ), (surface, concept, hit.label)
        exact += hit.concept == expected
    assert exact / len(mentions) > 0.6


def test_synthetic_report_sites_map_to_anatomy(onto) -> None:
    sites = {site for _, _, site in _synthetic_mentions() if site}
    assert set(SITES) <= sites
    for site in sites:
        if site in SITES:
            assert onto.normalize(site).concept == MM + SITES[site], site
        else:
            assert onto.normalize(SIDES[site]).concept == MM + SIDE_CONCEPTS[site], site


# Real-world phrasings (Fleischner 2017, Lung-RADS v2022, Fleischner glossary, RadLex wording).
REAL_WORLD = [
    ("subsolid nodule", "subsolid-nodule"),
    ("sub-solid nodules", "subsolid-nodule"),
    ("pure GGN", "non-solid-nodule"),
    ("pure ground-glass nodule", "non-solid-nodule"),
    ("nonsolid nodule", "non-solid-nodule"),
    ("GGN", "non-solid-nodule"),
    ("ground glass opacities", "ground-glass-opacity"),
    ("GGO", "ground-glass-opacity"),
    ("part solid nodule", "part-solid-nodule"),
    ("semisolid nodule", "part-solid-nodule"),
    ("mixed ground-glass nodule", "part-solid-nodule"),
    ("solid nodules", "solid-nodule"),
    ("pleural-based nodule", "juxtapleural-nodule"),
    ("subpleural nodule", "juxtapleural-nodule"),
    ("perifissural nodules", "perifissural-nodule"),
    ("PFN", "perifissural-nodule"),
    ("micronodules", "micronodule"),
    ("lung mass", "mass"),
    ("pulmonary masses", "mass"),
    ("left lower lobe", "left-lower-lobe"),
    ("LLL", "left-lower-lobe"),
    ("Right Upper Lobe", "right-upper-lobe"),
    ("R upper lobe", "right-upper-lobe"),
    ("the middle lobe", "right-middle-lobe"),
    ("lingula", "lingula"),
    ("lingular segment", "lingula"),
    ("lung bases", "lower-lung-zone"),
    ("upper zone", "upper-lung-zone"),
    ("mainstem bronchus", "main-bronchus"),
    ("popcorn calcification", "popcorn-calcification"),
    ("central calcification", "central-calcification"),
    ("laminated calcification", "laminated-calcification"),
    ("diffusely calcified", "diffuse-calcification"),
    ("spiculated margins", "spiculated-margin"),
    ("spiculation", "spiculated-margin"),
    ("lobulated contour", "lobulated-margin"),
    ("well-circumscribed", "smooth-margin"),
    ("cavitary lesion", "cavitation"),
    ("airspace consolidation", "consolidation"),
    ("plate-like atelectasis", "atelectasis"),
    ("pleural effusions", "pleural-effusion"),
    ("centrilobular emphysema", "centrilobular-emphysema"),
    ("mediastinal lymphadenopathy", "lymphadenopathy"),
    ("bronchogenic carcinoma", "primary-lung-cancer"),
    ("NSCLC", "primary-lung-cancer"),
    ("lung adenocarcinoma", "lung-adenocarcinoma"),
    ("small cell lung cancer", "small-cell-lung-carcinoma"),
    ("squamous cell carcinoma", "lung-squamous-cell-carcinoma"),
    ("metastases", "lung-metastasis"),
    ("pulmonary metastatic disease", "lung-metastasis"),
    ("hamartoma", "pulmonary-hamartoma"),
    ("intrapulmonary lymph nodes", "intrapulmonary-lymph-node"),
    ("granulomatous disease", "granuloma"),
    ("organising pneumonia", "organizing-pneumonia"),
    ("COP", "organizing-pneumonia"),
]


@pytest.mark.parametrize(("phrase", "name"), REAL_WORLD)
def test_real_world_phrasings(onto, phrase: str, name: str) -> None:
    hit = onto.normalize(phrase)
    assert hit.concept == MM + name, (phrase, hit.label)
    assert hit.text == phrase


def test_real_world_list_is_long_enough() -> None:
    assert len(REAL_WORLD) >= 50


def test_unknown_phrase_is_kept_with_a_warning(onto, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="medmm.reason.ontology"):
        hit = onto.normalize("zygomatic arch fracture")
    assert hit.concept is None
    assert hit.text == "zygomatic arch fracture"
    assert hit.match is MatchKind.NONE
    # Logged without the report's words by default (medmm.privacy; --log-phi shows them).
    assert "no ontology concept" in caplog.text and "withheld, 23 characters" in caplog.text
    assert "zygomatic" not in caplog.text


def test_malformed_turtle_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.ttl"
    bad.write_text('@prefix mm: <urn:medmm:> .\nmm:a mm:b mm:c .\nmm:a mm:b "unterminated .\n')
    with pytest.raises(OntologyError, match=r"line 3") as info:
        load_ontology(extra=[bad])
    assert info.value.path == bad
    assert "broken.ttl" in str(info.value)


def test_broken_code_in_extension_is_refused(tmp_path: Path) -> None:
    ext = tmp_path / "ext.ttl"
    ext.write_text(
        "@prefix mm: <urn:medmm:> . @prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
        "@prefix dcterms: <http://purl.org/dc/terms/> .\n"
        'mm:x a skos:Concept ; skos:inScheme mm:scheme ; skos:prefLabel "x finding"@en ;\n'
        '  mm:code [ a mm:Code ; skos:notation "27925005"^^mm:SctId ; dcterms:source "me" ] .\n'
    )
    with pytest.raises(OntologyError, match=r"Verhoeff.*line 4") as info:
        load_ontology(extra=[ext])
    assert info.value.path == ext


def test_duplicate_code_across_concepts_is_refused(tmp_path: Path) -> None:
    ext = tmp_path / "dup.ttl"
    ext.write_text(
        "@prefix mm: <urn:medmm:> . @prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
        "@prefix dcterms: <http://purl.org/dc/terms/> .\n"
        'mm:x a skos:Concept ; skos:inScheme mm:scheme ; skos:prefLabel "x finding"@en ;\n'
        '  mm:code [ a mm:Code ; skos:notation "RID5741"^^mm:RadLexId ; dcterms:source "me" ] .\n'
    )
    with pytest.raises(OntologyError, match="two concepts"):
        load_ontology(extra=[ext])


def test_extension_file_is_merged_and_validated(tmp_path: Path) -> None:
    ext = tmp_path / "site.ttl"
    ext.write_text(
        "@prefix mm: <urn:medmm:> . @prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
        "@prefix dcterms: <http://purl.org/dc/terms/> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        '<urn:site:src> rdfs:label "local coding manual"@en .\n'
        'mm:solid-nodule skos:altLabel "SPN solid"@en .\n'
        "mm:tree-in-bud a skos:Concept ; skos:inScheme mm:scheme ; skos:broader mm:finding ;\n"
        '  skos:prefLabel "tree-in-bud"@en ; skos:altLabel "tree in bud pattern"@en ;\n'
        '  mm:code [ a mm:Code ; skos:notation "112123"^^mm:DcmCode ; dcterms:source <urn:site:src> ] .\n'
    )
    merged = load_ontology(extra=[ext], validate=True)
    assert merged.normalize("tree in bud pattern").label == "tree-in-bud"
    assert merged.normalize("SPN solid").concept == MM + "solid-nodule"
    assert merged.concept("tree-in-bud").codes[0].code == "112123"
    assert load_ontology().normalize("tree in bud pattern").concept is None  # the shipped one is untouched


def test_duplicate_label_is_refused(tmp_path: Path) -> None:
    ext = tmp_path / "label.ttl"
    ext.write_text(
        "@prefix mm: <urn:medmm:> . @prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
        'mm:mass skos:altLabel "GGN"@en .\n'
    )
    with pytest.raises(OntologyError, match="two concepts"):
        load_ontology(extra=[ext])


def test_missing_extension_file(tmp_path: Path) -> None:
    with pytest.raises(OntologyError, match="not found"):
        load_ontology(extra=[tmp_path / "nope.ttl"])


def test_lookup_tables(onto) -> None:
    nodule = onto.concept("pulmonary-nodule")
    assert nodule.pref_label == "pulmonary nodule"
    assert onto.concept(nodule.iri) is nodule
    assert onto.is_a("non-solid-nodule", "pulmonary-nodule")
    assert onto.is_a("non-solid-nodule", "ground-glass-opacity")
    assert not onto.is_a("solid-nodule", "subsolid-nodule")
    assert onto.is_a("lingula", "left-lung")
    assert load_ontology() is onto  # parsed once
    with pytest.raises(KeyError):
        onto.concept("no-such-thing")
    partial = onto.normalize("suspicious pulmonary nodule")
    assert partial.match is MatchKind.PARTIAL
    assert partial.label == "pulmonary nodule"


def test_owl_imports_is_refused_not_fetched(tmp_path: Path) -> None:
    ext = tmp_path / "imports.ttl"
    ext.write_text(
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .\n"
        "<urn:site:onto> a owl:Ontology ;\n  owl:imports <http://example.org/remote.ttl> .\n"
    )
    with pytest.raises(OntologyError, match=r"not followed.*line 3") as info:
        load_ontology(extra=[ext])
    assert info.value.path == ext
