"""The study's design (issue 31): the compute-matched control arm, retrieval targets scored from the encoder,
matched pairings, and the presets that use them."""
from __future__ import annotations

import collections
import json
import math

import numpy as np
import pytest

import data_prep as dp
from repro import config
from repro.study import control, plan, retrieval
from tests.support.cli import ROOT, SMOKE, cli, tiny_overrides, train_log
from tests.support.tiny import BERT, XLNET

PAPER = ROOT / "configs" / "paper.yaml"
MINI = ROOT / "configs" / "mini.yaml"


# ---- the control arm ----------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["synth_int_sentiment", "synth_int_tagging", "synth_int_qa", "synth_int_choice"])
def test_permuted_supervision_keeps_every_input_and_the_label_distribution(task):
    spec = dp.get_task(task)
    examples = dp.load_examples(spec, "train", "en", max_examples=200)
    shuffled = control.permuted(spec, examples, seed=0)
    inputs = lambda e: (e.text, e.text_pair, e.tokens, e.question, e.context, e.choices)  # noqa: E731
    assert [inputs(e) for e in shuffled] == [inputs(e) for e in examples]
    if spec.kind == "tagging":
        gold = [t for e in examples for t in e.tags]
        new = [t for e in shuffled for t in e.tags]
        assert [len(e.tags) for e in shuffled] == [len(e.tags) for e in examples]
    elif spec.kind == "qa":
        for e, s in zip(examples, shuffled):   # a span of its own context, as many words as the answer
            (text, start), (gold_text, _) = s.answers[0], e.answers[0]
            assert e.context[start:start + len(text)] == text
            assert len(text.split()) == min(len(gold_text.split()), len(e.context.split()))
        gold, new = [e.answers[0][1] for e in examples], [e.answers[0][1] for e in shuffled]
    else:
        gold, new = [e.label for e in examples], [e.label for e in shuffled]
        assert collections.Counter(new) == collections.Counter(gold)   # a permutation
    agree = np.mean([a == b for a, b in zip(gold, new)])
    assert agree < 0.8, agree   # not the gold supervision (chance agreement only)
    assert [x for x in control.permuted(spec, examples, seed=0)] == list(shuffled)   # seeded: repeatable
    assert list(control.permuted(spec, examples, seed=1)) != list(shuffled)


def test_the_control_arm_is_named_per_target_or_by_the_grid():
    base = ["grid.models=[bert-tiny]", "grid.target_tasks=[synth_sentiment, synth_tagging]"]
    cfg = config.load(SMOKE, base + ["grid.intermediate_tasks=[none, synth_int_sentiment, control]"])
    ids = {c.cell_id: c.cell.control_for for c in cfg.cells()}
    assert ids["bert-tiny__int-control__tgt-synth_tagging__seed0"] == "synth_int_sentiment"
    assert ids["bert-tiny__int-none__tgt-synth_tagging__seed0"] is None
    two = base + ["grid.intermediate_tasks=[none, synth_int_sentiment, synth_int_nli, control]"]
    with pytest.raises(config.ConfigError, match="grid.control_for is unset .* synth_sentiment has 2 intermediate"):
        config.load(SMOKE, two)
    with pytest.raises(config.ConfigError, match="set grid.control_for or grid.pairings.synth_sentiment"):
        config.load(SMOKE, two + ["grid.pairings={synth_tagging: synth_int_nli}"])
    cfg = config.load(SMOKE, two + ["grid.control_for=synth_int_nli"])
    assert {c.cell.control_for for c in cfg.cells() if c.cell.intermediate_task == "control"} == {"synth_int_nli"}
    cfg = config.load(SMOKE, two + ["grid.pairings={synth_tagging: synth_int_nli, synth_sentiment: synth_int_sentiment}",
                                    "grid.analysis=matched"])
    arms = {(c.cell.target_task, c.cell.intermediate_task, c.cell.control_for) for c in cfg.cells()}
    assert arms == {(t, a, f) for t, i in (("synth_tagging", "synth_int_nli"), ("synth_sentiment", "synth_int_sentiment"))
                    for a, f in (("none", None), (i, None), ("control", i))}
    with pytest.raises(config.ConfigError, match="grid.control_for='control' must name an intermediate task"):
        config.load(SMOKE, ["grid.control_for=control"])


def test_the_control_arm_trains_exactly_the_intermediate_arms_steps_on_its_examples_with_permuted_labels(tmp_path):
    """Two cells, the real intermediate task and its control: the same examples, batches and steps (so the same
    tokens and FLOPs), the labels permuted; the plan counts the control run like the real one."""
    from repro.study import inputs
    from repro.study.cell import TrainingData
    from repro.training import distributed

    out = tmp_path / "grid"
    over = tiny_overrides(out, intermediate="[synth_int_sentiment, control]", **{
        "grid.intermediate_tasks": "[synth_int_sentiment, control]", "target.max_steps": 1, "target.eval_every": 1,
        "intermediate.batch_size": 16, "intermediate.eval_every": 3, "eval.languages": "[en]",
        "grid.target_tasks": "[synth_sentiment, synth_retrieval]",
        "per_target": "{synth_retrieval: {eval: {languages: [x1]}}}"})
    cfg = config.load(SMOKE, over)
    real, real_retrieval, ctrl, ctrl_retrieval = cfg.cells()
    assert ctrl.cell_id == "bert-tiny__int-control__tgt-synth_sentiment__seed0"
    assert ctrl.cell.control_for == "synth_int_sentiment" and ctrl.intermediate_data_task == "synth_int_sentiment"

    # The declared data: the control phase's features are the real phase's inputs, its labels a permutation.
    direct = config.load(SMOKE, over + [f"output_dir={tmp_path / 'direct'}"]).cells()
    real, ctrl = direct[0], direct[2]   # (the phases built here may cache features in their output_dir)
    mesh, tok = distributed.make_mesh(0), inputs.tokenizer_for(real)
    task = dp.get_task("synth_int_sentiment")
    a = TrainingData(real, task, real.intermediate, tok, mesh, "intermediate")
    b = TrainingData(ctrl, task, ctrl.intermediate, tok, mesh, "intermediate",
                     lambda t, ex: control.permuted(t, ex, ctrl.cell.seed))
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert np.array_equal(a.train_feats.arrays[key], b.train_feats.arrays[key])
    la, lb = a.train_feats.arrays["labels"], b.train_feats.arrays["labels"]
    assert sorted(la) == sorted(lb) and (la != lb).any()
    assert [x[0]["feature_index"].tolist() for x in a.batcher.iterate(0)] == \
        [x[0]["feature_index"].tolist() for x in b.batcher.iterate(0)]

    r = cli("grid", SMOKE, *over)
    assert r.returncode == 0, r.stderr[-3000:]
    res = {c.cell_id: json.loads((out / "cells" / c.cell_id / "results.json").read_text()) for c in (real, ctrl)}
    rec_real, rec_ctrl = (res[c.cell_id]["training"]["intermediate"] for c in (real, ctrl))
    for key in ("task", "train_examples", "epochs", "steps", "tokens", "flops"):
        assert rec_ctrl[key] == rec_real[key], key
    assert rec_real["steps"] == math.ceil(96 / 16)
    assert res[ctrl.cell_id]["intermediate_task"] == "control"
    assert res[ctrl.cell_id]["control_for"] == "synth_int_sentiment" and res[real.cell_id]["control_for"] is None
    folders = sorted(p.name for p in (out / "intermediate").iterdir())
    assert folders == ["bert-tiny__int-control-synth_int_sentiment__seed0", "bert-tiny__int-synth_int_sentiment__seed0"]
    logs = [train_log(out / "intermediate" / f) for f in folders]
    steps = [[row["step"] for row in log if "loss" in row] for log in logs]
    assert steps[0] == steps[1] and steps[0]
    # Retrieval cells score the encoder each arm's intermediate phase left: no target phase, per-query rows.
    for cell in (real_retrieval, ctrl_retrieval):
        rr = json.loads((out / "cells" / cell.cell_id / "results.json").read_text())
        assert rr["training"]["intermediate"] == res[(real if cell is real_retrieval else ctrl).cell_id]["training"]["intermediate"]
        assert rr["training"]["target"]["steps"] == 0 and rr["train_size"] is None
        assert rr["retrieval"]["layer"] == 1 and rr["retrieval"]["num_layers"] == 2 and rr["retrieval"]["pooling"] == "mean"
        assert set(rr["per_language"]) == {"x1"} and rr["metric"] == "accuracy"
        preds = json.loads((out / "cells" / cell.cell_id / rr["predictions"]).read_text())
        assert "x1" in json.dumps(preds)
    # The plan counts the control run as the run counted it (a run of its own, not the real one's).
    costs = {p.run: p for p in plan.plan_grid(cfg) if p.kind == "intermediate"}
    assert set(costs) == set(folders)
    assert all((p.steps, p.tokens, p.flops) == (rec_real["steps"], rec_real["tokens"], rec_real["flops"])
               for p in costs.values())


# ---- retrieval -----------------------------------------------------------------------------------

def _pool(task, queries, candidates, gold):
    pool = dp.Candidates(ids=tuple(str(i) for i in range(len(candidates))), texts=tuple(candidates))
    return [dp.Example(id=f"q{i}", language="x1", text=q, candidates=pool, label=tuple(g))
            for i, (q, g) in enumerate(zip(queries, gold))]


def test_retrieval_scores_match_a_hand_computed_nearest_neighbour_example():
    """Three queries, four candidates, embeddings by hand. Cosine similarities (rows: queries):
        q0 = (1, 0):   c0 (1, 0.1) 0.995, c1 (0, 1) 0, c2 (-1, 0) -1, c3 (1, 1) 0.707      -> c0, c3, c1, c2
        q1 = (0, 2):   c0 0.0995, c1 1, c2 0, c3 0.707                                       -> c1, c3, c0, c2
        q2 = (-1, -0.2): c0 -0.995..., c1 -0.196, c2 0.981, c3 -0.832                         -> c2, c1, c3, c0
    Tatoeba (top-1 = gold): gold c0, c3, c2 -> correct, wrong, correct: 66.67.
    LAReQA (AP@20 with several golds): q0 gold {c0, c3}: hits at ranks 1, 2 -> (1/1 + 2/2) / 2 = 1;
    q1 gold {c0}: rank 3 -> 1/3; q2 gold {c3, c0}: ranks 3, 4 -> (1/3 + 2/4) / 2 = 5/12; mean 0.5833."""
    q = np.array([[1, 0], [0, 2], [-1, -0.2]], np.float32)
    c = np.array([[1, 0.1], [0, 1], [-1, 0], [1, 1]], np.float32)
    raw = {"query_embeddings": q, "candidate_embeddings": c}
    texts = (["a", "b", "c"], ["w", "x", "y", "z"])

    tatoeba = dp.get_task("tatoeba")
    ex = _pool(tatoeba, *texts, [("0",), ("3",), ("2",)])
    feats = dp.featurize(tatoeba, ex, dp.synthetic_tokenizer("bert"), max_length=16)
    ranked = dp.postprocess(tatoeba, feats, raw)
    assert [r[:4] for r in ranked] == [["0", "3", "1", "2"], ["1", "3", "0", "2"], ["2", "1", "3", "0"]]
    assert dp.evaluate(tatoeba, ranked, ex)["accuracy"] == pytest.approx(200 / 3)
    assert dp.per_example(tatoeba, ranked, ex) == ("accuracy", [[1.0], [0.0], [1.0]])

    lareqa = dp.get_task("lareqa")
    ex = _pool(lareqa, *texts, [("0", "3"), ("0",), ("3", "0")])
    feats = dp.featurize(lareqa, ex, dp.synthetic_tokenizer("bert"), max_length=16)
    ranked = dp.postprocess(lareqa, feats, raw)
    assert dp.evaluate(lareqa, ranked, ex)["map@20"] == pytest.approx(100 * (1 + 1 / 3 + 5 / 12) / 3)
    kind, rows = dp.per_example(lareqa, ranked, ex)
    assert kind == "mean" and np.allclose([r[0] for r in rows], [100, 100 / 3, 100 * 5 / 12])


@pytest.mark.parametrize("family", ["bert", "xlnet"])
def test_retrieval_embeds_with_the_mean_pooled_layer_of_the_transformers_reference(family):
    """The truncated encoder's mean-pooled output is transformers' hidden_states[layer] pooled over the mask
    (4 layers: layer 3), and the pipeline's nearest neighbours are those of the reference embeddings."""
    torch = pytest.importorskip("torch")
    import transformers

    import flax_models as fm
    from repro.training import distributed

    hf = dict(BERT if family == "bert" else XLNET)
    hf["num_hidden_layers" if family == "bert" else "n_layer"] = 4
    hf["vocab_size"] = len(dp.synthetic_tokenizer(family))
    if family == "bert":
        hf["max_position_embeddings"] = 64
    model = fm.from_config(hf, seed=3)
    encoder, layer = retrieval.truncated_encoder(model)
    assert layer == 3 == retrieval.pooled_layer(4) and retrieval.pooled_layer(12) == 8 and retrieval.pooled_layer(24) == 14

    task = dp.get_task("synth_retrieval")
    examples = dp.load_examples(task, "test", "x1", max_examples=12)
    tok = dp.synthetic_tokenizer(family)
    feats = dp.featurize(task, examples, tok, max_length=32)
    embed = retrieval.Embedder(encoder, distributed.make_mesh(1))
    ours = embed.raw_outputs(feats, 8, (16, 32))

    cls = transformers.BertModel if family == "bert" else transformers.XLNetModel
    cfg_cls = transformers.BertConfig if family == "bert" else transformers.XLNetConfig
    ref = cls(cfg_cls(**{k: v for k, v in hf.items() if k != "model_type"}))
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        ref = cls.from_pretrained(d, output_hidden_states=True).eval()

    def pooled(f):
        a = f.arrays
        with torch.no_grad():
            kw = dict(input_ids=torch.tensor(a["input_ids"], dtype=torch.long),
                      attention_mask=torch.tensor(a["attention_mask"], dtype=torch.long))
            if family == "bert":
                kw["token_type_ids"] = torch.tensor(a["token_type_ids"], dtype=torch.long)
            h = ref(**kw).hidden_states[layer].numpy()
        m = a["attention_mask"][..., None].astype(np.float32)
        return (h * m).sum(1) / m.sum(1)

    want = {"query_embeddings": pooled(feats), "candidate_embeddings": pooled(feats.candidates)}
    for k in want:
        assert np.abs(ours[k] - want[k]).max() < 1e-4, k
    # Nearest neighbours by hand (numpy cosine) on the reference's embeddings = the pipeline's ranking.
    q = want["query_embeddings"] / np.linalg.norm(want["query_embeddings"], axis=1, keepdims=True)
    c = want["candidate_embeddings"] / np.linalg.norm(want["candidate_embeddings"], axis=1, keepdims=True)
    ids = feats.candidates.extra["ids"]
    nearest = [ids[j] for j in (q @ c.T).argmax(1)]
    assert [r[0] for r in dp.postprocess(task, feats, ours)] == nearest
    gold_hits = np.mean([n == e.label[0] for n, e in zip(nearest, examples)]) * 100
    assert dp.evaluate(task, dp.postprocess(task, feats, ours), examples)["accuracy"] == pytest.approx(gold_hits)


def test_retrieval_targets_have_no_size_axis_and_no_target_phase(tmp_path):
    cfg = config.load(SMOKE, ["grid.models=[bert-tiny]", "grid.target_tasks=[synth_sentiment, synth_retrieval]",
                              "grid.train_sizes=[40, all]", f"output_dir={tmp_path}"])
    ids = [c.cell_id for c in cfg.cells()]
    assert ids == ["bert-tiny__int-none__tgt-synth_sentiment__seed0__n40", "bert-tiny__int-none__tgt-synth_sentiment__seed0__nall",
                   "bert-tiny__int-none__tgt-synth_retrieval__seed0",
                   "bert-tiny__int-synth_int_sentiment__tgt-synth_sentiment__seed0__n40",
                   "bert-tiny__int-synth_int_sentiment__tgt-synth_sentiment__seed0__nall",
                   "bert-tiny__int-synth_int_sentiment__tgt-synth_retrieval__seed0"]
    costs = {p.run: p for p in plan.plan_grid(cfg)}
    # Each size priced on its own examples (the plan's batch cache is keyed by the cap too).
    assert costs["bert-tiny__int-none__tgt-synth_sentiment__seed0__n40"].examples == 40
    assert costs["bert-tiny__int-none__tgt-synth_sentiment__seed0__nall"].examples == 400
    r = costs["bert-tiny__int-none__tgt-synth_retrieval__seed0"]
    assert (r.kind, r.basis, r.steps, r.flops) == ("target", "none", 0, 0)


# ---- matched pairings ---------------------------------------------------------------------------------

def test_the_paper_preset_pairs_each_target_with_its_own_intermediate_task():
    """The primary analysis: each target with none, the intermediate task of its type (the seed study's IMDB for
    sentiment, MNLI for inference, QQP for similarity; SQuAD for QA and retrieval, SocialIQA for XCOPA) and that
    task's compute-matched control; the full cross stays one override away (grid.analysis=cross)."""
    from repro.study import known_sizes

    cfg = config.load(PAPER)
    by_type = {"sentiment": "imdb", "classification": "mnli", "similarity": "qqp"}
    for target, paired in cfg.grid.pairings.items():
        task = dp.get_task(target)
        if task.setting:
            assert paired == by_type[task.setting[0]], target
        elif task.kind in ("qa", "retrieval"):
            assert paired == "squad", target
    assert cfg.grid.pairings["xcopa"] == "siqa" and set(cfg.grid.pairings) == set(cfg.grid.target_tasks)
    arms = collections.defaultdict(set)
    for c in cfg.cells():
        arms[c.cell.target_task].add((c.cell.intermediate_task, c.cell.control_for))
    assert {t: a for t, a in arms.items()} == {
        t: {("none", None), (p, None), ("control", p)} for t, p in cfg.grid.pairings.items()}
    # The seed study's regime at the low size: every paired intermediate set is >= 10x the 1,000 target examples.
    low = min(n for n in cfg.grid.train_sizes if n != "all")
    assert all(known_sizes.TRAIN_EXAMPLES[(p, "train", "en")].examples >= 10 * low for p in cfg.grid.pairings.values())
    assert {name: m.languages for name, m in cfg.models.items()} == {
        "mbert": "multilingual", "xlm-roberta-base": "multilingual", "xlnet-base": "english", "bert-base": "english",
        "roberta-base": "english"}
    cross = config.load(PAPER, ["grid.analysis=cross", "grid.models=[mbert]", "grid.seeds=[0]", "grid.train_sizes=[]"])
    assert {(c.cell.intermediate_task, c.cell.target_task) for c in cross.cells()} == {
        (i, t) for i in cross.grid.intermediate_tasks for t in cross.grid.target_tasks}
    with pytest.raises(config.ConfigError, match="grid.pairings has no entry for target 'siqa'"):
        config.load(PAPER, ["grid.target_tasks=[xnli, siqa]"])
