"""The findings on planted results: each verdict can be supported, contradicted or inconclusive, decided by the
paired bootstrap's intervals (a within-noise difference is inconclusive); the setup is compared, not judged."""
from __future__ import annotations

import pytest

from repro.report import claims
from repro.report.claims import CONTRADICTED, INCONCLUSIVE, MAIN_FINDING, NOT_TESTED, SUPPORTED
from repro.report.stats import Bootstrap
from repro.results import CellResults, Predictions
from tests.support.paths import ROOT
from tests.support.results_files import edited, make_cell, smoke_grid, smoke_grid_v3

MODELS = {"bert": "bert-tiny", "roberta": "roberta-tiny", "xlnet": "xlnet-tiny"}
EXAMPLES = 600


def cell(family, inter, target, seed, avg, setting=None, **kw):
    """A schema-3 cell whose average is `avg` (en avg+4, de avg−4, 0-100) on EXAMPLES examples a language."""
    r, p = make_cell(MODELS[family], inter, target, seed, per_language={"en": avg + 4, "de": avg - 4},
                     examples=EXAMPLES, **kw)
    if setting is not None:
        r["setting"] = {"task_type": setting[0], "transfer": setting[1]}
    return r, p


def _read(made):
    cells = [CellResults.from_dict(r, r["cell_id"]) for r, _ in made]
    preds = {r["cell_id"]: Predictions.from_dict(p, r["cell_id"]) for r, p in made if p is not None}
    return cells, Bootstrap(cells, preds, resamples=1000)


def evaluate(made):
    return claims.evaluate_claims(*_read(made))


def by_id(made, i):
    return next(c for c in evaluate(made) if c.id == i)


def test_smoke_shaped_grid_gets_a_verdict_with_intervals_for_every_finding():
    result = evaluate(smoke_grid_v3(seeds=(0, 1, 2)))
    assert [c.id for c in result] == [1, 2, 3, 4, 5, MAIN_FINDING]
    for c in result:
        assert c.verdict in (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTED)
        assert c.evidence and c.numbers is not None
    v = {c.id: c.verdict for c in result}
    # Intermediate training adds 5 points to every synthetic cell; XLNet is 15 points below; 2 of 6 settings.
    assert v[1] == SUPPORTED and v[4] == SUPPORTED and v[MAIN_FINDING] == CONTRADICTED
    assert v[2] in (INCONCLUSIVE, NOT_TESTED) and v[3] in (INCONCLUSIVE, NOT_TESTED)
    assert "[" in result[0].evidence     # every deciding difference is printed with its interval


@pytest.mark.parametrize("gap, verdict", [(0.5, INCONCLUSIVE), (-0.5, INCONCLUSIVE),
                                          (-20.0, SUPPORTED), (20.0, CONTRADICTED)])
def test_main_finding_two_cells_on_one_seed(gap, verdict):
    """with − without = gap points on one seed: within the noise of 600 examples it decides nothing."""
    made = [cell("bert", "imdb", "t", 0, 60 + gap), cell("bert", None, "t", 0, 60)]
    c = by_id(made, MAIN_FINDING)
    assert c.verdict == verdict, c.evidence
    t = c.numbers["tasks"]["t"]
    assert t["point"] == pytest.approx(gap, abs=0.2)
    assert (t["ci_low"] <= 0 <= t["ci_high"]) == (verdict == INCONCLUSIVE)


def test_main_finding_counts_most_tasks():
    made = []
    for task, gap in (("a", -20), ("b", -20), ("c", 20)):
        made += [cell("bert", "imdb", task, 0, 60 + gap), cell("bert", None, task, 0, 60)]
    c = by_id(made, MAIN_FINDING)
    assert c.verdict == SUPPORTED and c.numbers["without_better"] == 2
    made += [cell("bert", "imdb", "d", 0, 60.5), cell("bert", None, "d", 0, 60)]
    assert by_id(made, MAIN_FINDING).verdict == INCONCLUSIVE     # 2 of 4 with one open: not yet most


def _experiment(xlnet_score, seeds=(0,)):
    return [cell("bert", None, "t", s, 70) for s in seeds] + [cell("roberta", None, "t", s, 72) for s in seeds] + \
           [cell("xlnet", None, "t", s, xlnet_score) for s in seeds]


def test_claim4_supported_contradicted_or_inconclusive():
    c = by_id(_experiment(50), 4)
    assert c.verdict == SUPPORTED and c.numbers["experiments"]["t/none"]["pairwise"] == {"bert": "yes",
                                                                                          "roberta": "yes"}
    assert by_id(_experiment(85), 4).verdict == CONTRADICTED
    c = by_id(_experiment(69.5), 4)          # 0.5 below BERT on one seed: inside the noise
    assert c.verdict == INCONCLUSIVE and "bert − xlnet" in c.evidence


def test_claim4_not_tested_without_xlnet():
    made = [m for m in _experiment(50) if m[0]["model"]["family"] != "xlnet"]
    assert by_id(made, 4).verdict == NOT_TESTED


def test_claim5_equivalence_needs_an_interval_inside_one_point():
    far = [cell("bert", None, "t", 0, 60), cell("roberta", None, "t", 0, 80), cell("xlnet", None, "t", 0, 40)]
    c = by_id(far, 5)
    assert c.verdict == CONTRADICTED and c.numbers["tasks"]["t"]["roberta_approx_bert"] == "no"
    near = [cell("bert", None, "t", 0, 60), cell("roberta", None, "t", 0, 60.5), cell("xlnet", None, "t", 0, 40)]
    c = by_id(near, 5)    # 0.5 apart, but 600 examples cannot show |Δ| ≤ 1
    assert c.verdict == INCONCLUSIVE and c.numbers["tasks"]["t"]["above_xlnet"] == "yes"
    # The same arms scored identically (same rows): the interval of the difference is [0, 0], inside ±1.
    same = [cell("bert", None, "t", 0, 60), cell("roberta", None, "t", 0, 60), cell("xlnet", None, "t", 0, 40)]
    same[1][1]["languages"] = same[0][1]["languages"]
    assert by_id(same, 5).verdict == SUPPORTED


def test_claim1_is_a_family_ranking_with_intermediate_training_not_claim_11s_negation():
    base = _experiment(50)
    c = by_id(base + [cell("bert", "imdb", "t", 0, 90), cell("roberta", "imdb", "t", 0, 80),
                      cell("xlnet", "imdb", "t", 0, 50)], 1)
    assert c.verdict == SUPPORTED and "family ranking within the intermediate-trained regime" in c.numbers["reading"]
    c = by_id(base + [cell("bert", "imdb", "t", 0, 60), cell("roberta", "imdb", "t", 0, 60),
                      cell("xlnet", "imdb", "t", 0, 80)], 1)
    assert c.verdict == CONTRADICTED and "xlnet-tiny/imdb" in c.evidence
    assert by_id(base + [cell("bert", "imdb", "t", 0, 72.5), cell("xlnet", "imdb", "t", 0, 72)], 1).verdict \
        == INCONCLUSIVE
    # Intermediate training hurts every family (claim 11 holds) and BERT/RoBERTa still lead XLNet (claim 1 holds):
    # the two seed claims can both be supported.
    both = [cell("bert", None, "t", 0, 80), cell("roberta", None, "t", 0, 80), cell("xlnet", None, "t", 0, 60),
            cell("bert", "imdb", "t", 0, 60), cell("roberta", "imdb", "t", 0, 60), cell("xlnet", "imdb", "t", 0, 40)]
    v = {c.id: c.verdict for c in evaluate(both)}
    assert v[1] == SUPPORTED and v[MAIN_FINDING] == SUPPORTED


def _langs(family, inter, task, seed, per_language, languages=None):
    r, p = make_cell(MODELS[family], inter, task, seed, per_language=per_language, examples=EXAMPLES)
    if languages is not None:
        if "model_languages" not in CellResults.__dataclass_fields__:
            pytest.skip("results.json has no model_languages field in this tree")
        r["model_languages"] = languages
    return r, p


def test_claim11_is_decided_on_the_non_english_average_with_its_equivalence_verdict():
    # English gains 30 points, the zero-shot languages nothing: the average moves, the primary endpoint does not.
    made = []
    for s in range(3):
        made += [_langs("bert", "imdb", "t", s, {"en": 90, "de": 60 + s, "sw": 50 + s}),
                 _langs("bert", None, "t", s, {"en": 60, "de": 60 + s, "sw": 50 + s})]
    c = by_id(made, MAIN_FINDING)
    t = c.numbers["tasks"]["t"]
    assert t["endpoint"] == "non_english" and t["point"] == pytest.approx(0.0, abs=1e-9)
    assert c.verdict == CONTRADICTED and t["verdict"] == "equivalent"      # same rows: [0, 0] inside ±1
    assert "equivalent" in c.evidence and c.numbers["not_without_better"] == 1


def test_claim11_leaves_out_english_only_models_on_a_cross_lingual_target():
    made = [_langs("bert", "imdb", "t", 0, {"en": 70, "de": 30}, "english"),
            _langs("bert", None, "t", 0, {"en": 70, "de": 60}, "english"),
            _langs("roberta", "imdb", "t", 0, {"en": 70, "de": 60}, "multilingual"),
            _langs("roberta", None, "t", 0, {"en": 70, "de": 60}, "multilingual")]
    t = by_id(made, MAIN_FINDING).numbers["tasks"]["t"]
    assert t["pairs"] == 1 and t["english_only_models_left_out"] == ["bert-tiny"]


def _model(name, languages, de):
    if "model_languages" not in CellResults.__dataclass_fields__:
        pytest.skip("results.json has no model_languages field in this tree")
    r, p = make_cell(name, None, "t", 0, per_language={"en": 70, "de": de}, examples=EXAMPLES)
    r["model_languages"] = languages
    return r, p


def test_architecture_claims_use_the_english_only_trio_or_state_the_confound():
    mixed = [_model("bert-m", "multilingual", 60), _model("roberta-m", "multilingual", 60),
             _model("xlnet-base", "english", 30)]
    c = by_id(mixed, 4)
    assert c.verdict == SUPPORTED and "pretraining-language confound" in c.evidence
    assert "xlnet english" in c.numbers["models"]
    # With English-only BERT and RoBERTa too, claims 1-5 use the trio: XLNet is no longer below them.
    trio = mixed + [_model("bert-base", "english", 30), _model("roberta-base", "english", 30)]
    c = by_id(trio, 4)
    assert "English-only trio" in c.numbers["models"] and "bert-m" not in c.evidence and c.verdict != SUPPORTED


def _six_settings(roberta_wins: int, margin=10.0):
    made = []
    for k, setting in enumerate(claims.SETTINGS):
        r, b = (70 + margin, 70) if k < roberta_wins else (70, 70 + margin)
        target = f"task{k}"
        made += [cell("roberta", "imdb", target, 0, r, setting), cell("bert", "imdb", target, 0, b, setting),
                 cell("xlnet", "imdb", target, 0, 50, setting)]
    return made


def test_claims2_and_3_need_all_six_settings_resolved():
    v = {c.id: c.verdict for c in evaluate(_six_settings(3))}
    assert v[2] == SUPPORTED and v[3] == SUPPORTED
    v = {c.id: c.verdict for c in evaluate(_six_settings(4))}
    assert v[2] == CONTRADICTED and v[3] == CONTRADICTED
    v = {c.id: c.verdict for c in evaluate(_six_settings(3, margin=0.5))}
    assert v[2] == INCONCLUSIVE and v[3] == INCONCLUSIVE
    two = [m for m in _six_settings(3) if m[0]["target_task"] in ("task0", "task3")]
    v = {c.id: c.verdict for c in evaluate(two)}
    assert v[2] == NOT_TESTED and v[3] == NOT_TESTED
    third = _six_settings(3)
    third[-1] = cell("xlnet", "imdb", "task5", 0, 95, claims.SETTINGS[5])
    assert by_id(third, 3).verdict == CONTRADICTED


def test_findings_leave_out_same_data_pairings_and_smaller_train_sizes():
    made = [cell("bert", "mnli", "xnli", 0, 90, same_data_as_target="MNLI is XNLI's English training set"),
            cell("bert", None, "xnli", 0, 60)]
    c = by_id(made, MAIN_FINDING)
    assert c.verdict == NOT_TESTED
    assert claims.same_data_pairings(_read(made)[0])[0]["intermediate_task"] == "mnli"
    sizes = [cell("bert", "imdb", "t", 0, 90, train_size=100), cell("bert", None, "t", 0, 60, train_size=100),
             cell("bert", "imdb", "t", 0, 40), cell("bert", None, "t", 0, 60)]
    c = by_id(sizes, MAIN_FINDING)
    assert c.verdict == SUPPORTED     # the full-size cells (40 vs 60), not the 100-example ones


def test_schema1_cells_with_two_seeds_have_no_interval_and_so_no_verdict():
    made = [(c, None) for c in smoke_grid()]
    result = evaluate(made)
    assert all(c.verdict in (INCONCLUSIVE, NOT_TESTED) for c in result)
    assert "no CI" in result[0].evidence and "no per-example predictions" in result[0].evidence


def _devs(results):
    return {d.id: d for d in claims.deviations([CellResults.from_dict(c, c["cell_id"]) for c in results])}


def test_deviations_say_what_the_run_did_against_the_paper():
    grid = smoke_grid(seeds=(0,))
    d = _devs(grid)
    assert [*d] == [6, 7, 8, 9, 10]
    assert d[6].follows == "no" and "1 epoch (6 cells)" in d[6].run and "the paper's 100" in d[6].run
    assert d[6].paper == "100 epochs on the large dataset"
    assert _devs([edited(c, **{"training.intermediate.epochs": 100}) if c["intermediate_task"] else c
                  for c in grid])[6].follows == "yes"
    changed = [edited(c, **{"config.target.optimizer.learning_rate": 3e-5}) if c["intermediate_task"] else c
               for c in grid]
    d7 = _devs(changed)[7]
    assert d7.follows == "no" and d7.numbers["differences"][0]["keys"] == ["config.target"]
    assert _devs([edited(grid[0], frozen_parameters=10)] + grid[1:])[8].follows == "no"
    small = [edited(c, **{"training.intermediate.train_examples": 1000}) if c["intermediate_task"] else c
             for c in grid]
    d9 = _devs(small)[9]
    assert d9.follows == "no" and d9.numbers["min_ratio"] == pytest.approx(5.0) and "5×" in d9.run

    def with_intermediate(name):
        return [edited(c, intermediate_task=name, **{"training.intermediate.task": name})
                if c["intermediate_task"] and c["target_task"] == "synth_nli" else c for c in grid]
    assert _devs(with_intermediate("mnli"))[10].follows == "no"
    assert _devs(with_intermediate("imdb"))[10].follows == "yes"
    text_classification = [
        edited(c, setting={"task_type": "text classification", "transfer": "domain adaptation"})
        if c["target_task"] == "synth_nli" else c for c in with_intermediate("imdb")]
    assert _devs(text_classification)[10].follows == "yes"     # the study's names are aliases
    baseline = [c for c in grid if not c["intermediate_task"]]
    assert all(_devs(baseline)[i].follows == NOT_TESTED for i in (6, 7, 9, 10))


def test_nothing_to_compare_is_not_tested():
    baseline = [cell(f, None, "t", 0, 60) for f in ("bert", "roberta")]
    v = {c.id: c.verdict for c in evaluate(baseline)}
    assert v[1] == NOT_TESTED and v[MAIN_FINDING] == NOT_TESTED and v[4] == NOT_TESTED


def test_real_smoke_results_if_present():
    """On the smoke grid's own output (./run_all.sh writes runs/smoke): every finding has a verdict."""
    from repro.results import load_cells, load_predictions, result_paths, read_json

    results = ROOT / "runs" / "smoke"
    if not list(results.glob("cells/*/results.json")):
        pytest.skip("no runs/smoke results here (./run_all.sh makes them)")
    cells = load_cells(results)
    dirs = {read_json(p)["cell_id"]: p.parent for p in result_paths(results)}
    boot = Bootstrap(cells, {c.cell_id: load_predictions(dirs[c.cell_id], c) for c in cells}, resamples=300)
    result = claims.evaluate_claims(cells, boot)
    assert [c.id for c in result] == [1, 2, 3, 4, 5, MAIN_FINDING]
    assert all(c.verdict in (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTED) and c.evidence for c in result)
    assert result[1].verdict != SUPPORTED     # the smoke grid covers at most two of the six settings
