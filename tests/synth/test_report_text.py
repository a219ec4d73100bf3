from __future__ import annotations

import numpy as np

from medmm.synth.nodules import NoduleSpec, NoduleTexture, RenderedNodule
from medmm.synth.phantom import Lobe
from medmm.synth.report_text import Disagreement, write_report


def _nodule(label: int, lobe: Lobe, d: float, texture: NoduleTexture = NoduleTexture.SOLID) -> RenderedNodule:
    return RenderedNodule(NoduleSpec(d, texture), label, (0.0, 0.0, 0.0), d, 1.0, lobe, d)


NODULES = (_nodule(1, Lobe.RUL, 14.0), _nodule(2, Lobe.LLL, 7.0, NoduleTexture.GROUND_GLASS))


def test_mentions_point_at_their_words_and_carry_truth() -> None:
    for seed in range(40):
        rep = write_report(NODULES, "primary lung cancer", np.random.default_rng(seed), emphysema=0.5)
        for m in rep.mentions:
            assert rep.text[m.start : m.end].strip() == rep.text[m.start : m.end]
            assert rep.text[m.start : m.end]
        nodule_mentions = [m for m in rep.mentions if m.nodule_label is not None]
        assert {m.nodule_label for m in nodule_mentions} == {1, 2}
        assert all(m.site == {1: "RUL", 2: "LLL"}[m.nodule_label] for m in nodule_mentions)
        assert any(m.concept == "pleural effusion" and m.negated for m in rep.mentions)
        assert any(m.concept == "emphysema" and not m.negated for m in rep.mentions)
        assert "IMPRESSION" in rep.text


def test_style_varies_across_seeds() -> None:
    texts = {write_report(NODULES, "primary lung cancer", np.random.default_rng(s)).text for s in range(20)}
    assert len(texts) > 10
    joined = " ".join(texts)
    assert "cm" in joined
    assert "mm" in joined
    assert "RUL" in joined or "right upper lobe" in joined


def test_normal_report_negates_nodules() -> None:
    rep = write_report((), "normal", np.random.default_rng(0))
    assert all(m.negated for m in rep.mentions)
    assert rep.disagreement == Disagreement.NONE


def test_disagreements_are_recorded() -> None:
    missed = write_report(NODULES, "x", np.random.default_rng(1), disagreement="missed_nodule")
    reported = {m.nodule_label for m in missed.mentions if m.nodule_label}
    assert len(reported) == 1
    assert "not reported" in missed.discrepancies[0]
    wrong = write_report(NODULES[:1], "x", np.random.default_rng(1), disagreement="wrong_side")
    sites = {m.site for m in wrong.mentions if m.nodule_label == 1}
    assert sites == {"LUL"}
    assert "image shows RUL" in wrong.discrepancies[0]


def test_a_multiple_nodule_report_leaves_out_the_largest() -> None:
    # "multiple nodules ... the largest: <three>" is true of a study with smaller unlisted
    # nodules, so only leaving out the largest makes such a report contradict its image
    five = tuple(_nodule(i, Lobe.RLL, d) for i, d in enumerate((9.0, 16.0, 7.0, 12.0, 11.0), start=1))
    for seed in range(10):
        missed = write_report(five, "x", np.random.default_rng(seed), disagreement="missed_nodule")
        reported = {m.nodule_label for m in missed.mentions if m.nodule_label}
        assert 2 not in reported
        assert reported == {4, 5, 1}
        assert "16 mm" in missed.discrepancies[0]
