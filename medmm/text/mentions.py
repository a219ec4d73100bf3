"""Report text -> finding mentions: ontology concept, site, size, negation, uncertainty.

Sections (``FINDINGS:``, ``IMPRESSION:`` ...) and sentences are split first (a decimal
point such as ``1.6 cm`` does not end a sentence). In each sentence, word n-grams (longest
first) are looked up in the ontology's label and synonym table
(:meth:`~medmm.reason.ontology.Ontology.lookup`, whole labels only); a hit on a
finding or diagnosis concept is a mention, a hit on an anatomical site is the site of the
mentions in its sentence (failing that, ``bilateral`` or the nearest ``left`` / ``right``).
Each mention gets the nearest size in the sentence (``mm`` / ``cm`` -> mm; of ``8 x 7 mm``
the longest), and its ConText status
(:func:`medmm.text.context.assess`).

Example:
    >>> [(m.label, m.site, m.size_mm, m.negated) for m in extract_mentions(
    ...     "FINDINGS: A 9 mm nodule in the right upper lobe. No pleural effusion.")]
    [('pulmonary nodule', 'RUL', 9.0, False), ('pleural effusion', '', None, True)]
"""

from __future__ import annotations

import bisect
import re
from typing import TypeVar

from medmm.reason.ontology import Ontology, load_ontology
from medmm.text.context import assess, sentence_tokens
from medmm.types import ReportFinding

T = TypeVar("T")

__all__ = ["ReportMention", "extract_mentions", "split_sentences"]

_SECTION = re.compile(r"^\s*([A-Z][A-Z /&-]{2,40}):", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<!\d)[.!?](?!\d)|\n\s*\n|\n(?=\s*\d+\.\s)|\n(?=\s*[A-Z][A-Za-z ]{2,30}:)")
_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
#: ``9 mm``, ``1.4 cm``, ``.5 cm``, ``8 x 7 mm``, ``12 x 9 x 8 mm``: the unit follows the last dimension.
#: A size starts where a number starts (the look-behind): a long run of digits is read once,
#: not once per digit, which keeps this search linear on pathological text.
_SIZE = re.compile(rf"(?<![\d.])({_NUMBER}(?:\s*[x\u00d7]\s*{_NUMBER}){{0,2}})\s*(mm|cm)\b", re.IGNORECASE)
_LOBES = {
    "urn:medmm:right-upper-lobe": "RUL",
    "urn:medmm:right-middle-lobe": "RML",
    "urn:medmm:right-lower-lobe": "RLL",
    "urn:medmm:left-upper-lobe": "LUL",
    "urn:medmm:left-lower-lobe": "LLL",
    "urn:medmm:lingula": "LUL",
}
#: A heading that names a site ("RML: 8 mm nodule.") sites its sentence; it opens no section.
_SITE_HEADING = re.compile(r"^(?:[RL][UML]L|LINGULA|(?:RIGHT|LEFT) (?:UPPER|MIDDLE|LOWER) LOBE)$", re.IGNORECASE)
#: A side named outside a lobe name ("Small left effusion."): the site when no lobe is named.
_SIDE = re.compile(r"\b(left|right)\b(?!\s+(?:upper|middle|lower)\s+lobe)", re.IGNORECASE)
_MAX_WORDS = 6
_NOT_MENTIONS = frozenset({"urn:medmm:finding", "urn:medmm:no-abnormality", "urn:medmm:diagnosis"})


ReportMention = ReportFinding
"""One finding stated in a report (:class:`medmm.types.ReportFinding`; the fusion stage
fills in its attention peak and image support, which :func:`extract_mentions` leaves None)."""


def split_sentences(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, section)`` of each sentence; decimals and list numbers do not split."""
    sections = [
        (m.start(), m.group(1).strip()) for m in _SECTION.finditer(text) if not _SITE_HEADING.match(m.group(1).strip())
    ]
    out = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > start and text[start : m.start()].strip():
            out.append((start, m.end()))
        start = m.end()
    if text[start:].strip():
        out.append((start, len(text)))
    result = []
    for a, b in out:
        section = ""
        for pos, name in sections:
            if pos <= a + 1:
                section = name
        result.append((a, b, section))
    return result


def _to_mm(match: re.Match[str]) -> float:
    """A size in mm; of several dimensions (``8 x 7 mm``) the longest, as reports lead with it."""
    longest = max(float(v) for v in re.findall(_NUMBER, match.group(1)))
    return longest * (10.0 if match.group(2).lower() == "cm" else 1.0)


def _is_finding(onto: Ontology, iri: str) -> bool:
    return onto.is_a(iri, "urn:medmm:finding") or onto.is_a(iri, "urn:medmm:diagnosis")


def _nearest(items: list[tuple[int, T]], position: int) -> T:
    """The value of the item whose offset is closest to ``position`` (the first on a tie).

    ``items`` is sorted by offset (text order); a binary search keeps a sentence with
    thousands of sizes or sites linear.
    """
    i = bisect.bisect_left(items, position, key=lambda item: item[0])
    candidates = [j for j in (i - 1, i) if 0 <= j < len(items)]
    return items[min(candidates, key=lambda j: abs(items[j][0] - position))][1]


def extract_mentions(text: str, ontology: Ontology | None = None) -> list[ReportMention]:
    """All finding mentions of a report, in text order.

    Args:
        text: The report.
        ontology: Concept tables (default: the shipped ontology).

    Returns:
        Mentions; an empty list for an empty report.
    """
    onto = ontology or load_ontology()
    mentions: list[ReportMention] = []
    for s_start, s_end, section in split_sentences(text):
        sentence = text[s_start:s_end]
        header = _SECTION.match(sentence)
        header_end = header.end() if header else 0
        words = [(m.start(), m.end()) for m in _WORD.finditer(sentence)]
        hits: list[tuple[int, int, str]] = []
        i = 0
        while i < len(words):
            if words[i][0] < header_end:  # the section heading itself ("FINDINGS:") is no mention
                i += 1
                continue
            for n in range(min(_MAX_WORDS, len(words) - i), 0, -1):
                a, b = words[i][0], words[i + n - 1][1]
                concept = onto.lookup(sentence[a:b])
                if concept is not None:
                    hits.append((a, b, concept.iri))
                    i += n
                    break
            else:
                i += 1
        sites = [(a, _LOBES[iri]) for a, _, iri in hits if iri in _LOBES]
        if header and _SITE_HEADING.match(header.group(1).strip()):
            heading = onto.lookup(header.group(1).strip())
            if heading is not None and heading.iri in _LOBES:
                sites.insert(0, (header.start(1), _LOBES[heading.iri]))
        bilateral = re.search(r"\bbilateral(ly)?\b", sentence, re.IGNORECASE)
        sides = [(m.start(), m.group(1).lower()) for m in _SIDE.finditer(sentence)]
        sizes = [(m.start(), _to_mm(m)) for m in _SIZE.finditer(sentence)]
        tokens = sentence_tokens(sentence)
        for a, b, iri in hits:
            if iri in _LOBES or iri in _NOT_MENTIONS or not _is_finding(onto, iri):
                continue
            concept = onto.concept(iri)
            site = _nearest(sites, a) if sites else "bilateral" if bilateral else _nearest(sides, a) if sides else ""
            size = _nearest(sizes, a) if sizes else None
            ctx = assess(sentence, (a, b), tokens)
            code = f"{concept.codes[0].system.value}:{concept.codes[0].code}" if concept.codes else ""
            mentions.append(
                ReportMention(
                    concept=iri,
                    label=concept.pref_label,
                    code=code,
                    text=sentence[a:b],
                    start=s_start + a,
                    end=s_start + b,
                    section=section,
                    site=site,
                    size_mm=round(size, 1) if size is not None else None,
                    negated=ctx.negated,
                    uncertain=ctx.uncertain,
                    historical=ctx.historical,
                )
            )
    return mentions
