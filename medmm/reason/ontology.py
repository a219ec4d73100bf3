"""The medmm vocabulary: SKOS concepts with codes, compiled into lookup tables.

The source of truth is Turtle under ``ontology/`` at the repository root (``medmm.ttl`` for
concepts, ``shapes.ttl`` for the SHACL shapes; ``ontology/README.md`` lists every source).
:func:`load_ontology` parses it with rdflib once, checks every code, and compiles:

* normalized label/synonym -> concept (case-, hyphen-, whitespace- and punctuation-insensitive,
  British/American spelling variants folded, plurals of every label added);
* concept -> preferred label, alternative labels, codes, broader concepts.

Codes are reified in the Turtle: a concept points with ``mm:code`` to an ``mm:Code`` node holding
one ``skos:notation`` whose datatype names the coding system (``mm:RadLexId``, ``mm:SctId``,
``mm:Icd10CmCode``, ``mm:DcmCode``) and a ``dcterms:source``. Queries never run SPARQL; they hit
dictionaries built at load time.

Example::

    onto = load_ontology()
    hit = onto.normalize("pure GGN")
    hit.label  # "non-solid nodule"
    [c.code for c in hit.codes]  # ["RID46016"]
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import rdflib
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS

from medmm.errors import OntologyError
from medmm.privacy import withheld

__all__ = [
    "ONTOLOGY_DIR",
    "Code",
    "CodeSystem",
    "Concept",
    "MatchKind",
    "Normalized",
    "Ontology",
    "label_key",
    "load_ontology",
    "verhoeff_valid",
]

logger = logging.getLogger(__name__)

MM = rdflib.Namespace("urn:medmm:")
SHAPES_FILE = "shapes.ttl"


def _find_ontology_dir() -> Path:
    """The ``ontology/`` folder of a checkout, else a copy shipped inside the package."""
    checkout = Path(__file__).resolve().parents[2] / "ontology"
    if checkout.is_dir():
        return checkout
    return Path(__file__).resolve().parents[1] / "ontology_data"


ONTOLOGY_DIR: Path = _find_ontology_dir()


class CodeSystem(StrEnum):
    """Coding systems a concept may carry codes from."""

    RADLEX = "RadLex"
    SNOMED_CT = "SNOMED CT"
    ICD10CM = "ICD-10-CM"
    DCM = "DCM"


_DATATYPES: dict[rdflib.URIRef, CodeSystem] = {
    MM.RadLexId: CodeSystem.RADLEX,
    MM.SctId: CodeSystem.SNOMED_CT,
    MM.Icd10CmCode: CodeSystem.ICD10CM,
    MM.DcmCode: CodeSystem.DCM,
}
_PATTERNS: dict[CodeSystem, re.Pattern[str]] = {
    CodeSystem.RADLEX: re.compile(r"RID\d+"),
    CodeSystem.SNOMED_CT: re.compile(r"[1-9]\d{5,17}"),
    CodeSystem.ICD10CM: re.compile(r"[A-Z]\d{2}(\.[0-9A-Z]{1,4})?"),
    CodeSystem.DCM: re.compile(r"\d+"),
}


class MatchKind(StrEnum):
    """How a phrase was matched to a concept."""

    EXACT = "exact"
    """The whole phrase is a label (after normalization, plurals included)."""
    PARTIAL = "partial"
    """The longest run of words that is a label was used (e.g. "suspicious pulmonary nodule")."""
    NONE = "none"
    """Nothing matched; the free text is kept."""


@dataclass(frozen=True)
class Code:
    """One code of a concept in an external coding system.

    Attributes:
        system: The coding system.
        code: The code value, e.g. ``"RID50149"``, ``"27925004"``, ``"C34.90"``.
        source: Label of the source the code was taken from.
    """

    system: CodeSystem
    code: str
    source: str


@dataclass(frozen=True)
class Concept:
    """A compiled SKOS concept.

    Attributes:
        iri: The concept's IRI, e.g. ``"urn:medmm:pulmonary-nodule"``.
        pref_label: The English preferred label.
        alt_labels: Synonyms, abbreviations and spelling variants.
        codes: Codes in external systems.
        broader: IRIs of the directly broader concepts.
    """

    iri: str
    pref_label: str
    alt_labels: tuple[str, ...]
    codes: tuple[Code, ...]
    broader: tuple[str, ...]


@dataclass(frozen=True)
class Normalized:
    """The result of normalizing one phrase.

    Attributes:
        text: The phrase as given (always kept, even when nothing matched).
        concept: IRI of the concept, or ``None`` when the phrase is unknown.
        label: The concept's preferred label, or ``None``.
        codes: The concept's codes (empty when unknown).
        match: How the phrase matched.
        matched_text: For partial matches, the words that matched (normalized).
    """

    text: str
    concept: str | None
    label: str | None
    codes: tuple[Code, ...] = ()
    match: MatchKind = MatchKind.NONE
    matched_text: str = ""


# ---------------------------------------------------------------------------- normalization

_BRITISH_TO_AMERICAN: dict[str, str] = {
    "oedema": "edema",
    "haemorrhage": "hemorrhage",
    "haemorrhagic": "hemorrhagic",
    "haemoptysis": "hemoptysis",
    "tumour": "tumor",
    "tumours": "tumors",
    "centre": "center",
    "centres": "centers",
    "organising": "organizing",
    "organised": "organized",
    "fibre": "fiber",
    "oesophagus": "esophagus",
    "oesophageal": "esophageal",
    "anaemia": "anemia",
    "paediatric": "pediatric",
    "localised": "localized",
    "characterised": "characterized",
    "haematoma": "hematoma",
    "leukaemia": "leukemia",
    "aluminium": "aluminum",
    "grey": "gray",
}
_DETERMINERS = frozenset({"a", "an", "the"})
_NON_WORD = re.compile(r"[^0-9a-z]+")


def _tokens(text: str) -> list[str]:
    """Lower-case words of ``text``; punctuation, hyphens and slashes separate words."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    words = [w for w in _NON_WORD.split(folded) if w]
    words = [_BRITISH_TO_AMERICAN.get(w, w) for w in words]
    while words and words[0] in _DETERMINERS:
        words = words[1:]
    return words


def label_key(text: str) -> str:
    """The lookup key of a label or phrase.

    Case, hyphens, whitespace, punctuation and a leading article are ignored, and British
    spellings are folded to American ones, so ``"Ground-glass  opacity"``,
    ``"ground glass opacity"`` and ``"groundglass opacity"`` share one key.
    """
    return "".join(_tokens(text))


def _plural(word: str) -> str:
    if word.endswith("is"):
        return word[:-2] + "es"  # metastasis -> metastases, atelectasis -> atelectases
    if word.endswith(("s", "x", "sh", "ch")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _label_variants(label: str) -> list[str]:
    """Keys under which a label is indexed: as written, and with its last word pluralized."""
    words = _tokens(label)
    if not words:
        return []
    keys = ["".join(words)]
    if len(words[-1]) > 3:
        keys.append("".join([*words[:-1], _plural(words[-1])]))
    return keys


# ---------------------------------------------------------------------------- Verhoeff

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(digits: str) -> bool:
    """Whether ``digits`` ends with a correct Verhoeff check digit (as SNOMED CT identifiers do)."""
    if not digits.isdigit():
        return False
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0


# ---------------------------------------------------------------------------- the ontology


class Ontology:
    """Compiled lookup tables over the medmm vocabulary.

    Build it with :func:`load_ontology`. All queries are dictionary lookups.

    Args:
        graph: The merged RDF graph (kept for exporters and SHACL validation).
        concepts: Concepts by IRI.
        files: The Turtle files the graph was read from.
    """

    def __init__(self, graph: rdflib.Graph, concepts: dict[str, Concept], files: Sequence[Path]) -> None:
        self.graph = graph
        self.files: tuple[Path, ...] = tuple(files)
        self._concepts = concepts
        self._index: dict[str, str] = {}
        self._warned: set[str] = set()
        self._max_words = 1
        explicit: dict[str, str] = {}
        for concept in concepts.values():
            for label in (concept.pref_label, *concept.alt_labels):
                key = label_key(label)
                other = explicit.get(key)
                if other is not None and other != concept.iri:
                    raise OntologyError(
                        f"label {label!r} is used by two concepts, {other} and {concept.iri}",
                        path=_file_with(label, self.files),
                        hint="Keep each label on one concept; move the synonym or make it more specific.",
                    )
                explicit[key] = concept.iri
                self._max_words = max(self._max_words, len(_tokens(label)) + 1)
        for concept in concepts.values():
            for label in (concept.pref_label, *concept.alt_labels):
                for key in _label_variants(label):
                    self._index.setdefault(key, concept.iri)
        self._index.update(explicit)  # a label as written beats another concept's plural form
        self._ancestors: dict[str, frozenset[str]] = {}

    def __repr__(self) -> str:
        return f"Ontology({len(self._concepts)} concepts, {len(self._index)} label keys, files={len(self.files)})"

    @property
    def concepts(self) -> tuple[Concept, ...]:
        """All concepts, sorted by IRI."""
        return tuple(self._concepts[i] for i in sorted(self._concepts))

    def concept(self, iri: str) -> Concept:
        """The concept with this IRI (or local name, e.g. ``"pulmonary-nodule"``).

        Raises:
            KeyError: No such concept.
        """
        found = self._concepts.get(iri) or self._concepts.get(str(MM[iri]))
        if found is None:
            raise KeyError(f"no concept {iri!r} in the medmm ontology")
        return found

    def codes(self) -> tuple[tuple[CodeSystem, str, str], ...]:
        """Every code as ``(system, code, concept IRI)``, sorted."""
        rows = [(c.system, c.code, concept.iri) for concept in self._concepts.values() for c in concept.codes]
        return tuple(sorted(rows))

    def ancestors(self, iri: str) -> frozenset[str]:
        """IRIs of all broader concepts (transitively), not including ``iri`` itself."""
        cached = self._ancestors.get(iri)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = list(self.concept(iri).broader)
        while stack:
            parent = stack.pop()
            if parent not in seen and parent in self._concepts:
                seen.add(parent)
                stack.extend(self._concepts[parent].broader)
        result = frozenset(seen)
        self._ancestors[iri] = result
        return result

    def is_a(self, iri: str, ancestor: str) -> bool:
        """Whether ``iri`` is ``ancestor`` or one of its narrower concepts."""
        ancestor_iri = self.concept(ancestor).iri
        return self.concept(iri).iri == ancestor_iri or ancestor_iri in self.ancestors(self.concept(iri).iri)

    def lookup(self, text: str) -> Concept | None:
        """The concept whose label is exactly ``text`` (after normalization), else ``None``."""
        iri = self._index.get(label_key(text))
        return self._concepts[iri] if iri is not None else None

    def normalize(self, text: str) -> Normalized:
        """Map a report phrase to a concept.

        The whole phrase is tried first; failing that, the longest run of words that is a
        label (leftmost on ties). An unknown phrase is kept as free text with ``concept=None``
        and a warning is logged (once per phrase).

        Args:
            text: The phrase, e.g. ``"spiculated margins"`` or ``"R upper lobe"``.
        """
        words = _tokens(text)
        iri = self._index.get("".join(words)) if words else None
        if iri is not None:
            return self._hit(text, iri, MatchKind.EXACT, " ".join(words))
        for size in range(min(len(words), self._max_words), 0, -1):
            for start in range(len(words) - size + 1):
                run = words[start : start + size]
                iri = self._index.get("".join(run))
                if iri is not None:
                    logger.debug("partial ontology match for %s: %r", withheld(text), " ".join(run))
                    return self._hit(text, iri, MatchKind.PARTIAL, " ".join(run))
        if text not in self._warned:
            self._warned.add(text)
            logger.warning("no ontology concept for %s; kept as free text", withheld(text))
        return Normalized(text=text, concept=None, label=None)

    def _hit(self, text: str, iri: str, kind: MatchKind, matched: str) -> Normalized:
        concept = self._concepts[iri]
        return Normalized(text, concept.iri, concept.pref_label, concept.codes, kind, matched)

    def validate(self) -> None:
        """Validate the graph against ``shapes.ttl`` with pyshacl.

        Raises:
            OntologyError: The graph does not conform; the message lists the violations.
        """
        import pyshacl

        shapes_path = ONTOLOGY_DIR / SHAPES_FILE
        shapes = _parse([shapes_path])
        conforms, _, text = pyshacl.validate(self.graph, shacl_graph=shapes, inference="none")
        if not conforms:
            raise OntologyError(
                f"the ontology does not conform to {SHAPES_FILE}:\n{_first_lines(str(text), 40)}",
                path=self.files[-1] if len(self.files) > 1 else self.files[0],
                hint="Fix the concepts or codes named above (see ontology/README.md for the conventions).",
            )


# ---------------------------------------------------------------------------- loading


def load_ontology(extra: Iterable[str | Path] | None = None, *, validate: bool = False) -> Ontology:
    """Load the medmm vocabulary, optionally merged with extension Turtle files.

    The shipped vocabulary is parsed once per process and cached; extensions are parsed on
    each call and checked the same way (codes well-formed, with a source, not shared between
    concepts; one English preferred label per concept).

    Args:
        extra: Additional Turtle files to merge (e.g. site-specific synonyms).
        validate: Also validate against the SHACL shapes (pyshacl; ~0.2 s).

    Raises:
        OntologyError: A file is missing or not valid Turtle (the message names the file and
            line), a code is malformed or unsourced, or validation fails.
    """
    extras = tuple(Path(p) for p in (extra or ()))
    onto = _load_default() if not extras else _compile([*_default_files(), *extras])
    if validate:
        onto.validate()
    return onto


def _default_files() -> list[Path]:
    files = sorted(p for p in ONTOLOGY_DIR.glob("*.ttl") if p.name != SHAPES_FILE)
    if not files:
        raise OntologyError(
            "no ontology Turtle files found",
            path=ONTOLOGY_DIR,
            hint="Run from a medmm checkout (ontology/ at the repository root) or reinstall medmm.",
        )
    return files


@functools.cache
def _load_default() -> Ontology:
    return _compile(_default_files())


def _parse(files: Sequence[Path]) -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in files:
        if not path.is_file():
            raise OntologyError("ontology file not found", path=path, hint="Check the path of the Turtle file.")
        try:
            graph.parse(path, format="turtle")
        except SyntaxError as exc:  # rdflib's BadSyntax is a SyntaxError
            line = _error_line(exc)
            where = f" at line {line}" if line is not None else ""
            reason = getattr(exc, "_why", None) or str(exc).splitlines()[0]
            raise OntologyError(
                f"malformed Turtle{where}: {reason}",
                path=path,
                hint=f"Fix the Turtle syntax near line {line} of {path.name}." if line else "Fix the Turtle syntax.",
            ) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise OntologyError(f"unreadable Turtle: {exc}", path=path, hint="Fix the Turtle syntax.") from exc
        except Exception as exc:  # rdflib's parser raises IndexError/AttributeError on some broken input
            raise OntologyError(
                f"malformed Turtle: the parser failed ({type(exc).__name__}: {exc})",
                path=path,
                hint="Fix the Turtle syntax (a truncated directive or IRI is the usual cause).",
            ) from exc
    return graph


def _error_line(exc: BaseException) -> int | None:
    lines = getattr(exc, "lines", None)
    if isinstance(lines, int):
        return lines + 1  # rdflib counts the newlines before the error
    found = re.search(r"line (\d+)", str(exc))
    return int(found.group(1)) if found else None


def _compile(files: Sequence[Path]) -> Ontology:
    graph = _parse(files)
    for _, target in graph.subject_objects(OWL.imports):
        # Never fetched or read: an ontology only ever comes from the files it was given.
        line = _line_of("imports", files)
        raise OntologyError(
            f"owl:imports of {target} is not followed (medmm reads no network and no other files)"
            + (f" (line {line})" if line else ""),
            path=_file_with("imports", files),
            hint="Download or copy the vocabulary you need and pass it as another file (--ontology A.ttl B.ttl).",
        )
    concepts: dict[str, Concept] = {}
    owner: dict[tuple[CodeSystem, str], str] = {}
    for subject in sorted(set(graph.subjects(RDF.type, SKOS.Concept)), key=str):
        iri = str(subject)
        prefs = [o for o in graph.objects(subject, SKOS.prefLabel) if _is_english(o)]
        if len(prefs) != 1:
            raise OntologyError(
                f"concept {iri} has {len(prefs)} English skos:prefLabel values, expected exactly one",
                path=_file_with(iri.rsplit(":", 1)[-1], files),
                hint="Give the concept one prefLabel with @en; put other names in skos:altLabel.",
            )
        alts = tuple(sorted(str(o) for o in graph.objects(subject, SKOS.altLabel)))
        broader = tuple(sorted(str(o) for o in graph.objects(subject, SKOS.broader)))
        codes = tuple(_read_code(graph, node, iri, files) for node in graph.objects(subject, MM.code))
        for code in codes:
            previous = owner.setdefault((code.system, code.code), iri)
            if previous != iri:
                raise OntologyError(
                    f"{code.system} code {code.code} is on two concepts, {previous} and {iri}",
                    path=_file_with(code.code, files),
                    hint="A code identifies one concept; remove it from the concept it does not denote.",
                )
        concepts[iri] = Concept(
            iri, str(prefs[0]), alts, tuple(sorted(codes, key=lambda c: (c.system, c.code))), broader
        )
    logger.debug("ontology: %d concepts from %s", len(concepts), ", ".join(p.name for p in files))
    return Ontology(graph, concepts, files)


def _is_english(term: rdflib.term.Node) -> bool:
    return isinstance(term, rdflib.Literal) and (term.language or "").lower().startswith("en")


def _read_code(graph: rdflib.Graph, node: rdflib.term.Node, iri: str, files: Sequence[Path]) -> Code:
    notations = list(graph.objects(node, SKOS.notation))
    if len(notations) != 1 or not isinstance(notations[0], rdflib.Literal):
        raise OntologyError(
            f"a code of concept {iri} has {len(notations)} skos:notation values, expected one literal",
            path=_file_with(iri.rsplit(":", 1)[-1], files),
            hint="Give each mm:code node exactly one skos:notation.",
        )
    literal = notations[0]
    value = str(literal)
    system = _DATATYPES.get(literal.datatype) if literal.datatype is not None else None
    if system is None:
        raise OntologyError(
            f"code {value!r} of concept {iri} has datatype {literal.datatype}, not a known coding system",
            path=_file_with(value, files),
            hint="Type the notation with mm:RadLexId, mm:SctId, mm:Icd10CmCode or mm:DcmCode.",
        )
    problem = None
    if not _PATTERNS[system].fullmatch(value):
        problem = f"does not match the {system} pattern {_PATTERNS[system].pattern}"
    elif system is CodeSystem.SNOMED_CT and not verhoeff_valid(value):
        problem = "fails the SNOMED CT Verhoeff check digit"
    if problem:
        line = _line_of(value, files)
        raise OntologyError(
            f"{system} code {value!r} of concept {iri} {problem}" + (f" (line {line})" if line else ""),
            path=_file_with(value, files),
            hint="Correct the code from its source, or remove it and list it as 'to confirm' in ontology/README.md.",
        )
    sources = [graph.value(s, RDFS.label) or s for s in graph.objects(node, DCTERMS.source)]
    if not sources:
        raise OntologyError(
            f"{system} code {value!r} of concept {iri} has no dcterms:source",
            path=_file_with(value, files),
            hint="Say where the code comes from with dcterms:source (see ontology/README.md).",
        )
    return Code(system, value, str(sorted(str(s) for s in sources)[0]))


def _file_with(needle: str, files: Sequence[Path]) -> Path | None:
    """The last file whose text contains ``needle`` (extensions come last and win)."""
    for path in reversed(files):
        try:
            if needle in path.read_text(encoding="utf-8"):
                return path
        except OSError:
            continue
    return files[-1] if files else None


def _line_of(needle: str, files: Sequence[Path]) -> int | None:
    path = _file_with(needle, files)
    if path is None:
        return None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    return None


def _first_lines(text: str, count: int) -> str:
    lines = text.splitlines()
    return "\n".join(lines[:count] + ([f"... ({len(lines) - count} more lines)"] if len(lines) > count else []))
