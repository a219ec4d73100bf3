"""``medmm train alignment``: the report/CT alignment recipe from synthetic data folders."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["add_alignment_parser"]


def _cmd_train_alignment(args: argparse.Namespace) -> int:
    import torch

    from medmm.errors import InputError
    from medmm.fusion.training import STAGE_B, STAGE_C, train_alignment_models
    from medmm.fusion.training_data import prepare_cases

    torch.set_num_threads(args.threads)
    cache = args.cache or args.out / "cache"
    train, val = [], []
    for root in args.data:
        files = prepare_cases(root, cache / root.name, splits=("train", "val"), workers=args.workers)
        train += [f for f in files if f.name.startswith("train__")]
        val += [f for f in files if f.name.startswith("val__")]
    test = prepare_cases(
        args.test,
        cache / f"{args.test.name}_predicted",
        anatomy="predicted",
        splits=args.test_splits,
        workers=args.workers,
    )
    if args.max_cases:
        train, val, test = train[: args.max_cases], val[: max(2, args.max_cases // 4)], test[: args.max_cases]
    if not train or not val:
        raise InputError("alignment training needs 'train' and 'val' splits", path=args.data[0])
    encoder = None
    if args.volume_encoder is not None:
        from safetensors.torch import load_file

        from medmm.fusion.volume_encoder import VolumeEncoder

        encoder = VolumeEncoder()
        state = load_file(str(args.volume_encoder))
        encoder.load_state_dict({k.removeprefix("volume."): v for k, v in state.items() if not k.startswith("fusion.")})
    card = train_alignment_models(
        train,
        val,
        test,
        args.out,
        seed=args.seed,
        volume_steps=args.volume_steps,
        volume_encoder=encoder,
        stage_b=replace(STAGE_B, epochs=args.epochs_b),
        stage_c=replace(STAGE_C, epochs=args.epochs_c),
        card_extra={
            **({"volume_encoder_from": args.volume_encoder.name} if args.volume_encoder is not None else {}),
            "training_data": [str(p) for p in args.data],
            "test_data": f"{args.test} (splits {', '.join(args.test_splits)}; lobes from medmm's anatomy stage)",
        },
        name=args.name,
        progress=None if args.quiet else lambda s: print(f"[medmm] {s}", flush=True),
        c_only_variant=not args.no_c_only,
    )
    print((args.out / "ablation.md").read_text(encoding="utf-8"), end="")
    print(f"weights: {args.out / (args.name + '.safetensors')}  (trained in {card['train_seconds']} s)")
    return 0


def add_alignment_parser(tsub: Any) -> None:
    """Register ``medmm train alignment`` on the ``train`` subparsers."""
    p = tsub.add_parser(
        "alignment",
        help="train the report/CT alignment (volume encoder, contrastive, multi-task) and score the ablation",
    )
    p.add_argument("data", type=Path, nargs="+", help="medmm synth folder(s) with train/ and val/ splits")
    p.add_argument("--test", type=Path, required=True, help="held-out medmm synth folder (a seed not used in data)")
    p.add_argument("--test-splits", nargs="+", default=["train", "val", "test"], help="its splits to use (default all)")
    p.add_argument("--out", type=Path, required=True, help="run folder (caches, logs, weights, ablation.md)")
    p.add_argument("--cache", type=Path, default=None, help="case cache folder (default OUT/cache)")
    p.add_argument("--name", default="report_alignment_v2", help="weights file stem")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes for case preparation")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--volume-steps", type=int, default=1200, help="stage (a) steps")
    p.add_argument("--volume-encoder", type=Path, default=None, help="reuse a trained volume encoder (.safetensors)")
    p.add_argument("--epochs-b", type=int, default=STAGE_B_EPOCHS, help="stage (b) epochs")
    p.add_argument("--epochs-c", type=int, default=STAGE_C_EPOCHS, help="stage (c) epochs")
    p.add_argument("--max-cases", type=int, default=None, help="use only the first N cases of each set (smoke runs)")
    p.add_argument("--no-c-only", action="store_true", help="skip the a+c ablation variant (saves one stage-c run)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_train_alignment)


STAGE_B_EPOCHS = 15
STAGE_C_EPOCHS = 10
