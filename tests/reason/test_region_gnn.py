"""Region features, the region GNN against the pooled baseline, and `medmm train reasoning`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medmm.anatomy.graph import NODE_NAMES
from medmm.cli import main
from medmm.reason.evidence import DIFFERENTIAL
from medmm.reason.features import MENTION_GROUPS, NODE_DIM, NODULE_FEATURES, STUDY_DIM, node_features
from medmm.reason.gnn import MeanEnsemble, PooledMLP, RegionGNN
from medmm.reason.inputs import NoduleObservation, ReasoningInputs
from medmm.reason.ontology import load_ontology
from medmm.reason.training import collate, make_examples
from medmm.types import ReportFinding

ONE_HOT = len(NODE_NAMES)
EMPTY = ReasoningInputs((), ()).to_dict()
NODULE_COL = ONE_HOT + 3 + 52  # after one-hot, anatomy and the image embedding


def nod(lobe: str, d: float = 8.0, *, calc: float = 0.02, jp: bool = False, pf: bool = False) -> NoduleObservation:
    return NoduleObservation(lobe, d, 0.9, (0.9, 0.07, 0.03), calc, jp, pf, 0.05)


def mention(concept: str, site: str = "") -> ReportFinding:
    c = load_ontology().concept(concept)
    return ReportFinding(c.iri, c.pref_label, "", c.pref_label, 0, 1, "FINDINGS", site, None, False, False, False)


def test_facts_land_on_their_regions() -> None:
    inputs = ReasoningInputs(
        (nod("RLL"), nod("LLL", jp=True)),
        (mention("spiculated-margin", "LUL"), mention("calcified-nodule", "bilateral"), mention("emphysema")),
        has_report=True,
    )
    x, study = node_features(inputs)
    assert x.shape == (9, NODE_DIM) and study.shape == (STUDY_DIM,)
    count = x[:, NODULE_COL]  # log1p(count)
    rows = {NODE_NAMES[i] for i in np.nonzero(count)[0]}
    assert rows == {"RLL", "LLL", "left_pleura_chest_wall"}
    jp_col = NODULE_COL + NODULE_FEATURES.index("juxtapleural_count")
    assert x[NODE_NAMES.index("LLL"), jp_col] == 1 and x[NODE_NAMES.index("RLL"), jp_col] == 0
    mcol = NODULE_COL + len(NODULE_FEATURES)
    spic = mcol + MENTION_GROUPS.index("urn:medmm:spiculated-margin")
    assert np.nonzero(x[:, spic])[0].tolist() == [NODE_NAMES.index("LUL")]
    calc = mcol + MENTION_GROUPS.index("urn:medmm:calcified-nodule")
    assert np.nonzero(x[:, calc])[0].tolist() == [0, 1, 2, 3, 4]
    # The unsited emphysema mention is in the study vector, not on a node.
    emph = mcol + MENTION_GROUPS.index("urn:medmm:emphysema")
    assert not x[:, emph].any()
    assert study[-1] == 1.0  # has_report


def test_collate_keeps_graphs_disjoint() -> None:
    ex = make_examples(
        [{"case_id": str(i), "truth": {"diagnosis": "normal", "nodules": []}, "inputs": EMPTY} for i in range(3)]
    )
    b = collate(ex)
    assert b.x.shape == (27, NODE_DIM)
    graph_of = b.batch[b.edge_index]
    assert torch.equal(graph_of[0], graph_of[1])
    assert b.edge_index.max() == 26


def _location_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same nodule count everywhere; the label is whether it sits in an upper lobe."""
    rng = np.random.default_rng(seed)
    lobes = rng.choice(["RUL", "LUL", "RLL", "LLL"], size=n)
    x = np.zeros((n * 9, NODE_DIM), np.float32)
    for i, lobe in enumerate(lobes):
        x[i * 9 : i * 9 + 9, :ONE_HOT] = np.eye(9)
        x[i * 9 + NODE_NAMES.index(lobe), NODULE_COL] = 1.0
    x += rng.normal(0, 0.01, x.shape).astype(np.float32)
    labels = torch.tensor([int(lb in ("RUL", "LUL")) for lb in lobes])
    return torch.from_numpy(x), torch.zeros(n, STUDY_DIM), torch.arange(n).repeat_interleave(9), labels


@pytest.mark.parametrize("input_readout", [False, True])
def test_gnn_uses_where_a_nodule_is_and_the_pooled_baseline_cannot(input_readout: bool) -> None:
    torch.manual_seed(0)
    ex = collate(make_examples([{"case_id": "0", "truth": {"diagnosis": "normal"}, "inputs": EMPTY}]))
    x, study, batch, y = _location_task(96, 0)
    n = len(y)
    edge_index = torch.cat([ex.edge_index + 9 * i for i in range(n)], dim=1)
    edge_type = ex.edge_type.repeat(n)
    gnn = RegionGNN(NODE_DIM, STUDY_DIM, 2, dropout=0.0, input_readout=input_readout)
    mlp = PooledMLP(NODE_DIM, STUDY_DIM, 2, dropout=0.0)
    for model in (gnn, mlp):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(150):
            out = model(x, edge_index, edge_type, batch, study)[0] if model is gnn else model(x, batch, study)
            loss = torch.nn.functional.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    xt, st, bt, yt = _location_task(64, 1)
    et = torch.cat([ex.edge_index + 9 * i for i in range(64)], dim=1)
    with torch.no_grad():
        acc_gnn = float((gnn(xt, et, ex.edge_type.repeat(64), bt, st)[0].argmax(1) == yt).float().mean())
        acc_mlp = float((mlp(xt, bt, st).argmax(1) == yt).float().mean())
    assert acc_gnn >= 0.95
    assert acc_mlp <= 0.75


def _toy_cases(n: int, seed: int) -> list[dict]:
    """Tiny case files: four diagnoses with their textbook pictures and noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            inputs, dx = ReasoningInputs((), ()), "normal"
        elif kind == 1:
            lobes = rng.choice(["RLL", "LLL", "RUL"], size=int(rng.integers(3, 6)))
            inputs, dx = (
                ReasoningInputs(tuple(nod(str(lb), float(rng.uniform(5, 15))) for lb in lobes), ()),
                ("pulmonary metastases"),
            )
        elif kind == 2:
            inputs = ReasoningInputs(tuple(nod("RUL", float(rng.uniform(3, 7)), calc=0.95) for _ in range(2)), ())
            dx = "calcified granulomas (healed infection)"
        else:
            inputs, dx = (
                ReasoningInputs((nod(str(rng.choice(["RUL", "LUL"])), float(rng.uniform(12, 28))),), ()),
                ("primary lung cancer"),
            )
        truth = {"diagnosis": dx, "nodules": [{"lobe": x.lobe, "position": "isolated"} for x in inputs.nodules]}
        out.append({"case_id": f"toy{i}", "truth": truth, "inputs": inputs.to_dict()})
    return out


def test_train_reasoning_cli_writes_weights_card_and_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("".join(json.dumps(c) + "\n" for c in _toy_cases(48, 0)))
    test.write_text("".join(json.dumps(c) + "\n" for c in _toy_cases(24, 1)))
    out = tmp_path / "run"
    args = ["train", "reasoning", "--out", str(out), "--cases", str(train), "--test", str(test)]
    assert main([*args, "--epochs", "20", "--members", "2", "--quiet", "--name", "toy"]) == 0
    printed = capsys.readouterr().out
    assert "| image + report | region GNN | 24 |" in printed and "ontology only" in printed
    card = json.loads((out / "toy.json").read_text())
    assert card["architecture"]["diagnoses"] == list(DIFFERENTIAL)
    assert card["architecture"]["input_readout"] is True and card["architecture"]["members"] == 2
    assert [m["seed"] for m in card["training"]["gnn"]["members"]] == [0, 1]
    assert card["test"]["with_report"]["gnn"]["n"] == 24
    assert len(card["test"]["image_only"]["baseline_mlp"]["members_top1"]) == 2
    table = json.loads((out / "reasoning_table.json").read_text())
    assert table["image_only"]["gnn"]["top3"] >= 0.9  # four well-separated pictures

    # scripts/evaluate_reasoning.py scores saved weights on case files: the same figures.
    import importlib.util

    script = Path(__file__).parents[2] / "scripts" / "evaluate_reasoning.py"
    spec = importlib.util.spec_from_file_location("evaluate_reasoning", script)
    assert spec is not None and spec.loader is not None
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    assert evaluate.main([str(tmp_path / "eval"), "--cases", str(test), "--weights", str(out / "toy.safetensors")]) == 0
    scored = json.loads((tmp_path / "eval" / "reasoning_eval.json").read_text())
    for setting in ("with_report", "image_only"):
        for ranker in ("gnn", "ontology_only"):
            assert scored["table"][setting][ranker] == table[setting][ranker]
        assert "baseline_mlp" not in scored["table"][setting]
    assert scored["weights"]["sha256"] == card["sha256"]

    from medmm.reason.differential import Reasoner

    diff = Reasoner(out / "toy.safetensors").rank(ReasoningInputs((nod("RUL", 4.0, calc=0.97),) * 2, ()))
    assert diff.diagnoses[0].label == "granuloma"
    assert abs(sum(d.probability for d in diff.diagnoses) - 1.0) < 1e-3
    assert any(e.source == "image" and "calcified" in e.label for e in diff.diagnoses[0].supporting)


def test_a_diagnosis_names_its_snomed_code_first() -> None:
    from medmm.reason.differential import _preferred_code

    onto = load_ontology()
    assert _preferred_code(onto.concept("primary-lung-cancer").codes) == "SNOMED CT:93880001"
    assert _preferred_code(onto.concept("granuloma").codes) == ""


def test_an_ensemble_averages_its_members_and_a_single_network_still_loads(tmp_path: Path) -> None:
    from medmm.reason.features import evidence_vocabulary
    from medmm.reason.weights import load_reasoning, save_reasoning

    b = collate(make_examples([{"case_id": "0", "truth": {"diagnosis": "normal"}, "inputs": EMPTY}] * 2))
    nets = [RegionGNN(NODE_DIM, STUDY_DIM, len(DIFFERENTIAL), input_readout=True).eval() for _ in range(3)]
    args = (b.x, b.edge_index, b.edge_type, b.batch, b.study)
    with torch.no_grad():
        outs = [n(*args) for n in nets]
        logits, region = MeanEnsemble(nets)(*args)
    assert torch.allclose(logits, torch.stack([o[0] for o in outs]).mean(0))
    assert torch.allclose(region, torch.stack([o[1] for o in outs]).mean(0))
    with pytest.raises(ValueError, match="at least one member"):
        MeanEnsemble([])
    vocab = evidence_vocabulary()
    save_reasoning(MeanEnsemble(nets), tmp_path / "ens.safetensors", {"name": "ens"}, vocab, 64)
    save_reasoning(nets[0], tmp_path / "one.safetensors", {"name": "one"}, vocab, 64)
    ens, card = load_reasoning(tmp_path / "ens.safetensors")
    one, _ = load_reasoning(tmp_path / "one.safetensors")
    assert isinstance(ens, MeanEnsemble) and len(ens.members) == 3 and card["architecture"]["members"] == 3
    assert isinstance(one, RegionGNN)
    with torch.no_grad():
        assert torch.allclose(ens(*args)[0], logits, atol=1e-6)
        assert torch.allclose(one(*args)[0], outs[0][0], atol=1e-6)
