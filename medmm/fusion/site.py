"""A sentence's stated lobe as a prior on its attention map.

The trained attention is good at finding *a* nodule (v2 tokens carry the detector's
output) but weaker at telling which of several nodules a sentence names: on the held-out
set most misses land on another patient nodule, often the largest. The report states the
site in words that medmm's finding extraction already reads exactly. When a sentence names
one lobe, its attention map is multiplied by each token's share of that lobe (floored at
:data:`SITE_FLOOR`, so a lobe-boundary error or a misattributed site can still be
overruled by strong attention) and renormalized:

    w'(t) = w(t) * (SITE_FLOOR + share_lobe(t)) / sum_t [w(t) * (SITE_FLOOR + share_lobe(t))]

A sentence naming no lobe, or several, keeps the attention as it is. The rule has no
trained part and its floor was fixed before any evaluation (docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from medmm.fusion.tokens import LOBE_ORDER as LOBES

if TYPE_CHECKING:
    from medmm.reason.ontology import Ontology

__all__ = ["SITE_FLOOR", "site_weighted", "stated_lobe_and_size"]

SITE_FLOOR = 0.05
"""Weight kept by tokens outside the stated lobe."""


def stated_lobe_and_size(sentence: str, ontology: Ontology | None = None) -> tuple[str | None, float | None]:
    """The one lobe and the one size (mm) a sentence's affirmed findings state (None where not one).

    Args:
        sentence: A report sentence or a phrase.
        ontology: Vocabulary (default: shipped).

    Example:
        >>> stated_lobe_and_size("RML: nodular opacity measuring 8 x 7 mm.")
        ('RML', 8.0)
        >>> stated_lobe_and_size("A 4 mm nodule in the RUL and a 9 mm nodule in the LLL.")
        (None, None)
    """
    from medmm.reason.ontology import load_ontology
    from medmm.text.mentions import extract_mentions

    affirmed = [m for m in extract_mentions(sentence, ontology or load_ontology()) if not m.negated]
    sites = {m.site for m in affirmed}
    lobes = sites & set(LOBES)
    sizes = {m.size_mm for m in affirmed} - {None}
    lobe = lobes.pop() if len(lobes) == 1 and sites <= set(LOBES) else None
    return lobe, (float(sizes.pop()) if len(sizes) == 1 else None)  # type: ignore[arg-type]


def site_weighted(weights: torch.Tensor, token_lobes: torch.Tensor, lobe: str | None) -> torch.Tensor:
    """Attention reweighted by the stated lobe (see the module docstring).

    Args:
        weights: Attention over tokens (any leading dimensions, e.g. heads).
        token_lobes: Each token's share of each lobe (RUL, RML, RLL, LUL, LLL: ``LOBE_ORDER``).
        lobe: The stated lobe, or None to return ``weights`` unchanged.

    Shapes:
        weights: (..., N); token_lobes: (N, 5) -> (..., N)
    """
    if lobe is None:
        return weights
    prior = SITE_FLOOR + token_lobes[:, LOBES.index(lobe)].to(weights.dtype)
    w = weights * prior
    return w / w.sum(-1, keepdim=True).clamp_min(1e-12)
