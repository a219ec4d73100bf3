"""Training loop of the nodule CNN: seeded, resumable, logged as JSON lines.

Each step draws a batch of positives (candidate and nodule-centred patches) and
negatives; negatives are drawn half uniformly and half in proportion to their last
classification loss (online hard-negative mining, in the spirit of Shrivastava et al.,
CVPR 2016), so the vessel crossings the network still gets wrong come back more often.

Positives are drawn uniformly over positive patches (``positive_sampling="patch"``, the
default, as detector v2 was trained). A 19 mm nodule yields ~35 candidate patches and a
4 mm perifissural one 3-4, so large nodules fill most positive draws; detector v2 scores a
median p of 0.02 on its own training patches of perifissural nodules.
``positive_sampling="nodule"`` draws half the positives uniformly over *nodules* and half
by their last loss (hard positives). Tried on 2026-11-29 with everything else equal, it
did not help: perifissural training patches rose only to a median p of 0.05, validation
patch AUC fell 0.996 -> 0.992, and held-out CPM went 0.853 -> 0.834 (large nodules got
fewer draws). The option stays for experiments. A centre-pooled head
(``centre_pool=True``) trained with a perifissural-rich extra set did not help either
(held-out CPM 0.834; docs/architecture.md).

Patches are augmented on the fly (:mod:`medmm.detect.augment`).

Loss: binary cross-entropy on the nodule logit, plus, on positives only, smooth-L1 on
the centre offset (mm), L1 on log diameter, cross-entropy on texture and BCE on
calcification (where the source gives them).

After every epoch the validation patches (centre crop, no augmentation) are scored;
the epoch with the highest validation AUC is kept (ranking is what detection needs; the
summed loss also moves with the regression heads, and the probabilities are calibrated
afterwards anyway). ``out/checkpoint.pt`` (model,
optimizer, sampler and random states; loaded with ``weights_only=True``) lets a killed
run resume; ``out/log.jsonl`` holds one line per epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from medmm.detect.augment import AugmentConfig, augment_batch, center_crop
from medmm.detect.model import PATCH_SIZE, NoduleNet
from medmm.detect.patches import normalize_hu
from medmm.detect.training_data import PatchSet
from medmm.io.atomic import atomic_path

__all__ = [
    "EpochLog",
    "TrainConfig",
    "evaluate_patches",
    "fit_platt",
    "nodule_groups",
    "positive_weights",
    "selected_epoch",
    "train_detector",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings.

    Attributes:
        epochs: Passes of ``steps_per_epoch`` steps.
        steps_per_epoch: Optimizer steps per epoch.
        batch_size: Patches per step.
        positive_fraction: Share of positives in a batch.
        lr: Peak learning rate (AdamW, cosine decay, 1-epoch warm-up).
        weight_decay: AdamW weight decay.
        width: Network width (:class:`~medmm.detect.model.NoduleNet`).
        seed: Seeds sampling, augmentation and initialization.
        threads: Torch CPU threads.
        max_steps: Stop after this many steps in total (a smoke run), or None.
        augment: Augmentation ranges.
        positive_sampling: ``"patch"``: uniform over positive patches (default, detector
            v2). ``"nodule"``: half the positive draws uniform over nodules, half by last
            classification loss (hard positives).
        centre_pool: Give the network the centre-pooled head (:class:`~medmm.detect.model.CentreGlobalPool`).
        select: Which epoch's weights to return: ``"auc"`` (default) the highest validation
            patch AUC, ``"last"`` the final epoch (the end of the cosine schedule; the usual
            choice when fine-tuning, where a 16-scan validation AUC is too noisy to pick by).
    """

    epochs: int = 12
    steps_per_epoch: int = 200
    batch_size: int = 64
    positive_fraction: float = 0.35
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 8
    seed: int = 0
    threads: int = 2
    max_steps: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    positive_sampling: str = "patch"
    centre_pool: bool = False
    select: str = "auc"

    def __post_init__(self) -> None:
        if self.positive_sampling not in ("nodule", "patch"):
            raise ValueError(f"positive_sampling must be 'nodule' or 'patch', not {self.positive_sampling!r}")
        if self.select not in ("auc", "last"):
            raise ValueError(f"select must be 'auc' or 'last', not {self.select!r}")


def nodule_groups(data: PatchSet, idx: np.ndarray) -> np.ndarray:
    """Which nodule each positive patch shows, as a group number.

    Patches of one nodule share their case and reference diameter (the cache does not
    store the nodule's index; two nodules of one case with the same diameter to 0.01 mm
    would be counted as one).

    Shapes:
        - idx: ``(P,)`` indices of positive patches in ``data``
        - return: ``(P,)`` group numbers ``0 .. G-1``
    """
    keys = np.stack([data.case[idx].astype(np.int64), np.round(data.diameter_mm[idx] * 100).astype(np.int64)], 1)
    _, groups = np.unique(keys, axis=0, return_inverse=True)
    return groups.reshape(-1)


def positive_weights(data: PatchSet, idx: np.ndarray, mode: str) -> np.ndarray:
    """Sampling probabilities of the positive patches ``idx`` (sum 1).

    ``"nodule"``: every nodule equally likely, its patches sharing its share;
    ``"patch"``: every patch equally likely.
    """
    if mode == "patch":
        return np.full(len(idx), 1.0 / len(idx))
    groups = nodule_groups(data, idx)
    counts = np.bincount(groups)
    w = 1.0 / counts[groups]
    return w / w.sum()


@dataclass(frozen=True)
class EpochLog:
    """One line of ``log.jsonl``."""

    epoch: int
    step: int
    train_loss: float
    val_loss: float
    val_auc: float | None
    val_diameter_mae_mm: float | None
    val_offset_error_mm: float | None
    val_texture_accuracy: float | None
    seconds: float


def _losses(
    out: Any, label: torch.Tensor, offset: torch.Tensor, diam: torch.Tensor, tex: torch.Tensor, calc: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Total loss and per-sample classification loss."""
    cls = F.binary_cross_entropy_with_logits(out.logit, label, reduction="none")
    loss = cls.mean()
    pos = label > 0.5
    if pos.any():
        loss = loss + 0.2 * F.smooth_l1_loss(out.offset_mm[pos], offset[pos], beta=1.0)
        loss = loss + F.l1_loss(out.log_diameter[pos], torch.log(diam[pos].clamp_min(1.0)))
        known = pos & (tex >= 0)
        if known.any():
            loss = loss + 0.5 * F.cross_entropy(out.texture_logits[known], tex[known].long())
        known = pos & (calc >= 0)
        if known.any():
            loss = loss + 0.5 * F.binary_cross_entropy_with_logits(out.calcified_logit[known], calc[known].float())
    return loss, cls.detach()


def _auc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    pos, neg = scores[truth > 0.5], scores[truth <= 0.5]
    if len(pos) == 0 or len(neg) == 0:
        return None
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@torch.no_grad()
def evaluate_patches(model: NoduleNet, data: PatchSet, batch_size: int = 128) -> dict[str, float | None]:
    """Score centre-cropped patches without augmentation.

    Returns:
        ``loss``, ``auc``, ``diameter_mae_mm``, ``offset_error_mm`` (median, positives),
        ``texture_accuracy`` (positives with known texture).
    """
    model.eval()
    logits, offs, diams, texs, losses = [], [], [], [], []
    for s in range(0, len(data), batch_size):
        sl = slice(s, s + batch_size)
        x = normalize_hu(center_crop(torch.from_numpy(data.patches[sl]), PATCH_SIZE))[:, None]
        out = model(x)
        t = [
            torch.from_numpy(a[sl])
            for a in (data.label, data.offset_mm, data.diameter_mm, data.texture, data.calcified)
        ]
        loss, _ = _losses(out, *t)
        losses.append(float(loss) * len(x))
        logits.append(out.logit.numpy())
        offs.append(out.offset_mm.numpy())
        diams.append(out.log_diameter.exp().numpy())
        texs.append(out.texture_logits.argmax(1).numpy())
    logit, off, diam, tex = (np.concatenate(a) for a in (logits, offs, diams, texs))
    pos = data.label > 0.5
    known = pos & (data.texture >= 0)
    return {
        "loss": float(sum(losses) / max(len(data), 1)),
        "auc": _auc(data.label, logit),
        "diameter_mae_mm": float(np.mean(np.abs(diam[pos] - data.diameter_mm[pos]))) if pos.any() else None,
        "offset_error_mm": float(np.median(np.linalg.norm(off[pos] - data.offset_mm[pos], axis=1)))
        if pos.any()
        else None,
        "texture_accuracy": float(np.mean(tex[known] == data.texture[known])) if known.any() else None,
    }


def selected_epoch(logs: list[EpochLog], select: str) -> EpochLog | None:
    """The epoch :func:`train_detector` returns the weights of (``TrainConfig.select``).

    ``"auc"``: the highest validation AUC (validation loss when AUC is undefined), the
    later epoch on ties, as ``best.pt`` is kept during training; ``"last"``: the final one.
    """
    if not logs:
        return None
    if select == "last":
        return logs[-1]
    return max(logs, key=lambda e: (e.val_auc if e.val_auc is not None else -e.val_loss, e.epoch))


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train_detector(
    train: PatchSet,
    val: PatchSet,
    out_dir: str | os.PathLike[str],
    config: TrainConfig = TrainConfig(),
    *,
    resume: bool = True,
    on_step: Callable[[int, int, float], None] | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
) -> tuple[NoduleNet, list[EpochLog]]:
    """Train (or resume training) the nodule CNN.

    Args:
        train: Training patches.
        val: Validation patches (other cases than ``train``).
        out_dir: Holds ``checkpoint.pt``, ``best.pt`` and ``log.jsonl``.
        config: Settings.
        resume: Continue from ``out_dir/checkpoint.pt`` when present.
        on_step: Called as ``on_step(step, total_steps, loss)`` (progress bars).
        init_state: Weights to start from instead of a random initialization (fine-tuning
            an earlier detector; must fit ``config.width`` / ``config.centre_pool``). A
            resumed checkpoint takes precedence.

    Returns:
        ``(model of the selected epoch (``config.select``), epoch logs)``.

    Raises:
        ValueError: No positive or no negative patches, or ``init_state`` does not fit.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = NoduleNet(width=config.width, centre_pool=config.centre_pool)
    if init_state is not None:
        try:
            model.load_state_dict(dict(init_state), strict=True)
        except RuntimeError as exc:
            raise ValueError(f"init_state does not fit NoduleNet(width={config.width}): {exc}") from exc
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    pos_idx = np.flatnonzero(train.label > 0.5)
    neg_idx = np.flatnonzero(train.label <= 0.5)
    if len(pos_idx) == 0 or len(neg_idx) == 0:
        raise ValueError("training needs both positive and negative patches")
    hardness = np.ones(len(neg_idx))
    pos_uniform = positive_weights(train, pos_idx, config.positive_sampling)
    pos_hardness = np.ones(len(pos_idx))
    total = config.epochs * config.steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    start_epoch, step, best = 0, 0, -math.inf
    logs: list[EpochLog] = []
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        st = torch.load(ckpt, weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        hardness = st["hardness"].numpy()
        if "pos_hardness" in st:
            pos_hardness = st["pos_hardness"].numpy()
        gen.set_state(st["torch_gen"])
        rng.bit_generator.state = st["numpy_rng"]
        start_epoch, step, best = st["epoch"], st["step"], st["best"]
        logs = [EpochLog(**e) for e in st["logs"]]
        logger.info("resuming from epoch %d (step %d)", start_epoch, step)

    def lr_at(s: int) -> float:
        warm = config.steps_per_epoch
        if s < warm:
            return config.lr * (s + 1) / warm
        return 0.5 * config.lr * (1 + math.cos(math.pi * (s - warm) / max(total - warm, 1)))

    n_pos = max(1, round(config.batch_size * config.positive_fraction))
    n_neg = config.batch_size - n_pos
    tensors = {
        k: torch.from_numpy(getattr(train, k)) for k in ("label", "offset_mm", "diameter_mm", "texture", "calcified")
    }
    for epoch in range(start_epoch, config.epochs):
        if step >= total:
            break
        t0 = time.perf_counter()
        model.train()
        running = []
        for _ in range(config.steps_per_epoch):
            if step >= total:
                break
            if config.positive_sampling == "nodule":
                pprob = 0.5 * pos_uniform + 0.5 * pos_hardness / pos_hardness.sum()
                psel = rng.choice(len(pos_idx), n_pos, p=pprob / pprob.sum())
            else:
                psel = rng.choice(len(pos_idx), n_pos)  # draws as rng.choice(pos_idx, n_pos) did
            p = pos_idx[psel]
            prob = 0.5 / len(neg_idx) + 0.5 * hardness / hardness.sum()
            nsel = rng.choice(len(neg_idx), n_neg, p=prob / prob.sum())
            idx = np.concatenate([p, neg_idx[nsel]])
            patches = torch.from_numpy(train.patches[idx])
            lab = tensors["label"][idx]
            x, off, diam = augment_batch(
                patches,
                tensors["offset_mm"][idx],
                tensors["diameter_mm"][idx],
                lab,
                out_size=PATCH_SIZE,
                config=config.augment,
                gen=gen,
            )
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            out_b = model(normalize_hu(x))
            loss, cls = _losses(out_b, lab, off, diam, tensors["texture"][idx], tensors["calcified"][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            hardness[nsel] = np.clip(cls[n_pos:].numpy(), 0.01, 5.0)
            pos_hardness[psel] = np.clip(cls[:n_pos].numpy(), 0.01, 5.0)
            running.append(float(loss.detach()))
            step += 1
            if on_step is not None:
                on_step(step, total, float(loss.detach()))
        metrics = evaluate_patches(model, val)
        entry = EpochLog(
            epoch + 1,
            step,
            float(np.mean(running)) if running else float("nan"),
            float(metrics["loss"] or 0.0),
            metrics["auc"],
            metrics["diameter_mae_mm"],
            metrics["offset_error_mm"],
            metrics["texture_accuracy"],
            round(time.perf_counter() - t0, 1),
        )
        logs.append(entry)
        with open(out / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(entry)) + "\n")
        logger.info("epoch %d: %s", epoch + 1, entry)
        score = entry.val_auc if entry.val_auc is not None else -entry.val_loss
        if score >= best:
            best = score
            _save_checkpoint(out / "best.pt", {"model": model.state_dict(), "epoch": epoch + 1})
        _save_checkpoint(
            ckpt,
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "hardness": torch.from_numpy(hardness),
                "pos_hardness": torch.from_numpy(pos_hardness),
                "torch_gen": gen.get_state(),
                "numpy_rng": rng.bit_generator.state,
                "epoch": epoch + 1,
                "step": step,
                "best": best,
                "logs": [asdict(e) for e in logs],
                "config": asdict(config),
            },
        )
    best_path = out / "best.pt"
    # With select="last" the model already holds the last epoch (trained now, or resumed).
    if config.select == "auc" and best_path.exists():
        model.load_state_dict(torch.load(best_path, weights_only=True)["model"])
    model.eval()
    return model, logs


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling: ``(scale, bias)`` minimizing the log loss of ``sigmoid(scale * logit + bias)``.

    Shapes:
        - logits, labels: ``(N,)``
    """
    x = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(params[0] * x + params[1], y) + 1e-4 * params[0] ** 2
        loss.backward()
        return loss

    opt.step(closure)
    a, b = params.detach().tolist()
    return float(a), float(b)
