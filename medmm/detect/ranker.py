"""A learned ranker for blob-filter peaks: which few hundred of a scan's thousands go on.

The blob filter (:func:`medmm.detect.candidates.blob_peaks`) finds every nodule's peak,
but its hand-made score ranks juxtapleural and perifissural nodules among the vessel
crossings. :class:`CandidateRanker` is a small multilayer perceptron over the peak's
features (:data:`~medmm.detect.candidates.FEATURE_NAMES`: the LoG response and smoothed
HU at every scale, Hessian ratios, depth in the lung, the hand-made score) that gives
each peak a logit; :func:`~medmm.detect.candidates.find_candidates` keeps the best
``max_candidates`` after suppression. It is trained by ``medmm train ranker``
(:mod:`medmm.detect.train_ranker`) and shipped as safetensors with a model card
(:mod:`medmm.detect.weights`).

Example:
    >>> import numpy as np
    >>> from medmm.detect.ranker import CandidateRanker
    >>> ranker = CandidateRanker(n_features=26)
    >>> ranker.score(np.zeros((5, 26), np.float32)).shape
    (5,)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["CandidateRanker", "Ranker", "RankerEnsemble", "combine_rankers"]


class CandidateRanker(nn.Module):
    """MLP from standardized peak features to a nodule logit.

    Args:
        n_features: Feature columns (``len(FEATURE_NAMES)``).
        hidden: Hidden units per layer.

    Shapes:
        - Input: ``(N, n_features)``
        - Output: ``(N,)`` logits
    """

    def __init__(self, n_features: int, hidden: int = 64) -> None:
        super().__init__()
        self.n_features = n_features
        self.hidden = hidden
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def set_standardization(self, features: np.ndarray) -> None:
        """Store the training features' mean and standard deviation (columns)."""
        self.feature_mean.copy_(torch.from_numpy(features.mean(0).astype(np.float32)))
        self.feature_std.copy_(torch.from_numpy(np.maximum(features.std(0), 1e-3).astype(np.float32)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits for raw (unstandardized) features, ``(N, F) -> (N,)``."""
        z = (features - self.feature_mean) / self.feature_std
        return self.net(z).squeeze(-1)

    @torch.no_grad()
    def score(self, features: np.ndarray, batch: int = 65536) -> np.ndarray:
        """Logits for a feature matrix (eval mode, no gradients).

        Shapes:
            - features: ``(N, n_features)``
            - Output: ``(N,)``
        """
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"expected (N, {self.n_features}) features, got {features.shape}")
        was_training = self.training
        self.eval()
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        out = torch.cat([self(x[s : s + batch]) for s in range(0, len(x), batch)]) if len(x) else torch.zeros(0)
        self.train(was_training)
        return out.numpy().astype(np.float64)


class RankerEnsemble(nn.Module):
    """Several candidate rankers whose logits are averaged (same features, same ``score``).

    Rankers trained on different data sets rank a scan's rare nodules differently (on the
    development set seed 9797, ``candidate_ranker_v1`` kept four nodules in its top 300
    that ``v2`` ranked 331-1,099th, and missed others v2 kept); the mean logit keeps what
    either ranks high. Used wherever a :class:`CandidateRanker` is.

    Args:
        members: Rankers reading the same feature columns.

    Shapes:
        - Input of :meth:`score`: ``(N, n_features)``
        - Output: ``(N,)`` mean logits
    """

    def __init__(self, members: list[CandidateRanker]) -> None:
        super().__init__()
        if not members:
            raise ValueError("a ranker ensemble needs at least one member")
        widths = {m.n_features for m in members}
        if len(widths) > 1:
            raise ValueError(f"members read different numbers of features: {sorted(widths)}")
        self.members = nn.ModuleList(members)
        self.n_features = members[0].n_features

    def score(self, features: np.ndarray, batch: int = 65536) -> np.ndarray:
        """Mean of the members' logits (see :meth:`CandidateRanker.score`)."""
        return np.mean([m.score(features, batch) for m in self.members], axis=0)


#: What a detector accepts as its candidate ranker: one network or a mean of several.
Ranker = CandidateRanker | RankerEnsemble


def combine_rankers(members: list[CandidateRanker]) -> Ranker:
    """One ranker as it is, several as their :class:`RankerEnsemble`.

    Raises:
        ValueError: No members, or members reading different feature columns.
    """
    return members[0] if len(members) == 1 else RankerEnsemble(members)
