"""``medmm train detector``: prepare patches, train the nodule CNN, export safetensors + card.

Example:
    $ medmm synth synth/ --cases 200 --seed 11 --workers 2
    $ medmm train detector synth/ --out runs/detector --workers 2
    $ medmm analyze sample_dicom/ --weights runs/detector/nodule_detector.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["add_train_parser"]


def _split_cases(
    cases: list[Any], val_root: Path | None, val_fraction: float, max_cases: int | None = None
) -> tuple[list[Any], list[Any]]:
    """Training and validation cases: a given folder, the synthetic 'val' split, or a tail fraction.

    ``max_cases`` keeps the first N training cases and N // 4 (at least one) validation cases.
    """
    from medmm.detect.training_data import discover_cases

    if val_root is not None:
        train, val = cases, discover_cases(val_root)
    else:
        train = [c for c in cases if c.split in ("train", "")]
        val = [c for c in cases if c.split == "val"]
        if not val:
            n_val = max(1, round(len(train) * val_fraction))
            train, val = train[:-n_val], train[-n_val:]
    if max_cases:
        train, val = train[:max_cases], val[: max(1, max_cases // 4)]
    return train, val


def _discover(roots: list[Path]) -> list[Any]:
    """Cases of every data folder; raises InputError when two share a case id."""
    from medmm.detect.training_data import discover_cases
    from medmm.errors import InputError

    cases = [c for root in roots for c in discover_cases(root)]
    seen: dict[str, Any] = {}
    for c in cases:
        if c.case_id in seen:
            raise InputError(
                f"two training cases share the id {c.case_id!r}",
                hint="Give data folders distinct names; case ids are built from the folder name.",
            )
        seen[c.case_id] = c
    return cases


_DETECTORS: dict[str, Any] = {}


def _val_logits(job: tuple[Any, str]) -> tuple[list[float], list[int]]:
    """Detector logits on one validation case's full candidate set, labelled by the reference."""
    import numpy as np

    from medmm.anatomy import segment_lungs
    from medmm.detect.detector import NoduleDetector

    case, weights = job
    if weights not in _DETECTORS:
        _DETECTORS[weights] = NoduleDetector(weights, threads=1)
    volume = case.load()
    dets = _DETECTORS[weights].detect(volume, segment_lungs(volume).lung_mask, min_probability=0.0)
    labels = []
    for d in dets:
        hit = any(
            np.linalg.norm(np.subtract(d.center_lps_mm, n.center_lps_mm)) <= n.diameter_mm / 2 for n in case.nodules
        )
        labels.append(int(hit))
    return [d.logit for d in dets], labels


def _calibrate(weights: Path, val_cases: list[Any], workers: int) -> dict[str, float]:
    """Fit Platt scaling on the validation cases' detections; returns the card entry."""
    import numpy as np

    from medmm.detect.train import fit_platt
    from medmm.parallel import process_map

    res = process_map(_val_logits, [(c, str(weights)) for c in val_cases], workers=workers)
    logits = np.concatenate([np.asarray(r[0], float) for r in res])
    labels = np.concatenate([np.asarray(r[1], float) for r in res])
    scale, bias = fit_platt(logits, labels)
    return {
        "scale": scale,
        "bias": bias,
        "fitted_on": f"{len(val_cases)} validation cases, {len(labels)} detections, {int(labels.sum())} on nodules",
    }


def _cmd_train_detector(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from medmm import __version__
    from medmm.detect.augment import AugmentConfig
    from medmm.detect.domain import spacing_range
    from medmm.detect.train import TrainConfig, selected_epoch, train_detector
    from medmm.detect.training_data import load_patch_cache, prepare_patch_cache
    from medmm.detect.weights import save_detector
    from medmm.errors import MedmmError

    out: Path = args.out
    cache = args.cache or out / "patches"
    try:
        cases = _discover(args.data)
        train_cases, val_cases = _split_cases(cases, args.val, args.val_fraction, args.max_cases)
        ranker_ref = _copy_ranker(args.ranker, out) if args.ranker else None
    except MedmmError as exc:
        print(f"medmm train detector: {exc}", file=sys.stderr)
        return 2
    init_state, init_ref = None, None
    if args.init_weights is not None:
        from medmm.detect.weights import load_detector

        try:
            init_model, init_card = load_detector(args.init_weights)
        except MedmmError as exc:
            print(f"medmm train detector: {exc}", file=sys.stderr)
            return 2
        # The architecture comes with the weights being fine-tuned.
        args.width = int(init_card["architecture"]["width"])
        args.centre_pool = bool(init_card["architecture"].get("centre_pool", False))
        init_state = init_model.state_dict()
        init_ref = {"name": init_card.get("name"), "sha256": init_card.get("sha256")}
    # Platt scaling always uses every validation scan: a handful of scans holds too few nodules
    # to fit it (v5's fit on 16 of 83 was too conservative). --max-val-cases limits the patch set.
    calib_cases = val_cases
    if args.max_val_cases:
        # Spread over the sources (e.g. a 256- and a 512-matrix set) rather than the first ones.
        step = max(1, len(val_cases) // args.max_val_cases)
        val_cases = val_cases[::step][: args.max_val_cases]
    print(f"{len(train_cases)} training and {len(val_cases)} validation cases; patches cached in {cache}")
    t0 = time.perf_counter()
    with tqdm(total=len(train_cases) + len(val_cases), desc="patches", unit="case", disable=args.quiet) as bar:
        prog = lambda done, total: bar.update(1)  # noqa: E731
        rk = out / ranker_ref["weights_file"] if ranker_ref else None
        prep_train = prepare_patch_cache(
            train_cases, cache, seed=args.seed, workers=args.workers, progress=prog, ranker_path=rk
        )
        prep_val = prepare_patch_cache(
            val_cases, cache, seed=args.seed, workers=args.workers, progress=prog, ranker_path=rk
        )
    prep_s = time.perf_counter() - t0
    print(
        f"candidate recall: train {prep_train['candidate_recall']:.3f} ({prep_train['nodules_hit']:.0f}/"
        f"{prep_train['nodules']:.0f}), val {prep_val['candidate_recall']:.3f}; "
        f"{prep_train['candidates_per_case']:.0f} candidates per case; {prep_s:.0f} s"
    )
    train = load_patch_cache(cache, [c.case_id for c in train_cases])
    val = load_patch_cache(cache, [c.case_id for c in val_cases])
    print(f"{len(train)} training patches ({int(train.label.sum())} positive), {len(val)} validation")
    config = TrainConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        width=args.width,
        seed=args.seed,
        threads=args.threads,
        max_steps=args.max_steps,
        augment=AugmentConfig(),
        positive_sampling=args.positive_sampling,
        centre_pool=args.centre_pool,
        select=args.select,
    )
    t1 = time.perf_counter()
    with tqdm(total=config.epochs * config.steps_per_epoch, desc="train", unit="step", disable=args.quiet) as bar:

        def on_step(step: int, total: int, loss: float) -> None:
            bar.total = total
            bar.n = step
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.refresh()

        model, logs = train_detector(
            train, val, out, config, resume=not args.no_resume, on_step=on_step, init_state=init_state
        )
    train_s = time.perf_counter() - t1
    best = selected_epoch(logs, config.select)
    card = {
        "name": args.name,
        "medmm_version": __version__,
        "task": "lung nodule candidate classification, centre refinement, diameter, texture, calcification",
        "input": "32^3 patch at ~1 mm around a blob candidate, HU clipped to [-1000, 400] -> [-1, 1]",
        **({"candidate_ranker": ranker_ref} if ranker_ref else {}),
        "training_data": {
            "sources": [str(Path(r).resolve().name) for r in args.data],
            "train_cases": len(train_cases),
            "val_cases": len(val_cases),
            "train_patches": len(train),
            "train_positive_patches": int(train.label.sum()),
            "candidate_recall_train": prep_train["candidate_recall"],
            "candidate_recall_val": prep_val["candidate_recall"],
            **spacing_range([*train_cases, *val_cases]),
        },
        "training": {
            **{k: v for k, v in asdict(config).items() if k != "augment"},
            "augment": asdict(config.augment),
            "patch_seconds": round(prep_s, 1),
            "train_seconds": round(train_s, 1),
            "best_epoch": best.epoch if best else None,
            **({"initialized_from": init_ref} if init_ref else {}),
        },
        "validation_patch_metrics": asdict(best) if best else None,
        "selection": (
            "last epoch (end of the cosine schedule)"
            if config.select == "last"
            else "epoch with the highest validation patch AUC"
        ),
        "metrics": {},
        "intended_use": "research; assists, never replaces, a radiologist",
    }
    weights = out / f"{args.name}.safetensors"
    card_path = save_detector(model, weights, card)
    if not args.no_calibrate:
        print(f"calibrating probabilities on {len(calib_cases)} validation scans' full candidate sets ...")
        card["calibration"] = _calibrate(weights, calib_cases, args.workers)
        card_path = save_detector(model, weights, card)
        print(f"calibration: {card['calibration']}")
    _ship_int8_observers(weights, val)
    print(json.dumps(card["validation_patch_metrics"], indent=1))
    print(f"weights: {weights}\nmodel card: {card_path}\npatches {prep_s:.0f} s, training {train_s:.0f} s")
    return 0


def _ship_int8_observers(weights: Path, val: Any, n_patches: int = 256) -> None:
    """Calibrate INT8 activation ranges on validation patches and save them beside the weights."""
    import numpy as np
    import torch

    from medmm.detect.model import PATCH_SIZE
    from medmm.detect.patches import normalize_hu
    from medmm.detect.weights import attach_int8_observers

    rows = np.linspace(0, len(val) - 1, min(n_patches, len(val))).astype(int)
    lo = (val.patches.shape[1] - PATCH_SIZE) // 2
    crop = val.patches[rows, lo : lo + PATCH_SIZE, lo : lo + PATCH_SIZE, lo : lo + PATCH_SIZE]
    patches = normalize_hu(torch.from_numpy(np.ascontiguousarray(crop)))[:, None]
    note = f"{len(rows)} validation patches (evenly spaced over {len(val)}, centre {PATCH_SIZE}^3 crops)"
    path = attach_int8_observers(weights, patches, note)
    print(f"INT8 activation ranges: {path}")


def _copy_ranker(path: Path, out: Path) -> dict[str, str]:
    """Check a ranker and copy it (with its card) into the run folder; returns the card reference."""
    import shutil

    from medmm.detect.weights import load_ranker

    _, card = load_ranker(path)
    out.mkdir(parents=True, exist_ok=True)
    for src in (path, path.with_suffix(".json")):
        if src.resolve() != (out / src.name).resolve():
            shutil.copyfile(src, out / src.name)
    return {"weights_file": path.name, "sha256": str(card["sha256"])}


def _cmd_train_ranker(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from medmm import __version__
    from medmm.detect.train_ranker import RankerConfig, load_peak_cache, prepare_peak_cache, train_ranker
    from medmm.detect.weights import save_ranker
    from medmm.errors import MedmmError

    out: Path = args.out
    cache = args.cache or out / "peaks"
    try:
        train_cases, val_cases = _split_cases(_discover(args.data), args.val, args.val_fraction, args.max_cases)
    except MedmmError as exc:
        print(f"medmm train ranker: {exc}", file=sys.stderr)
        return 2
    print(f"{len(train_cases)} training and {len(val_cases)} validation cases; peaks cached in {cache}")
    t0 = time.perf_counter()
    with tqdm(total=len(train_cases) + len(val_cases), desc="peaks", unit="case", disable=args.quiet) as bar:
        prog = lambda done, total: bar.update(1)  # noqa: E731
        train_ids = prepare_peak_cache(train_cases, cache, workers=args.workers, progress=prog)
        val_ids = prepare_peak_cache(val_cases, cache, workers=args.workers, progress=prog)
    prep_s = time.perf_counter() - t0
    try:
        train = load_peak_cache(cache, train_ids)
        val = load_peak_cache(cache, val_ids)
    except MedmmError as exc:
        print(f"medmm train ranker: {exc}", file=sys.stderr)
        return 2
    config = RankerConfig(epochs=args.epochs, lr=args.lr, hidden=args.hidden, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=config.epochs, desc="train", unit="epoch", disable=args.quiet) as bar:

        def on_epoch(epoch: int, m: dict[str, float]) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{m['train_loss']:.3f}", recall=f"{m['val_recall']:.3f}")

        ranker, summary = train_ranker(train, val, config, log_path=out / "ranker_log.jsonl", on_epoch=on_epoch)
    card = {
        "name": args.name,
        "medmm_version": __version__,
        "task": "ranking blob-filter peaks so the kept candidates hold the nodules",
        "input": "per-peak features (architecture.features), medmm.detect.candidates.blob_peaks",
        "training_data": {"sources": [str(Path(r).resolve().name) for r in args.data]},
        "training": {**summary, "peak_seconds": round(prep_s, 1)},
        "selection": "epoch with the highest validation candidate recall (ties: lower validation loss)",
        "intended_use": "research; the first stage of medmm's nodule detector",
    }
    card_path = save_ranker(ranker, out / f"{args.name}.safetensors", card)
    chosen = summary["chosen"]
    print(
        f"validation candidate recall {chosen.get('val_recall', float('nan')):.3f} "
        f"(hand-made order {summary['val_recall_handmade_order']:.3f}, {summary['val_nodules']:.0f} nodules)"
    )
    print(f"model card: {card_path}")
    return 0


def _add_common(p: argparse.ArgumentParser, cache_kind: str, name: str, out_help: str) -> None:
    """Arguments every ``medmm train`` command takes."""
    p.add_argument("data", type=Path, nargs="+", help="training data folder(s)")
    p.add_argument("--val", type=Path, default=None, help="validation folder (default: the 'val' split)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="validation share when no split exists")
    p.add_argument("--out", type=Path, required=True, help=out_help)
    cache_default = "OUT/patches" if cache_kind == "patch" else "OUT/peaks"
    p.add_argument("--cache", type=Path, default=None, help=f"{cache_kind} cache folder (default {cache_default})")
    p.add_argument("--name", default=name, help=f"weights file stem (default {name})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help=f"processes for {cache_kind} preparation")
    p.add_argument("--max-cases", type=int, default=None, help="use only the first N training cases")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_train_parser(sub: Any) -> None:
    """Register ``medmm train ...`` on the top-level subparsers."""
    train = sub.add_parser("train", help="train medmm's models")
    tsub = train.add_subparsers(dest="model", required=True)
    det = tsub.add_parser(
        "detector", help="train the nodule CNN from a synthetic set, a LUNA16 folder, or DICOM + LIDC XML"
    )
    _add_common(det, "patch", "nodule_detector", "run folder (checkpoints, log.jsonl, weights)")
    det.add_argument("--epochs", type=int, default=12)
    det.add_argument("--steps-per-epoch", type=int, default=200)
    det.add_argument("--batch-size", type=int, default=64)
    det.add_argument("--lr", type=float, default=3e-3)
    det.add_argument("--width", type=int, default=8, help="network width (default 8)")
    det.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    det.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    det.add_argument(
        "--max-val-cases",
        type=int,
        default=None,
        help="validate patches of at most N validation cases (Platt scaling still uses all of them)",
    )
    det.add_argument(
        "--positive-sampling",
        choices=("nodule", "patch"),
        default="patch",
        help="draw positives uniformly over patches (default, as v2) or over nodules + by loss",
    )
    det.add_argument(
        "--centre-pool",
        action="store_true",
        help="pool the last feature map over its centre as well as globally (keeps where a blob lies)",
    )
    det.add_argument(
        "--init-weights",
        type=Path,
        default=None,
        help="fine-tune these detector weights (.safetensors + card) instead of starting from random ones",
    )
    det.add_argument(
        "--select",
        choices=("auc", "last"),
        default="auc",
        help="keep the epoch with the best validation patch AUC (default) or the last one (fine-tuning)",
    )
    det.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    det.add_argument("--no-calibrate", action="store_true", help="skip Platt scaling on the validation cases")
    det.add_argument(
        "--ranker", type=Path, default=None, help="candidate ranker (.safetensors) to draw candidates with"
    )
    det.set_defaults(func=_cmd_train_detector)

    rk = tsub.add_parser("ranker", help="train the candidate ranker (which blob peaks go to the CNN)")
    _add_common(rk, "peak", "candidate_ranker", "run folder (ranker_log.jsonl, weights)")
    rk.add_argument("--epochs", type=int, default=12)
    rk.add_argument("--lr", type=float, default=2e-3)
    rk.add_argument("--hidden", type=int, default=64)
    rk.set_defaults(func=_cmd_train_ranker)

    from medmm.cli_train_alignment import add_alignment_parser

    add_alignment_parser(tsub)

    from medmm.cli_train_reasoning import add_reasoning_parser

    add_reasoning_parser(tsub)
