"""Fuzz the text-format readers: LUNA16 CSV, prediction CSV, LIDC XML, report text, Turtle.

Property (as for DICOM): the only exceptions that escape are MedmmError subclasses whose
message names the file; no input takes longer than the time bound or allocates beyond
the memory bound.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medmm.evaluate.readers import read_prediction_csv
from medmm.io.lidc import read_lidc_xml
from medmm.io.luna16 import read_luna16_csv
from medmm.reason.ontology import load_ontology
from medmm.text.clean import prepare_report_text
from medmm.text.mentions import extract_mentions
from tests.fuzz.conftest import (
    BUDGETS,
    DEFAULT_EXAMPLES,
    Tally,
    bounded,
    fuzz_settings,
    only_medmm_errors,
    run_fuzz,
)

cells = st.one_of(
    st.sampled_from(["1.5", "-120.25", "NaN", "inf", "-1", "0", "", "1e400", "1.2.840.1", " 3 ", '"5"']),
    st.text(max_size=20),
)
header_rows = st.sampled_from(
    [
        "seriesuid,coordX,coordY,coordZ,diameter_mm",
        "seriesuid,coordX,coordY,coordZ,probability",
        "\ufeffseriesuid,coordX,coordY,coordZ,probability",
        "seriesuid,coordX,coordY",
        "",
    ]
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=7), max_size=12))
    text = draw(header_rows) + "\n" + "\n".join(",".join(r) for r in rows)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # raw damage: invalid UTF-8, NUL bytes, a cut
        data = data + draw(st.binary(max_size=16))
        data = data[: draw(st.integers(0, len(data)))]
    return data


LIDC_TAGS = ["readingSession", "unblindedReadNodule", "roi", "edgeMap", "nonNodule", "locus", "characteristics"]
LIDC_LEAVES = [
    "imageZposition",
    "imageSOP_UID",
    "inclusion",
    "xCoord",
    "yCoord",
    "noduleID",
    "nonNoduleID",
    "servicingRadiologistID",
    "malignancy",
    "subtlety",
]
leaf_text = st.one_of(
    st.sampled_from(["1", "-1", "TRUE", "FALSE", "nan", "1e999", "", "12.5", "abc", "9" * 400]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=15),
)


def _xml_escape(text: str) -> str:
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20).replace("&", "&amp;").replace("<", "&lt;")


@st.composite
def xml_nodes(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 4 or draw(st.booleans()):
        tag = draw(st.sampled_from(LIDC_LEAVES))
        return f"<{tag}>{_xml_escape(draw(leaf_text))}</{tag}>"
    tag = draw(st.sampled_from(LIDC_TAGS))
    kids = draw(st.lists(xml_nodes(depth + 1), max_size=5))
    return f"<{tag}>{''.join(kids)}</{tag}>"


@st.composite
def lidc_files(draw: st.DrawFn) -> bytes:
    body = "".join(draw(st.lists(xml_nodes(), max_size=4)))
    root = draw(st.sampled_from(["LidcReadMessage", "IdriReadMessage", "x"]))
    ns = draw(st.sampled_from(["", ' xmlns="http://www.nih.gov"']))
    data = f'<?xml version="1.0"?><{root}{ns}><readingSession>{body}</readingSession></{root}>'.encode()
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=12)) + data[cut:]
    return data


XML_BOMBS = [
    # 'Billion laughs': nested entity expansion.
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9))
    + b"]><LidcReadMessage><readingSession><noduleID>&j;</noduleID></readingSession></LidcReadMessage>",
    # External entity: must not read the file it names.
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<LidcReadMessage><readingSession><noduleID>&x;</noduleID></readingSession></LidcReadMessage>",
]


def _run_on_file(data: bytes, suffix: str, reader, tally: Tally, trace: bool = True) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory(prefix="medmm-fuzz-") as d:
        path = Path(d) / f"input{suffix}"
        path.write_bytes(data)
        with bounded(f"{suffix} input {data[:80]!r}", trace_allocations=trace):
            error = only_medmm_errors(lambda: reader(path), path)
        tally.add(type(error).__name__ if error else "read")


@pytest.mark.parametrize("budget", BUDGETS)
def test_luna16_and_prediction_csvs(budget: int) -> None:
    tally = Tally("LUNA16 annotation and prediction CSVs")

    @fuzz_settings("annotations", budget)
    @given(data=csv_files(), predictions=st.booleans())
    def check(data: bytes, predictions: bool) -> None:
        _run_on_file(data, ".csv", read_prediction_csv if predictions else read_luna16_csv, tally)

    run_fuzz(check, tally, minimum=DEFAULT_EXAMPLES["annotations"] * budget)


@pytest.mark.parametrize("budget", BUDGETS)
def test_lidc_xml(budget: int) -> None:
    tally = Tally("LIDC XML")

    @fuzz_settings("annotations", budget)
    @given(data=lidc_files())
    def check(data: bytes) -> None:
        _run_on_file(data, ".xml", read_lidc_xml, tally)

    for bomb in XML_BOMBS:
        _run_on_file(bomb, ".xml", read_lidc_xml, tally)
    run_fuzz(check, tally, minimum=DEFAULT_EXAMPLES["annotations"] * budget)


def test_xml_entities_are_refused_not_expanded(tmp_path: Path) -> None:
    for i, bomb in enumerate(XML_BOMBS):
        path = tmp_path / f"bomb{i}.xml"
        path.write_bytes(bomb)
        error = only_medmm_errors(lambda p=path: read_lidc_xml(p), path)
        assert error is not None and "entit" in str(error).lower()


report_texts = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=400),
    st.builds(
        lambda a, b, n: a + b * n,
        st.sampled_from(["There is a ", "No ", "8 mm nodule in the ", "spiculated "]),
        st.sampled_from(["nodule ", "x", "\x00", " ", "mm ", "1", "\u202e", "-", "lobe of the "]),
        st.integers(0, 3_000),  # very long lines (up to ~21,000 characters): the regexes must stay linear
    ),
)


@pytest.mark.parametrize("budget", BUDGETS)
def test_report_text_extraction(budget: int) -> None:
    tally = Tally("report text")

    @fuzz_settings("text", budget)
    @given(text=report_texts)
    def check(text: str) -> None:
        with bounded(f"report text of {len(text)} characters"):
            error = only_medmm_errors(lambda: extract_mentions(prepare_report_text(text)[0]), "report")
        tally.add(type(error).__name__ if error else "extracted")

    run_fuzz(check, tally, minimum=DEFAULT_EXAMPLES["text"] * budget)


VALID_EXTENSION = (
    "@prefix mm: <urn:medmm:> .\n@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
    "@prefix dcterms: <http://purl.org/dc/terms/> .\n"
    'mm:x a skos:Concept ; skos:inScheme mm:scheme ; skos:prefLabel "site finding"@en ;\n'
    '  skos:altLabel "local finding"@en ; skos:broader mm:finding .\n'
)
turtle_tokens = st.sampled_from(
    ["<", ">", '"', "'''", "@prefix", "a", ";", ",", ".", "[", "]", "(", ")", "mm:", "^^", "@en", "\\u0000", "_:b", "#"]
)


@st.composite
def turtle_files(draw: st.DrawFn) -> bytes:
    text = VALID_EXTENSION
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(turtle_tokens | st.text(max_size=6)) + text[at:]
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))] + draw(st.binary(max_size=8))
    return data


@pytest.mark.parametrize("budget", BUDGETS)
def test_ontology_extension_turtle(budget: int) -> None:
    tally = Tally("ontology extension Turtle")

    @fuzz_settings("ontology", budget)
    @given(data=turtle_files())
    def check(data: bytes) -> None:
        _run_on_file(data, ".ttl", lambda p: load_ontology(extra=[p]), tally, trace=False)

    run_fuzz(check, tally, minimum=DEFAULT_EXAMPLES["ontology"] * budget)
