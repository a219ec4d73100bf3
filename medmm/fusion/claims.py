"""Which detection each stated nodule of a report claims, so two sentences do not share one.

The stated-size prior (:mod:`medmm.fusion.size`) weighs each sentence on its own, so when
one lobe holds two nodules of similar size -- "a 1.0 cm nodule in the right upper lobe" and
"Right upper lobe: nodule measuring 9 x 8 mm" over detections of 10.0 and 9.5 mm -- both
sentences can point at the same one, and a sentence about a small nodule can still end on
the large one beside it when the attention leans there. A report describes each nodule
once per section, so its sized, lobe-sited sentences are matched one-to-one to the
detections first:

1. **Findings.** Sentences stating one lobe and one size (:func:`medmm.fusion.site.stated_lobe_and_size`)
   are grouped by :func:`medmm.fusion.agreement.same_nodule`, as mentions are: the same
   lobe and a size within :data:`medmm.fusion.agreement.SAME_FINDING_MM` is one finding
   (findings and impression repeat it), unless both sentences lie in one section.
2. **Match.** Finding ``f`` and detection ``k`` score ``share_f(k) * size_match``: the lobe
   share of the token nearest the detection, times the size prior's match
   ``exp(-(ln(d_k / s_f))^2 / (2 * SIZE_LOG_SD^2))``.
3. **Assignment.** The one-to-one assignment with the highest product of scores
   (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`); a pair scoring below
   :data:`MIN_CLAIM_SCORE` claims nothing.
4. **Claimed elsewhere.** In each sentence's size prior, a detection claimed by *another*
   finding keeps :data:`medmm.fusion.size.CLAIMED_WEIGHT` of its match: the stated facts of the other
   sentence explain it better.

With fewer than two findings nothing changes. The rule has no trained part.

Example:
    >>> claims = claimed_elsewhere(text, spans, detections, tokens)  # doctest: +SKIP
    >>> claims[1]  # detections the second sentence should not point at  # doctest: +SKIP
    frozenset({0})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from medmm.fusion.agreement import same_nodule
from medmm.fusion.site import stated_lobe_and_size
from medmm.fusion.size import SIZE_LOG_SD
from medmm.fusion.tokens import LOBE_ORDER

if TYPE_CHECKING:
    from medmm.fusion.tokens import VolumeTokens
    from medmm.reason.ontology import Ontology

__all__ = ["MIN_CLAIM_SCORE", "claimed_elsewhere", "finding_groups"]

MIN_CLAIM_SCORE = 0.3
"""Lowest lobe-share x size-match score with which a finding claims a detection."""


def finding_groups(stated: Sequence[tuple[str | None, float | None]], sections: Sequence[str]) -> list[int | None]:
    """The finding each sentence states (None for a sentence without one lobe and one size).

    Args:
        stated: ``(lobe, size_mm)`` of each sentence.
        sections: Each sentence's report section (``FINDINGS``, ``IMPRESSION``, ...).

    Example:
        >>> finding_groups([("RUL", 10.0), ("RUL", 9.0), ("RUL", 10.0)], ["F", "F", "I"])
        [0, 1, 0]
    """
    groups: list[list[int]] = []
    out: list[int | None] = []
    for i, (lobe, size) in enumerate(stated):
        if lobe is None or size is None:
            out.append(None)
            continue
        for g, members in enumerate(groups):
            first_lobe, first_size = stated[members[0]]
            apart = any(sections[j] == sections[i] for j in members)  # one section, two sentences
            if same_nodule(first_lobe, first_size, lobe, size, listed_apart=apart):
                members.append(i)
                out.append(g)
                break
        else:
            groups.append([i])
            out.append(len(groups) - 1)
    return out


def claimed_elsewhere(
    text: str,
    spans: Sequence[tuple[int, int]],
    detections: Sequence[Mapping[str, Any]],
    tokens: VolumeTokens,
    ontology: Ontology | None = None,
) -> list[frozenset[int]]:
    """For each sentence, the detections that another stated nodule of the report claims.

    Args:
        text: The report.
        spans: Character spans of its nodule sentences (a span given twice, e.g. once per
            mention of the sentence, is one sentence).
        detections: The detections the size prior weighs (reported, then faint), indexed as
            in :func:`medmm.fusion.size.size_prior`.
        tokens: The volume tokens (lobe shares and positions).
        ontology: Vocabulary for reading the stated lobe and size (default: shipped).

    Returns:
        One set of detection indices per span (empty when fewer than two findings).
    """
    from medmm.text.mentions import split_sentences

    empty = [frozenset[int]() for _ in spans]
    unique = list(dict.fromkeys((int(a), int(b)) for a, b in spans))  # one sentence, one finding
    if len(unique) < 2 or not detections:
        return empty
    starts = split_sentences(text)
    sections = [next((s for a0, b0, s in starts if a0 <= a < b0), "") for a, _ in unique]
    stated = [stated_lobe_and_size(text[a:b], ontology) for a, b in unique]
    group = finding_groups(stated, sections)
    findings = sorted({g for g in group if g is not None})
    if len(findings) < 2:
        return empty
    first = {g: stated[group.index(g)] for g in findings}
    pos = tokens.positions_lps_mm.detach().cpu().numpy().astype(np.float64)
    shares = tokens.lobes.detach().cpu().numpy().astype(np.float64)
    centres = np.array([d["center_lps_mm"] for d in detections], np.float64).reshape(-1, 3)
    near = np.linalg.norm(pos[None] - centres[:, None], axis=-1).argmin(1)
    diam = np.maximum(np.array([d["diameter_mm"] for d in detections], np.float64), 1e-3)
    score = np.zeros((len(findings), len(detections)))
    for r, g in enumerate(findings):
        lobe, size = first[g]
        share = shares[near, LOBE_ORDER.index(lobe)]  # type: ignore[arg-type]
        score[r] = share * np.exp(-0.5 * (np.log(diam / float(size)) / SIZE_LOG_SD) ** 2)  # type: ignore[arg-type]
    rows, cols = linear_sum_assignment(-np.log(np.maximum(score, 1e-12)))
    owner = {int(c): findings[r] for r, c in zip(rows, cols, strict=True) if score[r, c] >= MIN_CLAIM_SCORE}
    per_sentence = [
        frozenset(k for k, g in owner.items() if g != mine) if mine is not None else frozenset[int]() for mine in group
    ]
    at = {span: i for i, span in enumerate(unique)}
    return [per_sentence[at[(int(a), int(b))]] for a, b in spans]
