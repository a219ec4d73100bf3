"""Training the candidate ranker (``medmm train ranker``).

1. **Peaks per case** (:func:`case_peaks`, cached by :func:`prepare_peak_cache`): each
   training scan goes through the inference path (lung mask, 1 mm region,
   :func:`~medmm.detect.candidates.blob_peaks`) and every peak is labelled: ``1`` within
   a reference nodule's radius (the LUNA16 hit rule), ``-1`` (ignored) up to 1.5 radii +
   2 mm from one or near an excluded finding, ``0`` otherwise.
2. **Fitting** (:func:`train_ranker`): minibatch AdamW on weighted binary cross-entropy.
   Negatives are sampled per case (the hand-made score's hardest plus a random share,
   re-weighted by their sampling rate); each nodule's positive peaks share a total weight
   equal to the negatives' total divided evenly among nodules (one well-ranked peak per
   nodule is what counts, and a large nodule has many peaks).
3. **Selection**: after each epoch, candidate recall on the validation cases -- the
   share of their nodules hit by one of the ``max_candidates`` peaks kept after ranking
   and suppression, exactly as at inference (:func:`candidate_recall`). The epoch with
   the best recall (ties: lower validation loss) is kept.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medmm.anatomy import segment_lungs
from medmm.detect.candidates import FEATURE_NAMES, blob_peaks, lung_region_isotropic, suppress
from medmm.detect.ranker import CandidateRanker
from medmm.detect.training_data import TrainingCase, load_cached
from medmm.errors import MedmmError
from medmm.io.atomic import atomic_path
from medmm.parallel import process_map
from medmm.types import Volume

__all__ = [
    "CasePeaks",
    "RankerConfig",
    "candidate_recall",
    "case_peaks",
    "load_peak_cache",
    "prepare_peak_cache",
    "train_ranker",
]

logger = logging.getLogger(__name__)


@dataclass
class CasePeaks:
    """One scan's labelled blob peaks.

    Shapes:
        - features: ``(N, F)``
        - label: ``(N,)`` 1 nodule, 0 not, -1 ignored
        - nodule: ``(N,)`` index of the nodule a positive peak hits, else -1
        - centre_mm: ``(N, 3)`` LPS mm
        - diameter_mm: ``(N,)`` the peak's scale
        - score: ``(N,)`` hand-made filter score
    """

    case_id: str
    features: np.ndarray
    label: np.ndarray
    nodule: np.ndarray
    centre_mm: np.ndarray
    diameter_mm: np.ndarray
    score: np.ndarray
    n_nodules: int

    def save(self, path: Path) -> None:
        """Write the peaks to ``path`` (.npz), atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                features=self.features,
                label=self.label,
                nodule=self.nodule,
                centre_mm=self.centre_mm,
                diameter_mm=self.diameter_mm,
                score=self.score,
                n_nodules=np.array(self.n_nodules),
                case_id=np.array(self.case_id),
            )

    @classmethod
    def load(cls, path: Path) -> CasePeaks:
        """Read peaks written by :meth:`save`."""
        with np.load(path) as z:
            return cls(
                case_id=str(z["case_id"]),
                features=z["features"],
                label=z["label"],
                nodule=z["nodule"],
                centre_mm=z["centre_mm"],
                diameter_mm=z["diameter_mm"],
                score=z["score"],
                n_nodules=int(z["n_nodules"]),
            )


def case_peaks(case: TrainingCase, volume: Volume, lung_mask: np.ndarray | None = None) -> CasePeaks:
    """Blob peaks of one scan, labelled against its reference nodules.

    Args:
        case: The case (its nodules and excluded findings).
        volume: Its CT in HU.
        lung_mask: Precomputed lung mask (default: :func:`medmm.anatomy.segment_lungs`).
    """
    mask_src = lung_mask if lung_mask is not None else segment_lungs(volume).lung_mask
    region, mask = lung_region_isotropic(volume, mask_src)
    peaks = blob_peaks(region, mask)
    centres = region.index_to_world(peaks.index.astype(np.float64)) if len(peaks) else np.zeros((0, 3))
    label = np.zeros(len(peaks), np.int8)
    nodule = np.full(len(peaks), -1, np.int16)
    if case.nodules and len(peaks):
        nod = np.array([n.center_lps_mm for n in case.nodules], float)
        radius = np.array([n.diameter_mm / 2.0 for n in case.nodules], float)
        dist = np.linalg.norm(centres[:, None, :] - nod[None, :, :], axis=2)
        nearest = np.argmin(dist / radius[None, :], axis=1)
        d_near = dist[np.arange(len(peaks)), nearest]
        r_near = radius[nearest]
        label[d_near <= 1.5 * r_near + 2.0] = -1
        pos = d_near <= r_near
        label[pos] = 1
        nodule[pos] = nearest[pos]
    for centre, diam in case.excluded:
        d = np.linalg.norm(centres - np.asarray(centre), axis=1)
        label[(d <= max(diam, 10.0)) & (label == 0)] = -1
    return CasePeaks(
        case.case_id,
        peaks.features,
        label,
        nodule,
        centres.astype(np.float32),
        peaks.diameter_mm.astype(np.float32),
        peaks.score.astype(np.float32),
        len(case.nodules),
    )


def _prepare_one(args: tuple[TrainingCase, Path]) -> tuple[str, str | None]:
    case, cache = args
    path = cache / f"{case.case_id}.peaks.npz"
    if path.exists():
        return case.case_id, None
    try:
        cp = case_peaks(case, case.load())
    except MedmmError as exc:
        return case.case_id, str(exc)
    cp.save(path)
    return case.case_id, None


def prepare_peak_cache(
    cases: Sequence[TrainingCase],
    cache_dir: str | os.PathLike[str],
    *,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Compute and cache every case's labelled peaks (skipping cached ones).

    Returns:
        The ids of the cases now cached (failed cases are logged and left out).
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    results = process_map(_prepare_one, [(c, cache) for c in cases], workers=workers, progress=progress)
    for cid, err in results:
        if err:
            logger.warning("case %s skipped: %s", cid, err)
    return [cid for cid, err in results if not err]


def load_peak_cache(cache_dir: str | os.PathLike[str], case_ids: Sequence[str]) -> list[CasePeaks]:
    """Load cached peaks of the given cases (missing ones skipped with a warning)."""
    return load_cached(cache_dir, case_ids, ".peaks.npz", CasePeaks.load, "peaks")


def candidate_recall(
    cases: Sequence[CasePeaks], scores: Sequence[np.ndarray], max_candidates: int = 300
) -> dict[str, float]:
    """Share of nodules hit by a kept candidate when peaks are ordered by ``scores``.

    Ranking and suppression are those of :func:`~medmm.detect.candidates.find_candidates`.

    Returns:
        ``nodules``, ``hit`` and ``recall``.
    """
    total = hit = 0
    for cp, s in zip(cases, scores, strict=True):
        order = np.argsort(-s, kind="stable")
        kept = suppress(cp.centre_mm.astype(np.float64), cp.diameter_mm.astype(np.float64), order, max_candidates)
        found = {int(m) for m in cp.nodule[kept] if m >= 0}
        total += cp.n_nodules
        hit += len(found)
    return {"nodules": float(total), "hit": float(hit), "recall": hit / total if total else float("nan")}


@dataclass
class RankerConfig:
    """Ranker training settings."""

    epochs: int = 12
    batch_size: int = 2048
    hard_negatives: int = 2000
    random_negatives: int = 4000
    lr: float = 2e-3
    weight_decay: float = 1e-4
    hidden: int = 64
    seed: int = 0
    max_candidates: int = 300


def _weights(
    cases: Sequence[CasePeaks], hard_negatives: int, random_negatives: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacked features, labels and per-row loss weights (ignored rows dropped).

    A scan has ~30k-200k peaks, nearly all noise at the smallest scale, so negatives are
    sampled: each case's ``hard_negatives`` best by hand-made score are kept, and
    ``random_negatives`` of the rest drawn at random and weighted by the inverse of their
    sampling rate, so the loss still estimates the loss over all peaks.
    """
    rng = np.random.default_rng(seed)
    feats, labels, weights = [], [], []
    n_nod = sum(len({int(m) for m in c.nodule[c.label == 1]}) for c in cases)
    n_neg = sum(int((c.label == 0).sum()) for c in cases)
    per_nodule = n_neg / max(n_nod, 1)
    for c in cases:
        neg = np.flatnonzero(c.label == 0)
        neg = neg[np.argsort(-c.score[neg], kind="stable")]
        hard, rest = neg[:hard_negatives], neg[hard_negatives:]
        drawn = rng.choice(rest, size=min(random_negatives, len(rest)), replace=False) if len(rest) else rest
        pos = np.flatnonzero(c.label == 1)
        rows = np.concatenate([pos, hard, drawn])
        w = np.ones(len(rows), np.float32)
        if len(drawn):
            w[len(pos) + len(hard) :] = len(rest) / len(drawn)
        nod = c.nodule[pos]
        for m in np.unique(nod):
            sel = nod == m
            w[: len(pos)][sel] = per_nodule / sel.sum()
        feats.append(c.features[rows])
        labels.append((c.label[rows] == 1).astype(np.float32))
        weights.append(w)
    w_all = np.concatenate(weights)
    return np.concatenate(feats), np.concatenate(labels), w_all / w_all.mean()


def train_ranker(
    train: Sequence[CasePeaks],
    val: Sequence[CasePeaks],
    config: RankerConfig,
    *,
    log_path: str | os.PathLike[str] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[CandidateRanker, dict[str, Any]]:
    """Fit a :class:`CandidateRanker` and keep the epoch with the best validation recall.

    Args:
        train: Training cases' peaks.
        val: Validation cases' peaks (model selection only).
        config: Settings.
        log_path: JSON-lines log of per-epoch losses and recall.
        on_epoch: Called with ``(epoch, metrics)`` after each epoch.

    Returns:
        ``(ranker in eval mode, summary)``; the summary holds the chosen epoch's metrics,
        the hand-made order's recall on the same validation cases, and the settings.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    x, y, w = _weights(train, config.hard_negatives, config.random_negatives, config.seed)
    ranker = CandidateRanker(len(FEATURE_NAMES), hidden=config.hidden)
    ranker.set_standardization(x)
    opt = torch.optim.AdamW(ranker.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    xt, yt, wt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w)
    vx, vy, vw = _weights(val, config.hard_negatives, config.random_negatives, config.seed + 1)
    baseline = candidate_recall(val, [c.score.astype(np.float64) for c in val], config.max_candidates)
    best: tuple[float, float] = (-1.0, float("inf"))
    best_state: dict[str, torch.Tensor] = {}
    best_metrics: dict[str, float] = {}
    log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
    try:
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            ranker.train()
            perm = torch.from_numpy(rng.permutation(len(xt)))
            total = 0.0
            for s in range(0, len(perm), config.batch_size):
                b = perm[s : s + config.batch_size]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(ranker(xt[b]), yt[b], weight=wt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            sched.step()
            val_scores = [ranker.score(c.features) for c in val]
            rec = candidate_recall(val, val_scores, config.max_candidates)
            with torch.no_grad():
                vloss = float(
                    torch.nn.functional.binary_cross_entropy_with_logits(
                        ranker(torch.from_numpy(vx)), torch.from_numpy(vy), weight=torch.from_numpy(vw)
                    )
                )
            metrics = {
                "epoch": float(epoch),
                "train_loss": total / len(perm),
                "val_loss": vloss,
                "val_recall": rec["recall"],
                "seconds": time.perf_counter() - t0,
            }
            if log:
                log.write(json.dumps(metrics) + "\n")
                log.flush()
            if on_epoch:
                on_epoch(epoch, metrics)
            key = (rec["recall"], -vloss)
            if key > (best[0], -best[1]):
                best = (rec["recall"], vloss)
                best_state = {k: v.detach().clone() for k, v in ranker.state_dict().items()}
                best_metrics = metrics
    finally:
        if log:
            log.close()
    ranker.load_state_dict(best_state)
    ranker.eval()
    summary = {
        "config": asdict(config),
        "train_cases": len(train),
        "val_cases": len(val),
        "train_peaks": len(x),
        "train_nodules": float(sum(c.n_nodules for c in train)),
        "chosen": best_metrics,
        "val_recall_handmade_order": baseline["recall"],
        "val_nodules": baseline["nodules"],
    }
    return ranker, summary
