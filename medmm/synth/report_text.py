"""Radiology report text for synthetic cases, with ground-truth mentions.

Reports vary the way real ones do: synonyms and abbreviations (GGO, RUL, "ground glass",
"sub-solid"), sizes in mm or cm, negations ("No pleural effusion", "without
lymphadenopathy"), hedges ("possibly", "cannot exclude"), and a findings + impression
layout. Every finding the text states is recorded as a :class:`Mention` with its
character span, so text extraction can be scored exactly.

Some reports deliberately disagree with the image -- a nodule left out, or placed on the
wrong side -- and say so in :attr:`SyntheticReport.discrepancies`, so that report/image
agreement checks have true positives to find. A report of four or more nodules says
"multiple nodules ... the largest: <three>", which is true of a study with smaller unlisted
nodules; its left-out nodule is therefore the largest, the one omission the text contradicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from medmm.synth.nodules import Calcification, NodulePosition, NoduleTexture, RenderedNodule
from medmm.synth.phantom import Lobe

__all__ = ["Disagreement", "Mention", "SyntheticReport", "write_report"]

LOBE_NAMES: dict[Lobe, tuple[str, ...]] = {
    Lobe.RUL: ("right upper lobe", "RUL"),
    Lobe.RML: ("right middle lobe", "RML", "middle lobe"),
    Lobe.RLL: ("right lower lobe", "RLL"),
    Lobe.LUL: ("left upper lobe", "LUL"),
    Lobe.LLL: ("left lower lobe", "LLL"),
}
_OPPOSITE = {Lobe.RUL: Lobe.LUL, Lobe.RML: Lobe.LUL, Lobe.RLL: Lobe.LLL, Lobe.LUL: Lobe.RUL, Lobe.LLL: Lobe.RLL}
_TERMS: dict[str, tuple[str, ...]] = {
    "solid nodule": ("nodule", "pulmonary nodule", "solid nodule", "nodular opacity"),
    "ground-glass nodule": (
        "ground-glass nodule",
        "ground glass nodule",
        "GGO",
        "pure ground-glass opacity",
        "non-solid nodule",
    ),
    "part-solid nodule": (
        "part-solid nodule",
        "part solid nodule",
        "sub-solid nodule with a solid component",
        "mixed attenuation nodule",
    ),
    "calcified nodule": ("calcified nodule", "calcified granuloma", "densely calcified nodule"),
    "mass": ("mass", "pulmonary mass"),
}


class Disagreement(StrEnum):
    """How a report may contradict its image."""

    NONE = "none"
    MISSED_NODULE = "missed_nodule"
    WRONG_SIDE = "wrong_side"


@dataclass(frozen=True)
class Mention:
    """One stated finding.

    Attributes:
        concept: Canonical concept name (e.g. ``"solid nodule"``, ``"pleural effusion"``).
        start: Character offset of the finding term in the report.
        end: End offset (exclusive).
        site: Lobe abbreviation (``"RUL"``), side (``"right"``, ``"bilateral"``) or ``""``.
        size_mm: Stated size in mm, if any.
        negated: The text says it is absent.
        uncertain: The text hedges.
        nodule_label: Ground-truth nodule it refers to (label in the nodule map), if any.
    """

    concept: str
    start: int
    end: int
    site: str = ""
    size_mm: float | None = None
    negated: bool = False
    uncertain: bool = False
    nodule_label: int | None = None


@dataclass(frozen=True)
class SyntheticReport:
    """Report text and its ground truth."""

    text: str
    mentions: tuple[Mention, ...]
    disagreement: Disagreement = Disagreement.NONE
    discrepancies: tuple[str, ...] = ()


@dataclass
class _Builder:
    rng: np.random.Generator
    parts: list[str] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)

    @property
    def length(self) -> int:
        return sum(len(p) for p in self.parts)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def term(self, text: str, concept: str, **kw: object) -> None:
        start = self.length
        self.parts.append(text)
        self.mentions.append(Mention(concept, start, start + len(text), **kw))  # type: ignore[arg-type]

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return str(options[int(self.rng.integers(len(options)))])


def _size_text(d_mm: float, rng: np.random.Generator) -> str:
    if d_mm >= 10 and rng.random() < 0.5:
        return f"{d_mm / 10:.1f} cm"
    if rng.random() < 0.25:
        return f"{round(d_mm):d} x {max(1, round(d_mm * rng.uniform(0.7, 0.95))):d} mm"
    return f"{round(d_mm):d} mm"


def _concept(n: RenderedNodule) -> str:
    if n.spec.calcification != Calcification.NONE:
        return "calcified nodule"
    if n.spec.texture == NoduleTexture.GROUND_GLASS:
        return "ground-glass nodule"
    if n.spec.texture == NoduleTexture.PART_SOLID:
        return "part-solid nodule"
    return "mass" if n.diameter_mm >= 30 else "solid nodule"


def _describe_nodule(b: _Builder, n: RenderedNodule, lobe: Lobe) -> None:
    concept = _concept(n)
    site_name = b.pick(LOBE_NAMES[lobe])
    size = _size_text(n.diameter_mm, b.rng)
    adjectives = []
    if n.spec.spiculation > 0.4:
        adjectives.append(b.pick(["spiculated", "irregular spiculated"]))
    elif n.spec.lobulation > 0.4:
        adjectives.append("lobulated")
    elif n.spec.calcification == Calcification.NONE and n.spec.texture == NoduleTexture.SOLID:
        adjectives.append(b.pick(["well-circumscribed", "smooth", "round"]))
    if n.spec.position == NodulePosition.PERIFISSURAL:
        adjectives.append("perifissural")
    if n.spec.position == NodulePosition.JUXTAPLEURAL:
        adjectives.append(b.pick(["pleural-based", "subpleural"]))
    calc = {
        Calcification.POPCORN: " with popcorn calcification",
        Calcification.CENTRAL: " with central calcification",
        Calcification.DIFFUSE: "",
        Calcification.NONE: "",
    }[n.spec.calcification]
    style = int(b.rng.integers(3))
    if style == 0:
        b.add(f"There is a {size} {' '.join(adjectives) + ' ' if adjectives else ''}")
        b.term(b.pick(_TERMS[concept]), concept, site=lobe.name, size_mm=round(n.diameter_mm, 1), nodule_label=n.label)
        b.add(f"{calc} in the {site_name}. ")
    elif style == 1:
        b.add(f"{site_name[0].upper() + site_name[1:]}: {' '.join(adjectives) + ' ' if adjectives else ''}")
        b.term(b.pick(_TERMS[concept]), concept, site=lobe.name, size_mm=round(n.diameter_mm, 1), nodule_label=n.label)
        b.add(f"{calc} measuring {size}. ")
    else:
        b.add(f"A {' '.join(adjectives) + ' ' if adjectives else ''}")
        b.term(b.pick(_TERMS[concept]), concept, site=lobe.name, size_mm=round(n.diameter_mm, 1), nodule_label=n.label)
        b.add(f"{calc} is seen in the {site_name}, measuring {size}. ")
    if n.spec.texture == NoduleTexture.PART_SOLID and n.solid_diameter_mm > 0:
        b.add(f"The solid component measures {round(n.solid_diameter_mm):d} mm. ")


_IMPRESSIONS: dict[str, tuple[str, ...]] = {
    "primary lung cancer": (
        "suspicious for primary lung malignancy",
        "highly suspicious for bronchogenic carcinoma",
        "concerning for primary lung cancer",
    ),
    "adenocarcinoma spectrum (subsolid)": (
        "possibly representing an adenocarcinoma spectrum lesion",
        "cannot exclude adenocarcinoma in situ or minimally invasive adenocarcinoma",
    ),
    "pulmonary metastases": ("consistent with metastatic disease", "most likely metastases"),
    "calcified granulomas (healed infection)": (
        "compatible with healed granulomatous disease",
        "likely benign calcified granulomas",
    ),
    "pulmonary hamartoma": ("most consistent with a hamartoma", "likely benign hamartoma"),
    "intrapulmonary lymph node": ("likely an intrapulmonary lymph node", "probably a benign perifissural nodule"),
    "indeterminate small nodule": ("indeterminate; follow-up per guidelines", "nonspecific small nodule"),
}


def write_report(
    nodules: tuple[RenderedNodule, ...],
    diagnosis: str,
    rng: np.random.Generator,
    *,
    emphysema: float = 0.0,
    effusion_side: str = "",
    disagreement: Disagreement | str = Disagreement.NONE,
) -> SyntheticReport:
    """Write a findings + impression report for a case.

    Args:
        nodules: Ground-truth nodules.
        diagnosis: Case diagnosis label (drives the impression wording).
        rng: Style randomness.
        emphysema: Severity (0 none).
        effusion_side: ``"right"``, ``"left"`` or ``""``.
        disagreement: Make the report contradict the image this way.
    """
    b = _Builder(rng)
    mode = Disagreement(disagreement)
    shown = sorted(nodules, key=lambda n: -n.diameter_mm)
    discrepancies: list[str] = []
    if mode == Disagreement.MISSED_NODULE and shown:
        k = int(rng.integers(len(shown)))
        if len(shown) >= 4:
            # the report will say "multiple nodules ... the largest: <three>", which leaves room
            # for smaller unlisted ones; only leaving out the largest contradicts it
            k = 0
        missed = shown.pop(k)
        discrepancies.append(f"nodule {missed.label} ({missed.diameter_mm:.0f} mm, {missed.lobe.name}) not reported")
    lobes = {n.label: n.lobe for n in shown}
    if mode == Disagreement.WRONG_SIDE and shown:
        n = shown[int(rng.integers(len(shown)))]
        lobes[n.label] = _OPPOSITE.get(n.lobe, n.lobe)
        discrepancies.append(f"nodule {n.label} reported in the {lobes[n.label].name}, image shows {n.lobe.name}")

    b.add("FINDINGS:\nLungs: ")
    if not shown:
        b.add(b.pick(["No suspicious ", "No ", "There are no "]))
        b.term(b.pick(["pulmonary nodules", "nodules", "pulmonary nodules or masses"]), "solid nodule", negated=True)
        b.add(". ")
    elif len(shown) >= 3:
        sides = {("right" if n.lobe in (Lobe.RUL, Lobe.RML, Lobe.RLL) else "left") for n in shown}
        b.add("Multiple " + ("bilateral " if len(sides) == 2 else ""))
        b.term("pulmonary nodules", "solid nodule", site="bilateral" if len(sides) == 2 else sides.pop())
        b.add(f" are present, {b.pick(['predominantly in the lower lobes', 'of varying size'])}. The largest: ")
        for n in shown[:3]:
            _describe_nodule(b, n, lobes[n.label])
    else:
        for n in shown:
            _describe_nodule(b, n, lobes[n.label])
    if emphysema > 0:
        b.add(b.pick(["Upper lobe predominant ", "Moderate ", "Mild "]) if emphysema < 0.7 else "Severe ")
        b.term(b.pick(["centrilobular emphysema", "emphysema", "emphysematous change"]), "emphysema", site="bilateral")
        b.add(". ")
    b.add("No ")
    b.term(b.pick(["consolidation", "airspace consolidation"]), "consolidation", negated=True)
    b.add(". \nPleura: ")
    if effusion_side:
        b.add(f"Small {effusion_side} ")
        b.term(b.pick(["pleural effusion", "effusion"]), "pleural effusion", site=effusion_side)
        b.add(". No ")
        b.term("pneumothorax", "pneumothorax", negated=True)
        b.add(". ")
    else:
        b.add("No ")
        b.term(b.pick(["pleural effusion", "effusion"]), "pleural effusion", negated=True)
        b.add(" or ")
        b.term("pneumothorax", "pneumothorax", negated=True)
        b.add(". ")
    b.add("\nMediastinum: Normal heart size, without ")
    b.term(b.pick(["lymphadenopathy", "mediastinal or hilar lymphadenopathy"]), "lymphadenopathy", negated=True)
    b.add(".\n\nIMPRESSION:\n")
    if not shown:
        b.add("No ")
        b.term(b.pick(["suspicious pulmonary nodule", "pulmonary nodule"]), "solid nodule", negated=True)
        b.add(".")
    else:
        lead = shown[0]
        hedge = b.pick(_IMPRESSIONS.get(diagnosis, ("of uncertain significance",)))
        uncertain = any(
            w in hedge
            for w in (
                "possibly",
                "cannot exclude",
                "likely",
                "probably",
                "suspicious",
                "concerning",
                "indeterminate",
                "nonspecific",
                "most",
            )
        )
        b.add(f"1. {_size_text(lead.diameter_mm, rng)} {b.pick(LOBE_NAMES[lobes[lead.label]])} ")
        concept = _concept(lead)
        b.term(
            b.pick(_TERMS[concept]),
            concept,
            site=lobes[lead.label].name,
            size_mm=round(lead.diameter_mm, 1),
            uncertain=uncertain,
            nodule_label=lead.label,
        )
        b.add(f", {hedge}.")
    if emphysema > 0:
        b.add("\n2. ")
        b.term("Emphysema", "emphysema", site="bilateral")
        b.add(".")
    return SyntheticReport("".join(b.parts), tuple(b.mentions), mode, tuple(discrepancies))
