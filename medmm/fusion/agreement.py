"""Report/image agreement: which stated nodules the detector found, and which it found unstated.

Rules (all in mm and lobes, so a reader can check each call):

1. Report side: every mention of a nodule or mass (ontology descendants of
   ``pulmonary nodule`` and ``mass``) that is not negated, and every *sized* opacity
   (ground-glass opacity or other of :data:`FOCAL_OPACITY_CONCEPTS`) of at most
   :data:`FOCAL_OPACITY_MAX_MM`: "a 1.9 cm GGO in the RUL" describes a focal ground-glass
   nodule, "patchy ground-glass opacity" does not. Mentions naming the same lobe
   and a size within :data:`SAME_FINDING_MM` (or no size) are one finding (findings +
   impression repeat it) -- unless both state a size in different sentences of one
   section: a section describes each nodule once, so "a 1.5 cm subpleural nodule in the
   RLL." and "RLL: smooth nodule measuring 15 mm." in FINDINGS are two nodules (this needs
   the report text).
2. A finding is **confirmed** by a reported detection (probability >= the nodule
   threshold) in the same lobe -- or the same lung when the report names only a side or
   no site -- whose diameter is within ``max(4 mm, 50 %)`` of the stated size. A
   detection in another lobe of the same lung may confirm it too, at a higher cost (lobe
   borders are where segmentation and readers disagree; the detail says the lobes
   differ); the other lung never does. When the
   alignment model grounded the sentence, a detection within 15 mm of the attention peak
   also confirms a finding that names no lobe. Each detection confirms one finding at most.
3. A *general* finding -- no size and no lobe ("multiple bilateral nodules") -- confirms
   no particular detection: it is confirmed when any detection lies on a side it names.
   A *plural* one ("multiple nodules ... the largest: 16, 14 and 11 mm") also accounts
   for unlisted detections on its side no larger than the smallest described nodule
   (plus ``max(2 mm, 20 %)`` for measurement): the text says there are more, smaller
   ones. A nodule larger than that, or any nodule when the statement is singular, is
   still flagged.
4. Unmatched findings are **not found in image**; unmatched detections of at least
   ``min_unmentioned_mm`` (6 mm: Fleischner 2017 recommends no routine follow-up below
   it, so reports often leave such nodules out) are **not in report**.
5. **Second look (opt-in, off in** ``analyze``**).** Given ``faint`` detections, before a
   finding with a lobe *and* a size is called not found, the
   detections below the nodule threshold (``faint``: probability at least
   :data:`SECOND_LOOK_MIN_PROBABILITY`) are searched: one in the stated lung -- the
   stated lobe first, another lobe of that lung at rule 2's cost
   (:data:`SECOND_LOOK_SAME_LUNG`; a nodule on a fissure is often given the lobe across
   it) -- whose diameter fits as in rule 2 confirms it, and the detail says it is a
   faint detection, with its probability. The report acts as a second reader that the
   CNN's low score is weighed against (the detector's misses of stated nodules are mostly
   such low scores); a faint detection never becomes a nodule and is never "not in
   report", and the other lung never confirms. It is off in the pipeline: on its held-out
   test (seed 9797, nodule_detector_v8) it confirmed no further agreeing report and let
   one contradiction and one wrong-side counterfactual through (docs/architecture.md).

Example:
    >>> items = check_agreement(mentions, result.nodules, nodule_like)   # doctest: +SKIP
    >>> [i.status for i in items]                                        # doctest: +SKIP
    ['confirmed', 'not_in_report']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medmm.anatomy.regions import LEFT_LOBES, LOBE_NAMES, RIGHT_LOBES
from medmm.types import AgreementItem, DetectedNodule, ReportFinding

if TYPE_CHECKING:
    from medmm.reason.ontology import Ontology

__all__ = [
    "FOCAL_OPACITY_CONCEPTS",
    "FOCAL_OPACITY_MAX_MM",
    "NODULE_CONCEPTS",
    "SAME_FINDING_MM",
    "SECOND_LOOK_MIN_PROBABILITY",
    "SECOND_LOOK_SAME_LUNG",
    "FaintDetection",
    "check_agreement",
    "group_findings",
    "nodule_like",
    "same_nodule",
]

NODULE_CONCEPTS = ("urn:medmm:pulmonary-nodule", "urn:medmm:mass")
FOCAL_OPACITY_CONCEPTS = ("urn:medmm:ground-glass-opacity",)
"""Opacities that are a nodule when the report gives them a size (rule 1)."""
FOCAL_OPACITY_MAX_MM = 30.0
"""Largest stated size of such an opacity read as a nodule: a nodule measures up to 3 cm
(Fleischner Society glossary, Hansell et al., Radiology 2008); a larger one is an area."""
OTHER_LOBE_COST_MM = 5.0
"""Matching cost of a detection in another lobe of the stated lung (as mm of size gap)."""
SAME_FINDING_MM = 1.0
"""Largest size gap between two same-lobe mentions read as one nodule. A repeat states the
same measurement, rounded differently at most ("18 x 16 mm" / "1.8 cm"); two nodules
of 18 and 16 mm in one lobe are two findings (a 2 mm tolerance merged them)."""
SECOND_LOOK_MIN_PROBABILITY = 0.2
"""Lowest CNN probability a sub-threshold detection needs to confirm a stated finding (rule 5)."""
SECOND_LOOK_SAME_LUNG = True
"""Whether rule 5 takes a faint detection in another lobe of the stated lung (see rule 5)."""


@dataclass(frozen=True)
class FaintDetection:
    """A detection below the nodule threshold, offered to the second look (rule 5).

    Attributes:
        center_lps_mm: Centre ``(x, y, z)`` in LPS mm.
        probability: The detector's calibrated probability.
        diameter_mm: The CNN's diameter estimate.
        lobe: Lobe name (``"RUL"`` ...), or ``""`` when it lies in no lobe.
    """

    center_lps_mm: tuple[float, float, float]
    probability: float
    diameter_mm: float
    lobe: str


@dataclass
class _Group:
    mentions: list[int]
    site: str
    size_mm: float | None
    peak: tuple[float, float, float] | None


def nodule_like(mentions: Sequence[ReportFinding], ontology: Ontology) -> list[bool]:
    """For each mention, whether it describes a nodule or a mass (rule 1).

    True for a nodule or a mass (or a kind of either), and for an opacity of
    :data:`FOCAL_OPACITY_CONCEPTS` with a stated size of at most :data:`FOCAL_OPACITY_MAX_MM`.
    """

    def kind_of(concept: str, roots: tuple[str, ...]) -> bool:
        return any(concept == c or ontology.is_a(concept, c) for c in roots)

    return [
        kind_of(m.concept, NODULE_CONCEPTS)
        or (m.size_mm is not None and m.size_mm <= FOCAL_OPACITY_MAX_MM and kind_of(m.concept, FOCAL_OPACITY_CONCEPTS))
        for m in mentions
    ]


def _side(site: str) -> frozenset[str]:
    if site in RIGHT_LOBES or site == "right":
        return RIGHT_LOBES
    if site in LEFT_LOBES or site == "left":
        return LEFT_LOBES
    return RIGHT_LOBES | LEFT_LOBES


def _sentence_ids(mentions: Sequence[ReportFinding], text: str | None) -> list[int | None]:
    """Index of the sentence holding each mention (None for all without the text)."""
    if text is None:
        return [None] * len(mentions)
    from medmm.text.mentions import split_sentences

    starts = [a for a, _, _ in split_sentences(text)]
    return [max((k for k, a in enumerate(starts) if a <= m.start), default=0) for m in mentions]


def same_nodule(
    site_a: str | None,
    size_a_mm: float | None,
    site_b: str | None,
    size_b_mm: float | None,
    *,
    listed_apart: bool = False,
) -> bool:
    """Whether two statements describe one nodule (rule 1; also :mod:`medmm.fusion.claims`).

    Args:
        site_a: Site of the first statement (lobe or side; empty or None: no site).
        size_a_mm: Its stated size, or None.
        site_b: Site of the second statement.
        size_b_mm: Its stated size, or None.
        listed_apart: Both are sized and stand in different sentences of one section: a
            section describes each nodule once, so they are two nodules.

    Example:
        >>> same_nodule("RUL", 10.0, "RUL", 10.5), same_nodule("RUL", 10.0, "RUL", 12.0)
        (True, False)
    """
    if not site_a or site_a != site_b or listed_apart:
        return False
    return size_a_mm is None or size_b_mm is None or abs(size_a_mm - size_b_mm) <= SAME_FINDING_MM


def group_findings(
    mentions: Sequence[ReportFinding], nodule_like: Sequence[bool], text: str | None = None
) -> list[list[int]]:
    """Indices of mentions that state the same nodule.

    Same lobe, size within :data:`SAME_FINDING_MM`; with the report ``text``, two sized
    mentions in different sentences of one section are two nodules (rule 1).
    """
    sentence = _sentence_ids(mentions, text)
    groups: list[_Group] = []
    for i, (m, ok) in enumerate(zip(mentions, nodule_like, strict=True)):
        if not ok or m.negated:
            continue
        for g in groups:
            # A section describes a nodule once; a second sized sentence there is another nodule.
            listed = m.size_mm is not None and any(
                mentions[j].section == m.section
                and mentions[j].size_mm is not None
                and sentence[j] is not None
                and sentence[j] != sentence[i]
                for j in g.mentions
            )
            if same_nodule(g.site, g.size_mm, m.site, m.size_mm, listed_apart=listed):
                g.mentions.append(i)
                g.size_mm = g.size_mm if g.size_mm is not None else m.size_mm
                break
        else:
            groups.append(_Group([i], m.site, m.size_mm, m.attention_peak_lps_mm))
    return [g.mentions for g in groups]


def _fits(m: ReportFinding, d: DetectedNodule, peak_ok: bool) -> float | None:
    """Cost of matching (lower is better), or None when the detection cannot be the finding."""
    penalty = 0.0
    if m.site in LOBE_NAMES:
        if d.lobe != m.site:
            if d.lobe and d.lobe not in _side(m.site):
                return None
            penalty = OTHER_LOBE_COST_MM
    elif d.lobe and d.lobe not in _side(m.site) and not peak_ok:
        return None
    if m.size_mm is not None:
        gap = abs(d.diameter_mm - m.size_mm)
        if gap > max(4.0, 0.5 * m.size_mm):
            return None
        return gap + penalty
    return 5.0 + penalty


def _plural(m: ReportFinding) -> bool:
    """Whether a mention names several nodules ("nodules", "masses"; not "mass")."""
    words = m.text.lower().split()
    return bool(words) and words[-1].endswith("s") and not words[-1].endswith("ss")


def check_agreement(
    mentions: Sequence[ReportFinding],
    nodules: Sequence[DetectedNodule],
    nodule_like: Sequence[bool],
    *,
    min_unmentioned_mm: float = 6.0,
    peak_radius_mm: float = 15.0,
    text: str | None = None,
    faint: Sequence[FaintDetection] = (),
    second_look_min_probability: float = SECOND_LOOK_MIN_PROBABILITY,
    second_look_same_lung: bool = SECOND_LOOK_SAME_LUNG,
) -> tuple[AgreementItem, ...]:
    """Compare the report's nodule findings with the reported detections.

    Args:
        mentions: Report mentions (with attention peaks when the model grounded them).
        nodules: Reported detections (above the nodule threshold).
        nodule_like: For each mention, whether its concept is a nodule or mass.
        min_unmentioned_mm: Smallest unmentioned detection reported as "not in report".
        peak_radius_mm: Attention-peak distance that lets a site-less finding match.
        text: The report the mentions come from (their sentences tell repeats from
            two nodules, rule 1); without it, sized same-lobe mentions are one finding.
        faint: Detections below the nodule threshold, with their lobes, for the second
            look (rule 5); empty turns it off.
        second_look_min_probability: Lowest probability of a faint detection that may
            confirm a finding.
        second_look_same_lung: Whether a faint detection in another lobe of the stated
            lung may confirm a finding (else the stated lobe only).

    Returns:
        One item per report finding, then one per other detection of at least
        ``min_unmentioned_mm``: confirmed when a plural general statement accounts for
        it (rule 3), else not in report.
    """
    groups = group_findings(mentions, nodule_like, text)
    general = {
        gi
        for gi, idx in enumerate(groups)
        if all(mentions[i].size_mm is None and mentions[i].site not in LOBE_NAMES for i in idx)
    }
    candidates: list[tuple[float, int, int]] = []
    for gi, idx in enumerate(groups):
        if gi in general:
            continue
        for di, d in enumerate(nodules):
            costs = []
            for mi in idx:
                m = mentions[mi]
                peak_ok = m.attention_peak_lps_mm is not None and (
                    float(np.linalg.norm(np.subtract(m.attention_peak_lps_mm, d.center_lps_mm))) <= peak_radius_mm
                )
                c = _fits(m, d, peak_ok)
                if c is not None:
                    costs.append(c - (1.0 if peak_ok else 0.0))
            if costs:
                candidates.append((min(costs), gi, di))
    matched_g: dict[int, int] = {}
    used_d: set[int] = set()
    for _, gi, di in sorted(candidates):
        if gi not in matched_g and di not in used_d:
            matched_g[gi] = di
            used_d.add(di)
    second = _second_look(
        mentions, groups, general, matched_g, faint, second_look_min_probability, second_look_same_lung
    )
    items: list[AgreementItem] = []
    for gi, idx in enumerate(groups):
        m = mentions[idx[0]]
        size = f"{m.size_mm:g} mm " if m.size_mm is not None else ""
        where = f" in {m.site}" if m.site else ""
        if gi in general:
            side = [d for d in nodules if not d.lobe or d.lobe in _side(m.site)]
            items.append(
                AgreementItem(
                    status="confirmed" if side else "not_found_in_image",
                    mentions=tuple(idx),
                    nodule=None,
                    detail=f"report: {m.label}{where} (general statement); image: {len(side)} detection(s) there",
                )
            )
            continue
        if gi in matched_g:
            d = nodules[matched_g[gi]]
            items.append(
                AgreementItem(
                    status="confirmed",
                    mentions=tuple(idx),
                    nodule=matched_g[gi],
                    detail=(
                        f"report: {size}{m.label}{where}; image: {d.diameter_mm:.1f} mm nodule in {d.lobe or 'lung'}"
                        + (" (lobes differ)" if m.site in LOBE_NAMES and d.lobe and d.lobe != m.site else "")
                    ),
                )
            )
        elif gi in second:
            f = second[gi]
            items.append(
                AgreementItem(
                    status="confirmed",
                    mentions=tuple(idx),
                    nodule=None,
                    detail=f"report: {size}{m.label}{where}; image: faint detection (p={f.probability:.2f}, "
                    f"below the nodule threshold), {f.diameter_mm:.1f} mm in {f.lobe}"
                    + (" (lobes differ)" if f.lobe != m.site else ""),
                )
            )
        else:
            items.append(
                AgreementItem(
                    status="not_found_in_image",
                    mentions=tuple(idx),
                    nodule=None,
                    detail=f"report: {size}{m.label}{where}; no detection of that site and size",
                )
            )
    stated = [mentions[idx[0]].size_mm for gi, idx in enumerate(groups) if gi not in general]
    smallest = min((s for s in stated if s is not None), default=None)
    plural = [gi for gi in sorted(general) if any(_plural(mentions[i]) for i in groups[gi])]
    for di, d in enumerate(nodules):
        if di in used_d or d.diameter_mm < min_unmentioned_mm:
            continue
        cover = next(
            (
                gi
                for gi in plural
                if smallest is not None
                and (not d.lobe or d.lobe in _side(mentions[groups[gi][0]].site))
                and d.diameter_mm <= smallest + max(2.0, 0.2 * smallest)
            ),
            None,
        )
        if cover is not None:
            items.append(
                AgreementItem(
                    status="confirmed",
                    mentions=tuple(groups[cover]),
                    nodule=di,
                    detail=f"image: {d.diameter_mm:.1f} mm nodule in {d.lobe or 'lung'}; report: "
                    f"one of the {mentions[groups[cover][0]].text} (no larger than the smallest described, "
                    f"{smallest:g} mm)",
                )
            )
            continue
        items.append(
            AgreementItem(
                status="not_in_report",
                mentions=(),
                nodule=di,
                detail=f"image: {d.diameter_mm:.1f} mm nodule in {d.lobe or 'lung'} (p={d.probability:.2f}); "
                "no report finding of that site and size",
            )
        )
    return tuple(items)


def _second_look(
    mentions: Sequence[ReportFinding],
    groups: list[list[int]],
    general: set[int],
    matched: dict[int, int],
    faint: Sequence[FaintDetection],
    min_probability: float,
    same_lung: bool,
) -> dict[int, FaintDetection]:
    """Rule 5: the faint detection that confirms each unmatched lobe-sited, sized finding."""
    pairs: list[tuple[float, int, int]] = []
    for gi, idx in enumerate(groups):
        if gi in general or gi in matched:
            continue
        m = mentions[idx[0]]
        if m.site not in LOBE_NAMES or m.size_mm is None:
            continue
        for fi, f in enumerate(faint):
            if f.probability < min_probability or not f.lobe:
                continue
            if f.lobe != m.site and not (same_lung and f.lobe in _side(m.site)):
                continue
            gap = abs(f.diameter_mm - m.size_mm)
            if gap <= max(4.0, 0.5 * m.size_mm):
                # the size gap (plus rule 2's cost of another lobe) first, then the more probable
                penalty = OTHER_LOBE_COST_MM if f.lobe != m.site else 0.0
                pairs.append((gap + penalty - f.probability, gi, fi))
    out: dict[int, FaintDetection] = {}
    used: set[int] = set()
    for _, gi, fi in sorted(pairs):
        if gi not in out and fi not in used:
            out[gi] = faint[fi]
            used.add(fi)
    return out
