"""Alignment stages (b) contrastive and (c) multi-task, on cached examples.

* (b) InfoNCE (Oord et al., 2018; CLIP's symmetric form, Radford et al., 2021) between the
  pooled volume embedding and the report embedding.
* (c) multi-task fine-tuning: phrase grounding (minus log of the attention mass, averaged
  over heads and the phrase's word pieces, that falls on the described nodule's tokens),
  the same retrieval loss, per-lobe nodule classification from the volume tokens, and
  "supported by the image" classification of real vs counterfactual phrases from the
  fused (gated) phrase vectors.

Both are seeded; each writes one JSON line per epoch to ``log.jsonl``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from medmm.fusion.batching import Batch, collate
from medmm.fusion.examples import FusionExample
from medmm.fusion.model import AlignmentModel
from medmm.text.encoder import TextEncoding

__all__ = ["StageConfig", "grounding_mass", "phrase_inputs", "phrase_vector", "train_stage"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageConfig:
    """Loss weights and optimisation of one stage (``contrastive`` = stage b only)."""

    epochs: int = 30
    batch: int = 8
    lr: float = 1e-3
    contrastive: float = 1.0
    grounding: float = 0.0
    regions: float = 0.0
    support: float = 0.0


def _infonce(model: AlignmentModel, b: Batch, vol: torch.Tensor) -> torch.Tensor:
    v = model.volume_embedding(vol, b.vol_mask)
    r = model.report_embedding(b.sentence)
    logits = model.logit_scale.exp().clamp(max=100) * v @ r.T
    target = torch.arange(len(v))
    return (functional.cross_entropy(logits, target) + functional.cross_entropy(logits.T, target)) / 2


def phrase_vector(fused: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Mean fused vector of a phrase's word pieces. Shapes: (T, D), (P,) -> (D,)."""
    return fused[idx].mean(0)


def phrase_inputs(
    examples: Sequence[FusionExample],
) -> tuple[list[TextEncoding], list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """Keep only the phrases' word pieces (real, then counterfactual) as attention queries.

    Cross-attention rows do not depend on one another (the text side has no
    self-attention here), so attending with the phrases alone gives exactly their rows of
    the full report's attention, at a fraction of the cost.

    Returns:
        Per example: the shortened encoding, and the row indices of each real and each
        counterfactual phrase in it.
    """
    texts, real, counter = [], [], []
    for ex in examples:
        pieces = [ex.text.tokens[idx] for idx in ex.phrases]
        n_real = len(pieces)
        if ex.counter is not None:
            pieces += [ex.counter.tokens[idx] for idx in ex.counter_phrases]
        rows, pos = [], 0
        for p in pieces:
            rows.append(torch.arange(pos, pos + len(p)))
            pos += len(p)
        tokens = torch.cat(pieces) if pieces else torch.zeros(0, ex.text.tokens.shape[1])
        texts.append(TextEncoding(tokens, torch.zeros(len(tokens), 2, dtype=torch.long), ex.text.sentence, 1))
        real.append(rows[:n_real])
        counter.append(rows[n_real:])
    return texts, real, counter


def grounding_mass(attn: torch.Tensor, rows: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Attention mass each phrase puts on its nodule's tokens (heads and word pieces averaged).

    Written as two small matrix products, not per-phrase indexing: indexing the
    (H, T, N) attention once per phrase made backward allocate a full-size gradient for
    every phrase (7 s per batch instead of under 1 s).

    Shapes:
        attn: (H, T, N); rows[p]: word-piece rows of phrase p; targets[p]: its token indices
        -> (P,)
    """
    mean = attn.mean(0)  # (T, N)
    pick = torch.zeros(len(rows), mean.shape[0], dtype=mean.dtype)
    mask = torch.zeros(len(rows), mean.shape[1], dtype=mean.dtype)
    for p, (r, t) in enumerate(zip(rows, targets, strict=True)):
        pick[p, r] = 1.0 / len(r)
        mask[p, t] = 1.0
    return ((pick @ mean) * mask).sum(-1)


def _losses(model: AlignmentModel, examples: Sequence[FusionExample], cfg: StageConfig) -> dict[str, torch.Tensor]:
    texts, real, counter = phrase_inputs(examples)
    b = collate(list(examples), texts=texts)
    if cfg.grounding or cfg.support:
        fused, attn, vol = model(*b.model_inputs())
    else:  # stage b needs the volume side only
        vol = model.volume(b.vol_features, b.vol_lobes, b.vol_positions, b.centre)
    out: dict[str, torch.Tensor] = {}
    if cfg.contrastive:
        out["contrastive"] = _infonce(model, b, vol)
    if cfg.grounding:
        terms = [grounding_mass(attn[i], real[i], ex.targets) for i, ex in enumerate(examples) if ex.targets]
        if terms:
            out["grounding"] = -torch.log(torch.cat(terms) + 1e-6).mean()
    if cfg.regions:
        out["regions"] = functional.binary_cross_entropy_with_logits(
            model.region_logits(vol, b.vol_lobes, b.vol_mask), torch.stack([e.regions for e in examples])
        )
    if cfg.support:
        logits, labels = [], []
        for i in range(len(examples)):
            for rows, label in [(r, 1.0) for r in real[i]] + [(r, 0.0) for r in counter[i]]:
                logits.append(model.support_head(phrase_vector(fused[i], rows))[0])
                labels.append(label)
        if logits:
            out["support"] = functional.binary_cross_entropy_with_logits(torch.stack(logits), torch.tensor(labels))
    return out


def train_stage(
    model: AlignmentModel,
    train: Sequence[FusionExample],
    val: Sequence[FusionExample],
    cfg: StageConfig,
    out_dir: str | Path,
    *,
    seed: int = 0,
) -> AlignmentModel:
    """Train one stage in place; keep the epoch with the lowest validation loss.

    Args:
        model: Model to train (modified in place).
        train: Training examples.
        val: Validation examples (best epoch by their loss).
        cfg: Loss weights and optimisation.
        out_dir: Folder for ``log.jsonl``.
        seed: Seed of the batch order.

    Returns:
        ``model`` with the best validation epoch's weights.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = {
        "contrastive": cfg.contrastive,
        "grounding": cfg.grounding,
        "regions": cfg.regions,
        "support": cfg.support,
    }
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    best, best_state = float("inf"), None
    t0 = time.time()
    with (out / "log.jsonl").open("w") as logf:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            order = rng.permutation(len(train))
            run: dict[str, list[float]] = {}
            for s in range(0, len(order), cfg.batch):
                chunk = [train[i] for i in order[s : s + cfg.batch]]
                if len(chunk) < 2:
                    continue
                parts = _losses(model, chunk, cfg)
                loss = sum(weights[k] * v for k, v in parts.items())
                opt.zero_grad()
                loss.backward()  # type: ignore[union-attr]
                opt.step()
                for k, v in parts.items():
                    run.setdefault(k, []).append(float(v.detach()))
            model.eval()
            with torch.no_grad():
                vparts: dict[str, list[float]] = {}
                for s in range(0, len(val), cfg.batch):
                    for k, v in _losses(model, list(val[s : s + cfg.batch]), cfg).items():
                        vparts.setdefault(k, []).append(float(v))
            vloss = sum(weights[k] * float(np.mean(v)) for k, v in vparts.items())
            rec = {
                "epoch": epoch,
                "train": {k: round(float(np.mean(v)), 4) for k, v in run.items()},
                "val": {k: round(float(np.mean(v)), 4) for k, v in vparts.items()},
                "gate": round(model.cross.gate_value, 4),
                "s": round(time.time() - t0, 1),
            }
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            log.info("epoch %s", rec)
            if vloss < best:
                best = vloss
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()
