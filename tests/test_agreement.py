"""Report/image agreement rules, retrieval by agreement, and the report section in result.json."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medmm.fusion.agreement import FaintDetection, check_agreement, same_nodule
from medmm.fusion.evaluate import _recall, structured_retrieval
from medmm.types import DetectedNodule, NoduleTexture, ReportFinding


def _finding(
    site: str, size: float | None, *, negated: bool = False, text: str = "nodule", section: str = "FINDINGS"
) -> ReportFinding:
    return ReportFinding(
        concept="urn:medmm:solid-nodule",
        label="solid nodule",
        code="SCT:1",
        text=text,
        start=0,
        end=len(text),
        section=section,
        site=site,
        size_mm=size,
        negated=negated,
        uncertain=False,
        historical=False,
    )


def _nodule(lobe: str, diameter: float, p: float = 0.9, x: float = 0.0) -> DetectedNodule:
    return DetectedNodule(
        center_lps_mm=(x, 0.0, 0.0),
        voxel_index=(0, 0, 0),
        diameter_mm=diameter,
        volume_mm3=100.0,
        probability=p,
        texture=NoduleTexture.SOLID,
        texture_probabilities={"solid": 1.0, "part_solid": 0.0, "ground_glass": 0.0},
        calcification="none",
        calcification_probability=0.0,
        lobe=lobe,
    )


def test_findings_and_impression_confirm_one_detection() -> None:
    mentions = [_finding("RUL", 8.0), _finding("RUL", 8.0, section="IMPRESSION"), _finding("", None, negated=True)]
    items = check_agreement(mentions, [_nodule("RUL", 7.4)], [True, True, True])
    assert [(i.status, i.mentions, i.nodule) for i in items] == [("confirmed", (0, 1), 0)]


def test_two_sized_sentences_of_one_section_are_two_nodules() -> None:
    text = (
        "FINDINGS:\nThere is a 1.5 cm round subpleural solid nodule in the right lower lobe. "
        "Right lower lobe: smooth solid nodule measuring 15 mm. "
        "There is a 8 mm calcified granuloma with central calcification in the LUL.\n\n"
        "IMPRESSION:\n1. 15 mm right lower lobe pulmonary nodule.\n"
    )

    def at(word: str, site: str, size: float, nth: int = 0, section: str = "FINDINGS") -> ReportFinding:
        start = -1
        for _ in range(nth + 1):
            start = text.index(word, start + 1)
        return dataclasses.replace(_finding(site, size, section=section), start=start, end=start + len(word))

    mentions = [
        at("solid nodule", "RLL", 15.0),
        at("solid nodule", "RLL", 15.0, nth=1),
        at("granuloma", "LUL", 8.0),
        at("calcification", "LUL", 8.0),  # same sentence: the same nodule
        at("pulmonary nodule", "RLL", 15.0, section="IMPRESSION"),
    ]
    dets = [_nodule("RLL", 15.5, x=0.0), _nodule("RML", 14.5, x=70.0), _nodule("LUL", 7.6, x=-80.0)]
    items = check_agreement(mentions, dets, [True] * 5, text=text)
    assert sorted((i.status, i.mentions, i.nodule) for i in items) == [
        ("confirmed", (0, 4), 0),
        ("confirmed", (1,), 1),  # the RML detection: its lobe map is off, the lung is right
        ("confirmed", (2, 3), 2),
    ]
    # without the text the two RLL sentences read as one finding, and the RML detection as unreported
    items = check_agreement(mentions, dets, [True] * 5)
    assert sorted(i.status for i in items) == ["confirmed", "confirmed", "not_in_report"]


def test_two_nodules_of_one_lobe_two_mm_apart_in_size_are_two_findings() -> None:
    # "18 x 16 mm" and "16 mm" in the RLL, plus the impression repeating "1.8 cm"
    mentions = [_finding("RLL", 18.0), _finding("RLL", 16.0), _finding("RLL", 18.0, section="IMPRESSION")]
    items = check_agreement(mentions, [_nodule("RLL", 17.6, x=0.0), _nodule("RLL", 16.6, x=40.0)], [True] * 3)
    assert sorted((i.status, i.mentions, i.nodule) for i in items) == [
        ("confirmed", (0, 2), 0),
        ("confirmed", (1,), 1),
    ]


def test_wrong_side_is_both_unfound_and_unreported() -> None:
    items = check_agreement([_finding("LUL", 12.0)], [_nodule("RUL", 11.0)], [True])
    assert sorted(i.status for i in items) == ["not_found_in_image", "not_in_report"]


def test_other_lobe_of_the_same_lung_confirms_at_a_cost() -> None:
    dets = [_nodule("RML", 14.2), _nodule("RUL", 11.1)]
    items = check_agreement([_finding("RLL", 14.0)], dets, [True])
    confirmed = [i for i in items if i.status == "confirmed"]
    assert [i.nodule for i in confirmed] == [0] and "lobes differ" in confirmed[0].detail
    assert [(i.status, i.nodule) for i in items if i.status != "confirmed"] == [("not_in_report", 1)]
    # a same-lobe detection wins over a closer-sized one in the neighbouring lobe
    items = check_agreement([_finding("RLL", 14.0)], [_nodule("RML", 14.0), _nodule("RLL", 11.0)], [True])
    assert next(i for i in items if i.status == "confirmed").nodule == 1


def test_size_must_fit() -> None:
    items = check_agreement([_finding("RLL", 25.0)], [_nodule("RLL", 9.0)], [True])
    assert sorted(i.status for i in items) == ["not_found_in_image", "not_in_report"]


def test_small_unmentioned_detection_is_not_flagged() -> None:
    items = check_agreement([], [_nodule("LLL", 4.5)], [])
    assert items == ()
    items = check_agreement([], [_nodule("LLL", 6.5)], [])
    assert [i.status for i in items] == ["not_in_report"]


def test_general_statement_does_not_hide_an_unreported_nodule() -> None:
    mentions = [_finding("bilateral", None), _finding("RLL", 14.0), _finding("LUL", 16.0)]
    dets = [_nodule("LUL", 16.2), _nodule("RLL", 13.7), _nodule("RLL", 10.8), _nodule("LLL", 13.7)]
    items = check_agreement(mentions, dets, [True] * 3)
    status = {(i.status, i.nodule) for i in items}
    assert ("confirmed", 1) in status and ("confirmed", 0) in status
    assert ("not_in_report", 2) in status and ("not_in_report", 3) in status
    general = next(i for i in items if i.mentions == (0,))
    assert general.status == "confirmed" and general.nodule is None


def test_a_plural_statement_accounts_for_smaller_unlisted_nodules_only() -> None:
    # "Multiple bilateral pulmonary nodules ... The largest: 14 mm RLL, 14 mm LLL, 11 mm RLL"
    mentions = [
        _finding("bilateral", None, text="pulmonary nodules"),
        _finding("RLL", 14.0),
        _finding("LLL", 14.0),
        _finding("RLL", 11.0),
    ]
    dets = [_nodule("RLL", 14.2), _nodule("LLL", 13.8), _nodule("RLL", 11.1), _nodule("LUL", 9.5), _nodule("RUL", 16.3)]
    items = check_agreement(mentions, dets, [True] * 4)
    by_nodule = {i.nodule: i for i in items if i.nodule is not None}
    assert by_nodule[3].status == "confirmed" and by_nodule[3].mentions == (0,)
    assert "smallest described, 11 mm" in by_nodule[3].detail
    assert by_nodule[4].status == "not_in_report"  # larger than the described ones: left out
    # a one-sided statement accounts for nothing on the other side
    mentions[0] = _finding("right", None, text="nodules")
    items = check_agreement(mentions, dets, [True] * 4)
    assert {i.nodule for i in items if i.status == "not_in_report"} == {3, 4}


def test_non_nodule_mentions_are_ignored() -> None:
    items = check_agreement([_finding("RUL", 30.0)], [], [False])
    assert items == ()


def test_attention_peak_lets_a_siteless_finding_match() -> None:
    f = dataclasses.replace(_finding("", 9.0), attention_peak_lps_mm=(50.0, 0.0, 0.0))
    dets = [_nodule("RUL", 9.0, x=-80.0), _nodule("LUL", 9.0, x=52.0)]
    items = check_agreement([f], dets, [True])
    confirmed = [i for i in items if i.status == "confirmed"]
    assert confirmed and confirmed[0].nodule == 1


def test_report_section_round_trips_through_result_json() -> None:
    from medmm.report.json_result import validate_result
    from medmm.types import AgreementItem, AnalysisResult, ReportAnalysis, SeriesInfo

    finding = dataclasses.replace(_finding("RUL", 8.0), attention_peak_lps_mm=(1.5, -2.0, 3.25), image_support=0.9)
    report = ReportAnalysis(
        findings=(finding, _finding("", None, negated=True)),
        agreement=(AgreementItem("confirmed", (0,), 0, "report: 8 mm solid nodule in RUL; image: 7.4 mm"),),
        models={"text_encoder": "all-MiniLM-L6-v2"},
        n_characters=120,
    )
    result = AnalysisResult(
        series=SeriesInfo(series_uid="1.2.3"),
        shape=(10, 20, 20),
        spacing_mm=(1.0, 1.0, 1.0),
        orientation="SPL",
        stages=("anatomy", "detection", "text", "fusion"),
        nodules=(_nodule("RUL", 7.4),),
        report=report,
    )
    doc = result.to_dict()
    validate_result(doc)
    assert AnalysisResult.from_dict(doc).report == report
    doc["report"]["agreement"][0]["status"] = "maybe"

    from medmm.errors import ExportError

    with pytest.raises(ExportError, match="report/agreement"):
        validate_result(doc)


def test_tied_scores_never_favour_the_own_report() -> None:
    # every report scores the same for every volume: recall must be chance, not 1.0
    texts = [f"report {i}" for i in range(12)]
    r = _recall(np.zeros((12, 12)), texts, n_candidates=6, draws=3, seed=0)
    assert r.recall_at_1 == pytest.approx(1 / 6) and r.recall_at_5 == pytest.approx(5 / 6)
    # identical texts count as one another's match
    r = _recall(np.zeros((4, 4)), ["same"] * 4, n_candidates=4, draws=2, seed=0)
    assert r.recall_at_1 == 1.0


def test_reports_are_ranked_by_what_the_image_shows() -> None:
    detections = [(_nodule("RUL", 8.2),), (_nodule("LLL", 15.0), _nodule("RLL", 12.0)), ()]
    reports = [
        "FINDINGS: An 8 mm nodule in the right upper lobe.",
        "FINDINGS: A 15 mm nodule in the left lower lobe. A 12 mm nodule in the RLL.",
        "FINDINGS: No pulmonary nodules.",
    ]
    r = structured_retrieval(detections, reports, n_candidates=3, draws=1)
    assert r.recall_at_1 == 1.0 and r.chance_at_1 == pytest.approx(1 / 3)
    # a report naming the wrong lobe no longer wins for the first volume
    reports[0] = "FINDINGS: An 8 mm nodule in the left lower lobe."
    assert structured_retrieval(detections, reports, n_candidates=3, draws=1).recall_at_1 < 1.0


def _faint(lobe: str, diameter: float, p: float, x: float = 30.0) -> FaintDetection:
    return FaintDetection(center_lps_mm=(x, 0.0, 0.0), probability=p, diameter_mm=diameter, lobe=lobe)


def test_second_look_confirms_a_stated_nodule_with_a_faint_detection_in_its_lung() -> None:
    mentions = [_finding("LUL", 7.0)]
    items = check_agreement(mentions, [], [True], faint=[_faint("LUL", 6.1, 0.22)])
    assert [(i.status, i.nodule) for i in items] == [("confirmed", None)]
    assert "faint detection (p=0.22" in items[0].detail and "lobes differ" not in items[0].detail
    # across the fissure (a perifissural nodule given the other lobe): confirmed, and said so
    items = check_agreement(mentions, [], [True], faint=[_faint("LLL", 6.1, 0.3)])
    assert items[0].status == "confirmed" and "lobes differ" in items[0].detail
    # the stated lobe only, on request
    items = check_agreement(mentions, [], [True], faint=[_faint("LLL", 6.1, 0.3)], second_look_same_lung=False)
    assert items[0].status == "not_found_in_image"
    # off without faint detections, as before rule 5
    assert [i.status for i in check_agreement(mentions, [], [True])] == ["not_found_in_image"]


def test_second_look_prefers_the_stated_lobe() -> None:
    faint = [_faint("LLL", 7.0, 0.45, x=10.0), _faint("LUL", 5.5, 0.21, x=20.0)]
    items = check_agreement([_finding("LUL", 7.0)], [], [True], faint=faint)
    assert "5.5 mm in LUL" in items[0].detail  # a 1.5 mm gap in the lobe beats 0 mm across it (+5)


@pytest.mark.parametrize(
    "faint",
    [
        _faint("RUL", 7.0, 0.3),  # the other lung
        _faint("LUL", 7.0, 0.15),  # below the floor
        _faint("LUL", 12.0, 0.3),  # too large: |12 - 7| > max(4, 3.5)
        _faint("", 7.0, 0.3),  # in no lobe
    ],
)
def test_second_look_needs_the_stated_lung_a_fitting_size_and_the_floor(faint: FaintDetection) -> None:
    items = check_agreement([_finding("LUL", 7.0)], [], [True], faint=[faint])
    assert [i.status for i in items] == ["not_found_in_image"]


def test_second_look_skips_findings_without_lobe_or_size_and_never_flags_faint_detections() -> None:
    mentions = [_finding("left", 7.0), _finding("LUL", None)]
    big = _faint("LUL", 9.0, 0.4)
    items = check_agreement(mentions, [], [True, True], faint=[big])
    assert [i.status for i in items] == ["not_found_in_image", "not_found_in_image"]  # no "not_in_report"


def test_second_look_only_after_the_reported_detections_and_one_finding_per_faint_detection() -> None:
    mentions = [_finding("RUL", 8.0), _finding("RLL", 5.0, text="nodule.", section="IMPRESSION")]
    faint = [_faint("RLL", 5.5, 0.26), _faint("RLL", 4.8, 0.2, x=40.0)]
    items = check_agreement(mentions, [_nodule("RUL", 8.2)], [True, True], faint=faint)
    assert [(i.status, i.nodule) for i in items] == [("confirmed", 0), ("confirmed", None)]
    assert "p=0.20" in items[1].detail  # the closer size (0.2 mm) wins over the other (0.5 mm)
    # the floor is a parameter
    items = check_agreement(mentions, [_nodule("RUL", 8.2)], [True, True], faint=faint, second_look_min_probability=0.4)
    assert items[1].status == "not_found_in_image"


def test_lobe_at_reads_the_label_or_the_nearest_lobe_within_10_mm() -> None:
    from medmm.fusion.report_stage import lobe_at
    from medmm.volume import Volume

    # (k, j, i) -> (x, y, z) = (i, j, 2 k) mm
    affine = np.array([[0.0, 0, 1, 0], [0, 1, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1]])
    vol = Volume(np.zeros((20, 30, 30), np.int16), affine)
    lobes = np.zeros(vol.shape, np.uint8)
    lobes[:, :, :10] = 4  # LUL
    lobes[:, :, 20:] = 1  # RUL
    at = vol.index_to_world
    assert lobe_at(vol, lobes, at([5, 5, 5])) == "LUL"
    assert lobe_at(vol, lobes, at([5, 5, 25])) == "RUL"
    assert lobe_at(vol, lobes, at([5, 5, 13])) == "LUL"  # 4 mm from the LUL, 7 mm from the RUL
    lobes[:, :, 20:] = 0
    assert lobe_at(vol, lobes, at([5, 5, 25])) == ""  # 16 mm from the LUL, no other lobe


def test_a_sized_ground_glass_opacity_is_a_nodule_finding_an_area_is_not() -> None:
    from medmm.fusion.agreement import nodule_like
    from medmm.reason.ontology import load_ontology
    from medmm.text.mentions import extract_mentions

    onto = load_ontology()
    text = (
        "There is a 1.9 cm GGO in the RUL. Patchy ground-glass opacity in the left lower lobe. "
        "A 45 mm area of ground-glass opacity in the RLL."
    )
    mentions = extract_mentions(text, onto)
    like = nodule_like(mentions, onto)
    by_text = {(m.text, m.size_mm): ok for m, ok in zip(mentions, like, strict=True)}
    assert by_text[("GGO", 19.0)] is True
    assert [ok for (t, size), ok in by_text.items() if size is None] == [False]
    assert [ok for (t, size), ok in by_text.items() if size == 45.0] == [False]
    # the sized GGO is then matched like any nodule: confirmed, and the detection is reported
    ggo = [m for m in mentions if m.size_mm == 19.0]
    items = check_agreement(ggo, [_nodule("RUL", 20.0)], nodule_like(ggo, onto), text=text)
    assert [(i.status, i.nodule) for i in items] == [("confirmed", 0)]


def test_same_nodule_is_rule_one_for_mentions_and_claims() -> None:
    """One rule decides "same nodule" for agreement's findings and the claims rule's groups."""
    assert same_nodule("RUL", 10.0, "RUL", 11.0)  # a repeat, rounded differently
    assert not same_nodule("RUL", 10.0, "RUL", 11.5)  # two nodules of one lobe
    assert same_nodule("RUL", None, "RUL", 11.5)  # an unsized mention joins a sized one
    assert not same_nodule("RUL", 10.0, "RLL", 10.0)
    assert not same_nodule("", 10.0, "", 10.0)  # no site: nothing to tie them
    assert not same_nodule("RUL", 10.0, "RUL", 10.0, listed_apart=True)  # two sentences of one section
