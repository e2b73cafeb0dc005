"""The claims check on planted results: each verdict can go either way, and says why."""
from __future__ import annotations

import pytest

from repro.report import claims
from repro.report.claims import NOT_SUPPORTED, NOT_TESTED, SUPPORTED
from repro.results import CellResults
from tests.support.paths import ROOT
from tests.support.results_files import edited, make_results, smoke_grid

MODELS = {"bert": "bert-tiny", "roberta": "roberta-tiny", "xlnet": "xlnet-tiny"}


def cell(family, inter, target, seed, avg, setting=None):
    """A results dict whose `average` is `avg` (en avg+0.04, de avg−0.04)."""
    r = make_results(MODELS[family], inter, target, seed, per_language={"en": avg + 0.04, "de": avg - 0.04})
    if setting is not None:
        r["setting"] = {"task_type": setting[0], "transfer": setting[1]}
    return r


def evaluate(cells):
    """The claims of results dicts, read through the results schema as the report reads files."""
    return claims.evaluate_claims([CellResults.from_dict(c, c["cell_id"]) for c in cells])


def verdicts(cells):
    return {c.id: c.verdict for c in evaluate(cells)}


def by_id(cells, i):
    return next(c for c in evaluate(cells) if c.id == i)


def test_smoke_shaped_grid_gets_a_verdict_with_numbers_for_every_claim():
    result = evaluate(smoke_grid())
    assert [c.id for c in result] == list(range(1, 11))
    for c in result:
        assert c.verdict in (SUPPORTED, NOT_SUPPORTED, NOT_TESTED)
        assert c.evidence and c.numbers is not None
    v = {c.id: c.verdict for c in result}
    # The smoke grid has two of the six settings and trains 1 intermediate epoch.
    assert v == {1: SUPPORTED, 2: NOT_TESTED, 3: NOT_TESTED, 4: SUPPORTED, 5: SUPPORTED, 6: NOT_SUPPORTED,
                 7: SUPPORTED, 8: SUPPORTED, 9: SUPPORTED, 10: NOT_SUPPORTED}
    assert "epochs 1" in result[5].evidence
    # The synthetic stand-in for IMDB is not IMDB: the claim is about the dataset actually used.
    assert "synth_nli: intermediate synth_int_sentiment" in result[9].evidence


def _experiment(xlnet_score):
    return [cell("bert", None, "t", s, 0.70) for s in (0, 1)] + \
           [cell("roberta", None, "t", s, 0.72) for s in (0, 1)] + \
           [cell("xlnet", None, "t", s, xlnet_score) for s in (0, 1)]


def test_claim4_supported_when_xlnet_is_lowest_everywhere():
    c = by_id(_experiment(0.50), 4)
    assert c.verdict == SUPPORTED
    assert c.numbers["experiments"]["t/none"]["scores"]["xlnet"]["mean"] == pytest.approx(0.50)


def test_claim4_not_supported_when_xlnet_beats_bert():
    c = by_id(_experiment(0.71), 4)
    assert c.verdict == NOT_SUPPORTED
    assert c.numbers["experiments"]["t/none"]["at_or_below_xlnet"] == ["bert"]
    assert "xlnet 0.71" in c.evidence


def test_claim4_not_tested_without_xlnet():
    cells = [c for c in _experiment(0.5) if c["model"]["family"] != "xlnet"]
    assert by_id(cells, 4).verdict == NOT_TESTED


def test_claim5_tolerance_is_one_point_or_pooled_std():
    close = [cell("bert", None, "t", s, 0.700) for s in (0, 1)] + [cell("roberta", None, "t", s, 0.705) for s in (0, 1)] \
        + [cell("xlnet", None, "t", s, 0.5) for s in (0, 1)]
    assert by_id(close, 5).verdict == SUPPORTED
    far = [cell("bert", None, "t", s, 0.70) for s in (0, 1)] + [cell("roberta", None, "t", s, 0.75) for s in (0, 1)] \
        + [cell("xlnet", None, "t", s, 0.5) for s in (0, 1)]
    c = by_id(far, 5)
    assert c.verdict == NOT_SUPPORTED and c.numbers["tasks"]["t"]["tolerance"] == pytest.approx(0.01)
    noisy = [cell("bert", None, "t", s, a) for s, a in ((0, 0.60), (1, 0.80))] \
        + [cell("roberta", None, "t", s, 0.75) for s in (0, 1)] + [cell("xlnet", None, "t", s, 0.5) for s in (0, 1)]
    assert by_id(noisy, 5).verdict == SUPPORTED     # |Δ| 0.05 < pooled std 0.1


def _six_settings(roberta_wins: int):
    cells = []
    for k, setting in enumerate(claims.SETTINGS):
        r, b = (0.8, 0.7) if k < roberta_wins else (0.7, 0.8)
        target = f"task{k}"
        cells += [cell("roberta", "imdb", target, 0, r, setting), cell("bert", "imdb", target, 0, b, setting),
                  cell("xlnet", "imdb", target, 0, 0.5, setting)]
    return cells


def test_claims2_and_3_need_all_six_settings():
    v = verdicts(_six_settings(3))
    assert v[2] == SUPPORTED and v[3] == SUPPORTED
    v = verdicts(_six_settings(4))
    assert v[2] == NOT_SUPPORTED and v[3] == NOT_SUPPORTED
    two = [c for c in _six_settings(3) if c["target_task"] in ("task0", "task3")]
    v = verdicts(two)
    assert v[2] == NOT_TESTED and v[3] == NOT_TESTED
    # XLNet best in one setting: BERT can no longer be best in "the other three".
    cells = _six_settings(3)
    for c in cells:
        if c["target_task"] == "task5" and c["model"]["family"] == "xlnet":
            c["average"] = 0.99
    assert verdicts(cells)[3] == NOT_SUPPORTED


def test_claim1_fails_when_no_intermediate_beats_intermediate():
    cells = _experiment(0.5) + [cell("bert", "imdb", "t", s, 0.71) for s in (0, 1)] + \
        [cell("roberta", "imdb", "t", s, 0.71) for s in (0, 1)]
    c = by_id(cells, 1)
    assert c.verdict == NOT_SUPPORTED and c.numbers["tasks"]["t"]["best_regime"] == "without"
    cells += [cell("roberta", "imdb", "t", s, 0.9) for s in (2, 3)]
    assert by_id(cells, 1).verdict == SUPPORTED


def test_setup_claims_follow_what_the_run_did():
    grid = smoke_grid(seeds=(0,))
    hundred = [edited(c, **{"training.intermediate.epochs": 100}) if c["intermediate_task"] else c for c in grid]
    assert by_id(hundred, 6).verdict == SUPPORTED

    changed = [edited(c, **{"config.target.optimizer.learning_rate": 3e-5}) if c["intermediate_task"] else c
               for c in grid]
    c7 = by_id(changed, 7)
    assert c7.verdict == NOT_SUPPORTED and c7.numbers["differences"][0]["keys"] == ["config.target"]

    frozen = [edited(grid[0], frozen_parameters=10)] + grid[1:]
    assert by_id(frozen, 8).verdict == NOT_SUPPORTED

    small = [edited(c, **{"training.intermediate.train_examples": 1000}) if c["intermediate_task"] else c
             for c in grid]
    c9 = by_id(small, 9)
    assert c9.verdict == NOT_SUPPORTED and c9.numbers["min_ratio"] == pytest.approx(5.0)

    def with_intermediate(name):
        return [edited(c, intermediate_task=name, **{"training.intermediate.task": name})
                if c["intermediate_task"] and c["target_task"] == "synth_nli" else c for c in grid]
    assert by_id(with_intermediate("mnli"), 10).verdict == NOT_SUPPORTED
    assert by_id(with_intermediate("imdb"), 10).verdict == SUPPORTED
    text_classification = [
        edited(c, setting={"task_type": "text classification", "transfer": "domain adaptation"})
        if c["target_task"] == "synth_nli" else c for c in with_intermediate("imdb")]
    assert by_id(text_classification, 10).verdict == SUPPORTED     # the study's names are aliases


def test_nothing_to_compare_is_not_tested():
    baseline = [c for c in smoke_grid() if not c["intermediate_task"]]
    v = verdicts(baseline)
    for i in (1, 6, 7, 9, 10):
        assert v[i] == NOT_TESTED, i


def test_real_smoke_results_if_present():
    """On the smoke grid's own output (./run_all.sh writes runs/smoke): every claim has a verdict and numbers."""
    from repro.results import load_cells

    results = ROOT / "runs" / "smoke"
    if not list(results.glob("cells/*/results.json")):
        pytest.skip("no runs/smoke results here (./run_all.sh makes them)")
    result = claims.evaluate_claims(load_cells(results))
    assert [c.id for c in result] == list(range(1, 11))
    assert all(c.verdict in (SUPPORTED, NOT_SUPPORTED, NOT_TESTED) and c.evidence for c in result)
    # The smoke grid covers at most two of the six settings: claim 2 cannot be supported by it.
    assert result[1].verdict != SUPPORTED
