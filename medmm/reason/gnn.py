"""Differential networks: the region GNN and the no-graph baseline.

:class:`RegionGNN` reads the region graph (:func:`medmm.anatomy.graph.build_region_graph`):
node rows from :func:`medmm.reason.features.node_features` with the study vector appended,
a linear input layer, two relational graph convolutions (R-GCN, Schlichtkrull et al., ESWC
2018; one weight per edge type: fissure, pleura, mediastinum, airway, counterpart) with
residual connections, then

* a per-region head: the region's abnormality logit (trained on "holds a true nodule");
* a graph readout (mean and max over nodes, plus the study vector) to one logit per
  diagnosis of :data:`medmm.reason.evidence.DIFFERENTIAL`. With ``input_readout`` (the
  shipped setting) the readout also reads the mean- and max-pooled input rows, a skip
  from the input to the readout in the spirit of jumping-knowledge networks (Xu et al.,
  ICML 2018): the network then sees everything the baseline sees, and the convolutions add
  what the region graph knows on top (without it, the GNN trailed the baseline by 6-7
  points of cross-validated top-1; ``docs/reasoning.md``).

:class:`PooledMLP` is the baseline the GNN has to beat: the same node rows pooled (mean and
max over the nodes) with the study vector, through an MLP of similar size. It knows how
many nodules of which kind the study has but not which region holds them.

:class:`MeanEnsemble` averages the outputs of several such networks trained from different
seeds (the shipped GNN is one; so is the baseline it is measured against).

Both standardize their inputs with statistics stored as buffers (set from the training set,
saved with the weights), and neither does any I/O.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import RGCNConv, global_max_pool, global_mean_pool

from medmm.anatomy.graph import EDGE_TYPES

__all__ = ["MeanEnsemble", "PooledMLP", "RegionGNN"]


class _Standardize(nn.Module):
    """``(x - mean) / std`` with buffers (identity until :meth:`fit`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> None:
        """Set the statistics from training rows ``(N, dim)``."""
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _mlp(in_dim: int, hidden: int, out_dim: int, dropout: float, *, hidden_layers: int) -> nn.Sequential:
    """``hidden_layers`` x (Linear, ReLU, Dropout), then a Linear to ``out_dim``."""
    layers: list[nn.Module] = []
    for k in range(hidden_layers):
        layers += [nn.Linear(in_dim if k == 0 else hidden, hidden), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers, nn.Linear(hidden, out_dim))


class RegionGNN(nn.Module):
    """Relational GNN over the anatomical region graph.

    Args:
        node_dim: Node row width (:data:`medmm.reason.features.NODE_DIM`).
        study_dim: Study vector width (:data:`medmm.reason.features.STUDY_DIM`).
        n_classes: Diagnoses.
        hidden: Hidden width.
        layers: Graph convolutions.
        dropout: Dropout after the input layer and each convolution.
        input_readout: The readout also reads the pooled standardized input rows (and has
            two hidden layers, like the baseline's MLP).

    Shapes:
        - x: ``(B*9, node_dim)``; edge_index: ``(2, E)``; edge_type: ``(E,)``;
          batch: ``(B*9,)``; study: ``(B, study_dim)``
        - Output: diagnosis logits ``(B, n_classes)``, region logits ``(B*9,)``
    """

    def __init__(
        self,
        node_dim: int,
        study_dim: int,
        n_classes: int,
        *,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.2,
        input_readout: bool = False,
    ) -> None:
        super().__init__()
        self.input_readout = input_readout
        self.norm_x = _Standardize(node_dim)
        self.norm_study = _Standardize(study_dim)
        self.inp = nn.Linear(node_dim + study_dim, hidden)
        self.convs = nn.ModuleList(RGCNConv(hidden, hidden, len(EDGE_TYPES)) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.region_head = nn.Linear(hidden, 1)
        if input_readout:
            self.readout = _mlp(2 * hidden + 2 * node_dim + study_dim, hidden, n_classes, dropout, hidden_layers=2)
        else:
            self.readout = _mlp(2 * hidden + study_dim, hidden, n_classes, dropout, hidden_layers=1)

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_type: torch.Tensor,
        batch: torch.Tensor,
        study: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Diagnosis logits and region logits of a batch of region graphs (see the class ``Shapes``)."""
        s = self.norm_study(study)
        xs = self.norm_x(x)
        h = self.drop(torch.relu(self.inp(torch.cat([xs, s[batch]], dim=1))))
        for conv in self.convs:
            h = h + self.drop(torch.relu(conv(h, edge_index, edge_type)))
        region = self.region_head(h).squeeze(-1)
        parts = [global_mean_pool(h, batch), global_max_pool(h, batch)]
        if self.input_readout:
            parts += [global_mean_pool(xs, batch), global_max_pool(xs, batch)]
        return self.readout(torch.cat([*parts, s], dim=1)), region


class PooledMLP(nn.Module):
    """No-graph baseline: mean- and max-pooled node rows plus the study vector, then an MLP.

    Args:
        node_dim: Node row width.
        study_dim: Study vector width.
        n_classes: Diagnoses.
        hidden: Hidden width.
        dropout: Dropout.

    Shapes:
        - x: ``(B*9, node_dim)``; batch: ``(B*9,)``; study: ``(B, study_dim)``
        - Output: diagnosis logits ``(B, n_classes)``
    """

    def __init__(
        self, node_dim: int, study_dim: int, n_classes: int, *, hidden: int = 64, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.norm_x = _Standardize(node_dim)
        self.norm_study = _Standardize(study_dim)
        self.net = _mlp(2 * node_dim + study_dim, hidden, n_classes, dropout, hidden_layers=2)

    def forward(self, x: torch.Tensor, batch: torch.Tensor, study: torch.Tensor) -> torch.Tensor:
        """Diagnosis logits of a batch of studies (see the class ``Shapes``)."""
        h = self.norm_x(x)
        pooled = torch.cat([global_mean_pool(h, batch), global_max_pool(h, batch), self.norm_study(study)], dim=1)
        return self.net(pooled)


class MeanEnsemble(nn.Module):
    """Members of one architecture, trained from different seeds; outputs averaged.

    Averaging the logits of independently initialized networks (deep ensembles,
    Lakshminarayanan et al., NeurIPS 2017) removes most of the seed-to-seed spread of a
    small model trained on a few hundred studies.

    Args:
        members: Networks with the same ``forward`` signature (all :class:`RegionGNN` or all
            :class:`PooledMLP`).

    Shapes:
        As the members: each output (or each element of a tuple output) is the mean over
        the members.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def kind(self) -> type[nn.Module]:
        """Class of the members."""
        return type(self.members[0])

    def forward(self, *args: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Mean of the members' outputs (see the class ``Shapes``)."""
        outs = [m(*args) for m in self.members]
        if isinstance(outs[0], tuple):
            return tuple(torch.stack(parts).mean(0) for parts in zip(*outs, strict=True))
        return torch.stack(outs).mean(0)
