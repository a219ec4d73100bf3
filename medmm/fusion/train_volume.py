"""Alignment stage (a), unimodal: the volume encoder fitted on detection targets.

Per 8 mm token the encoder predicts whether the token lies on a nodule (its centre within
``max(radius, 4.5 mm)`` of the nodule centre, so the token holding a small nodule's centre
counts) and the nodule's log diameter there. The loss is class-balanced binary
cross-entropy (the mean over positive tokens plus the mean over negative ones: a crop
has a handful of nodule tokens among 4,096), plus smooth L1 on the log diameter. (CenterNet's single-token
focal loss and a soft Gaussian target both learned too slowly for a CPU budget: after
1,000 steps the heatmap was still flat.)

Training uses random 64^3-voxel crops of the 2 mm grid (128 mm cubes) of the network
input (:func:`~medmm.fusion.volume_encoder.encoder_input`, computed once per case on the
whole grid, kept as float16): four of five are placed around a nodule, one anywhere in
the lungs; random flips. Seeded, logged to ``log.jsonl``, the latest weights in
``last.safetensors``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch.nn import functional

from medmm.fusion.grid import TOKEN_STRIDE
from medmm.fusion.training_data import AlignmentCase
from medmm.fusion.volume_encoder import VolumeEncoder, encoder_input

__all__ = ["heatmap_targets", "train_volume_encoder"]

log = logging.getLogger(__name__)

CROP = 64
POSITIVE_MIN_MM = 4.5


def heatmap_targets(positions_lps_mm: np.ndarray, nodules: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """On-nodule and log-diameter targets at token positions.

    Args:
        positions_lps_mm: Token centres.
        nodules: Ground-truth nodules (``center_lps_mm``, ``diameter_mm``).

    Returns:
        ``(on_nodule, log_diameter)`` (0/1, and the log diameter of that nodule).

    Shapes:
        positions_lps_mm: (N, 3) -> (N,), (N,)
    """
    heat = np.zeros(len(positions_lps_mm), np.float32)
    logd = np.zeros(len(positions_lps_mm), np.float32)
    for n in nodules:
        c = np.asarray(n["center_lps_mm"], float)
        d = np.sqrt(((positions_lps_mm - c) ** 2).sum(1))
        h = (d <= max(n["diameter_mm"] / 2, POSITIVE_MIN_MM)).astype(np.float32)
        better = h > heat
        heat[better] = h[better]
        logd[better] = np.log(n["diameter_mm"])
    return heat, logd


def _crop(
    case: AlignmentCase, inputs: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random training crop: network input (4, 64, 64, 64), heatmap and log-diameter targets."""
    g = case.grid
    shape = np.array(g.hu.shape)
    if case.nodules and rng.random() < 0.8:
        n = case.nodules[rng.integers(len(case.nodules))]
        inv = np.linalg.inv(g.affine)
        centre = inv[:3, :3] @ np.asarray(n["center_lps_mm"]) + inv[:3, 3] + rng.uniform(-12, 12, 3)
    else:
        lung = np.argwhere(g.lobes[::4, ::4, ::4] > 0) * 4
        centre = lung[rng.integers(len(lung))].astype(float) if len(lung) else shape / 2
    start = np.clip(np.round(centre - CROP / 2) // TOKEN_STRIDE * TOKEN_STRIDE, 0, None).astype(int)
    x = np.zeros((inputs.shape[0], CROP, CROP, CROP), np.float32)
    x[0] = -1.0  # normalized -1000 HU outside the grid (blob channels 0)
    sl = tuple(slice(s, min(s + CROP, n)) for s, n in zip(start, shape, strict=True))
    part = inputs[(slice(None), *sl)]
    x[:, : part.shape[1], : part.shape[2], : part.shape[3]] = part
    t = CROP // TOKEN_STRIDE
    idx = np.stack(np.meshgrid(*[np.arange(t)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = g.voxel_to_world(start + idx * TOKEN_STRIDE + (TOKEN_STRIDE - 1) / 2)
    heat, logd = heatmap_targets(pos, case.nodules)
    heat, logd = heat.reshape(t, t, t), logd.reshape(t, t, t)
    for axis in range(3):
        if rng.random() < 0.5:
            x, heat, logd = np.flip(x, axis + 1), np.flip(heat, axis), np.flip(logd, axis)
    return np.ascontiguousarray(x), np.ascontiguousarray(heat), np.ascontiguousarray(logd)


def _loss(model: VolumeEncoder, x: torch.Tensor, heat: torch.Tensor, logd: torch.Tensor) -> torch.Tensor:
    logit, pred_d = model.heads(model(x))
    per = functional.binary_cross_entropy_with_logits(logit, heat, reduction="none")
    pos = heat > 0.5
    loss = per[~pos].mean() + (per[pos].mean() if pos.any() else 0.0)
    near = pos
    if near.any():
        loss = loss + functional.smooth_l1_loss(pred_d[near], logd[near])
    return loss


def train_volume_encoder(
    train: list[AlignmentCase],
    val: list[AlignmentCase],
    out_dir: str | Path,
    *,
    steps: int = 1200,
    batch: int = 4,
    lr: float = 2e-3,
    seed: int = 0,
) -> VolumeEncoder:
    """Fit the volume encoder and its heads (stage a).

    Args:
        train: Training cases.
        val: Validation cases (loss on fixed crops, logged).
        out_dir: Log folder (``log.jsonl``).
        steps: Optimiser steps.
        batch: Crops per step.
        lr: Peak learning rate (one-cycle schedule).
        seed: Seed of crops and initialisation.

    Returns:
        The trained encoder (eval mode).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = VolumeEncoder()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.02)
    log.info("stage a: blob channels of %d cases", len(train) + len(val))
    inputs = [encoder_input(c.grid.hu).numpy().astype(np.float16) for c in train]
    vrng = np.random.default_rng(seed + 1)
    val_crops = [_crop(c, encoder_input(c.grid.hu).numpy(), vrng) for c in val for _ in range(2)]
    t0 = time.time()
    with (out / "log.jsonl").open("w") as logf:
        for step in range(1, steps + 1):
            model.train()
            picks = rng.integers(len(train), size=batch)
            crops = [_crop(train[i], inputs[i], rng) for i in picks]
            x, heat, logd = (torch.from_numpy(np.stack(a).astype(np.float32)) for a in zip(*crops, strict=True))
            loss = _loss(model, x, heat, logd)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if step % 100 == 0 or step == steps:
                model.eval()
                with torch.inference_mode():
                    vl = [float(_loss(model, *(torch.from_numpy(a[None]) for a in c))) for c in val_crops]
                rec = {"step": step, "loss": float(loss), "val_loss": float(np.mean(vl)), "s": time.time() - t0}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                log.info("stage a %s", rec)
                save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "last.safetensors"))
    return model.eval()
