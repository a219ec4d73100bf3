"""Alignment examples: cached text and volume tokens of one case, with their targets.

Built once per case (the text encoder and the stage-(a) volume encoder are frozen in
stages b and c), so the fusion stages train on small tensors only.

A *counterfactual* copy of the report moves every nodule phrase to a lobe without a
nodule ("right upper lobe" -> "left lower lobe"); its phrases are the negatives of the
"supported by the image" head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from medmm.fusion.descriptors import contact_gaps
from medmm.fusion.tokens import LOBE_ORDER, VolumeTokens
from medmm.fusion.training_data import AlignmentCase
from medmm.text.encoder import TextEncoder, TextEncoding, encode_report

__all__ = ["FusionExample", "build_example", "counterfactual_report", "phrase_token_index"]

_LOBE_TEXT = {
    "RUL": "right upper lobe",
    "RML": "right middle lobe",
    "RLL": "right lower lobe",
    "LUL": "left upper lobe",
    "LLL": "left lower lobe",
}
_LOBE_RE = re.compile(r"\b(?:(right|left)\s+(upper|middle|lower)\s+lobe|(RUL|RML|RLL|LUL|LLL)|(middle lobe))\b", re.I)


def _lobe_of(match: re.Match[str]) -> str:
    if match.group(3):
        return match.group(3).upper()
    if match.group(4):
        return "RML"
    return f"{match.group(1)[0]}{match.group(2)[0]}L".upper()


def counterfactual_report(
    text: str, spans: list[tuple[int, int]], occupied: set[str], rng: np.random.Generator
) -> tuple[str, list[tuple[int, int]]]:
    """Move each phrase's lobe to a lobe without a nodule.

    Args:
        text: Report.
        spans: Phrase character spans.
        occupied: Lobes that hold a nodule.
        rng: Random source.

    Returns:
        The new text and the phrases' new spans (only phrases that named a lobe).
    """
    free = [lb for lb in LOBE_ORDER if lb not in occupied]
    if not free:
        return text, []
    pieces, new_spans, pos = [], [], 0
    for a, b in sorted(spans):
        sentence = text[a:b]
        if a < pos or not _LOBE_RE.search(sentence):
            continue
        swapped = _LOBE_RE.sub(lambda m: _LOBE_TEXT[str(rng.choice(free))], sentence)
        pieces.append(text[pos:a])
        start = sum(len(p) for p in pieces)
        pieces.append(swapped)
        new_spans.append((start, start + len(swapped)))
        pos = b
    pieces.append(text[pos:])
    return "".join(pieces), new_spans


def phrase_token_index(encoding: TextEncoding, start: int, end: int) -> torch.Tensor:
    """Indices of the word pieces inside a character span."""
    s, e = encoding.spans[:, 0], encoding.spans[:, 1]
    return torch.nonzero((s >= start) & (e <= end) & (e > s)).flatten()


@dataclass(frozen=True, eq=False)
class FusionExample:
    """Everything stages b and c need of one case.

    Attributes:
        case_id: Case name.
        text, counter: Report and counterfactual report encodings.
        phrases: Word-piece indices of each nodule phrase in ``text``.
        targets: For each phrase, the volume-token indices inside its nodule.
        counter_phrases: Word-piece indices of each moved phrase in ``counter``.
        volume: Volume tokens.
        centre_lps_mm: Mean position of the lung tokens.
        regions: 1 where a lobe holds a nodule (RUL..LLL order). Shapes: (5,)
        agrees: False for reports that deliberately contradict the image.
        nodules: Ground-truth nodules of each phrase (centre, diameter).
        report: The report text.
        detections: The detector's reported nodules behind the tokens' detector channels.
        faint: Its faint detections (the stated-size prior's extra matches).
    """

    case_id: str
    text: TextEncoding
    counter: TextEncoding | None
    phrases: list[torch.Tensor]
    targets: list[torch.Tensor]
    counter_phrases: list[torch.Tensor]
    volume: VolumeTokens
    centre_lps_mm: torch.Tensor
    regions: torch.Tensor
    agrees: bool
    nodules: list[dict]
    report: str
    detections: tuple[dict, ...] = ()
    faint: tuple[dict, ...] = ()


def build_example(
    case: AlignmentCase, tokens: VolumeTokens, encoder: TextEncoder, rng: np.random.Generator
) -> FusionExample:
    """Encode a case's report (and its counterfactual) and attach the targets."""
    by_label = {n["label"]: n for n in case.nodules}
    agrees = case.disagreement == "none"
    phrase_spans = [(p.start, p.end) for p in case.phrases] if agrees else []
    occupied = {n["lobe"] for n in case.nodules}
    counter_text, counter_spans = counterfactual_report(case.report, phrase_spans, occupied, rng)
    texts = [case.report] + ([counter_text] if counter_spans else [])
    enc = [encode_report(encoder, t) for t in texts]
    pos = tokens.positions_lps_mm.numpy()
    phrases, targets, nods = [], [], []
    for p in case.phrases if agrees else []:
        idx = phrase_token_index(enc[0], p.start, p.end)
        n = by_label.get(p.nodule_label)
        if n is None or len(idx) == 0:
            continue
        d = np.linalg.norm(pos - np.asarray(n["center_lps_mm"]), axis=1)
        inside = np.flatnonzero(d <= max(n["diameter_mm"] / 2, 6.0))
        if len(inside) == 0:
            inside = np.array([int(d.argmin())])
        phrases.append(idx)
        targets.append(torch.from_numpy(inside))
        nods.append(n)
    counter_phrases = [phrase_token_index(enc[1], a, b) for a, b in counter_spans] if counter_spans else []
    regions = torch.tensor([float(lb in occupied) for lb in LOBE_ORDER])
    return FusionExample(
        case_id=case.case_id,
        text=enc[0],
        counter=enc[1] if counter_spans else None,
        phrases=phrases,
        targets=targets,
        counter_phrases=[c for c in counter_phrases if len(c)],
        volume=tokens,
        centre_lps_mm=tokens.positions_lps_mm.mean(0),
        regions=regions,
        agrees=agrees,
        nodules=nods,
        report=case.report,
        detections=contact_gaps(case.grid, case.detections),
        faint=contact_gaps(case.grid, case.faint),
    )
