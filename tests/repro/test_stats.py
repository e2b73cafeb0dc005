"""The report's statistics against closed forms: a language's score from its rows (as data_prep computes it),
the paired bootstrap's interval of a proportion, of a paired and of an independent two-sample difference, a
seeds-only interval, and the cases where no interval exists."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from data_prep import metrics as dp_metrics
from repro.report import stats
from repro.report.stats import Bootstrap, Estimate, from_rows, mean_of, weighted_scores
from repro.results import CellResults, Predictions
from tests.support.results_files import edited, make_cell, make_results

Z = 1.959964


def _rows(kind, n, rng):
    if kind == "accuracy":
        return rng.integers(0, 2, (n, 1)).astype(float)
    if kind == "span_f1":
        g = rng.integers(0, 4, n)
        p = rng.integers(0, 4, n)
        return np.stack([np.minimum(g, p) * rng.integers(0, 2, n), p, g], axis=1).astype(float)
    if kind == "mean":
        return rng.random((n, 1))
    x = rng.normal(size=n)
    return np.stack([x + rng.normal(size=n), x], axis=1)


@pytest.mark.parametrize("kind", stats.ROW_KINDS)
def test_from_rows_is_data_prep_from_rows(kind):
    rng = np.random.default_rng(3)
    for n in (1 if kind != "pearson" else 3, 7, 200):
        rows = _rows(kind, n, rng)
        assert from_rows(kind, rows) == pytest.approx(dp_metrics.from_rows(kind, rows), abs=1e-9)
        idx = rng.integers(0, n, n)     # a resample scored by its weights is the resample's metric
        if kind == "pearson" and len(set(idx)) < 3:
            continue
        weights = np.bincount(idx, minlength=n)[None, :]
        assert weighted_scores(kind, weights, rows)[0] == pytest.approx(dp_metrics.from_rows(kind, rows[idx]),
                                                                        abs=1e-9)
    with pytest.raises(ValueError, match="unknown kind"):
        from_rows("bleu", [[1.0]])


def _cells(*made):
    """CellResults and Predictions of make_cell pairs, as the report reads them from files."""
    cells = [CellResults.from_dict(r, r["cell_id"]) for r, _ in made]
    preds = {r["cell_id"]: Predictions.from_dict(p, r["cell_id"]) for r, p in made}
    return cells, preds


def _average(scores):
    return sum(scores.values()) / len(scores)


def test_interval_of_one_proportion_is_the_binomial_interval():
    n, p = 400, 60.0
    cells, preds = _cells(make_cell(per_language={"en": p}, examples=n, seed=0))
    boot = Bootstrap(cells, preds, resamples=4000, seed=1)
    e = boot.arm(cells, _average)
    assert e.point == pytest.approx(60.0) and e.method == "examples" and e.examples == n
    half = Z * 100 * math.sqrt(0.6 * 0.4 / n)            # 4.80 points
    lo, hi = e.ci()
    assert lo == pytest.approx(p - half, abs=0.5) and hi == pytest.approx(p + half, abs=0.5)


def _two_arms(a_rows, b_rows, n):
    made = []
    for inter, rows in (("synth_int_sentiment", a_rows), (None, b_rows)):
        r, p = make_cell(intermediate=inter, per_language={"en": 50.0}, examples=n)
        p["languages"]["en"]["rows"] = [[float(v)] for v in rows]
        r["per_language"]["en"] = 100 * float(np.mean(rows))
        made.append((r, p))
    return _cells(*made)


@pytest.mark.parametrize("correlated", [False, True])
def test_interval_of_a_paired_difference_is_the_closed_form(correlated):
    rng = np.random.default_rng(5)
    n = 1000
    b = (rng.random(n) < 0.6).astype(float)
    a = np.where(rng.random(n) < 0.9, b, 1 - b) if correlated else (rng.random(n) < 0.7).astype(float)
    cells, preds = _two_arms(a, b, n)
    boot = Bootstrap(cells, preds, resamples=4000, seed=2)
    with_, without = boot.arm(cells[:1], _average, ("m",)), boot.arm(cells[1:], _average, ("m",))
    diff = with_ - without
    d = 100 * (a - b)
    assert diff.point == pytest.approx(d.mean())
    half = Z * d.std() / math.sqrt(n)    # independent arms: ≈ 1.96·sqrt(p1q1/n + p2q2/n)
    lo, hi = diff.ci()
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.08)
    assert (lo + hi) / 2 == pytest.approx(d.mean(), abs=0.15 * half)
    if not correlated:
        two_sample = Z * 100 * math.sqrt(a.mean() * (1 - a.mean()) / n + b.mean() * (1 - b.mean()) / n)
        assert (hi - lo) / 2 == pytest.approx(two_sample, rel=0.1)


def test_seeds_only_interval_is_the_interval_of_a_mean_and_needs_three_seeds():
    rng = random.Random(0)
    values = [70 + rng.gauss(0, 2) for _ in range(40)]
    cells = [CellResults.from_dict(make_results(seed=s, per_language={"en": v}), f"cell {s}")
             for s, v in enumerate(values)]
    boot = Bootstrap(cells, {}, resamples=4000)
    e = boot.arm(cells, _average)
    assert e.method == "seeds" and e.seeds == 40
    m, sd = np.mean(values), np.std(values)
    lo, hi = e.ci()
    assert (hi - lo) / 2 == pytest.approx(Z * sd / math.sqrt(40), rel=0.12)
    assert e.point == pytest.approx(m)
    two = boot.arm(cells[:2], _average)
    assert two.reps is None and not two.has_ci and "no per-example predictions" in two.why
    assert two.sign() == 0 and math.isnan(two.ci()[0])


def test_the_draws_are_reproducible_and_shared_by_a_paired_comparison():
    made = [make_cell(intermediate=i, seed=s, examples=300) for i in ("synth_int_sentiment", None) for s in (0, 1, 2)]
    cells, preds = _cells(*made)
    with_, without = cells[:3], cells[3:]

    def diff(boot):
        return boot.arm(with_, _average, ("m",)) - boot.arm(without, _average, ("m",))

    a, b = diff(Bootstrap(cells, preds, resamples=500, seed=7)), diff(Bootstrap(cells, preds, resamples=500, seed=7))
    assert a.ci() == b.ci() and a.method == "examples+seeds" and a.seeds == 3
    assert diff(Bootstrap(cells, preds, resamples=500, seed=8)).ci() != a.ci()
    # An arm minus itself is 0 in every replicate: examples and seeds are drawn once for both sides.
    boot = Bootstrap(cells, preds, resamples=500)
    zero = boot.arm(with_, _average, ("m",)) - boot.arm(with_, _average, ("m",))
    assert np.all(zero.reps == 0) and zero.ci() == (0.0, 0.0)


def test_only_ids_every_cell_scored_are_paired():
    a = make_cell(intermediate="synth_int_sentiment", per_language={"en": 50.0}, examples=100)
    b = make_cell(intermediate=None, per_language={"en": 50.0}, examples=100)
    b[1]["languages"]["en"]["ids"][:10] = [f"other-{i}" for i in range(10)]
    cells, preds = _cells(a, b)
    boot = Bootstrap(cells, preds, resamples=200)
    assert boot.tasks["synth_sentiment"].unpaired == {"en": 20}
    assert boot.arm(cells[:1], _average).examples == 90
    assert boot.describe()["tasks"]["synth_sentiment"]["paired_examples"] == {"en": 90}


def test_a_task_with_a_cell_lacking_predictions_falls_back_to_seeds():
    made = [make_cell(seed=s) for s in (0, 1, 2)]
    cells, preds = _cells(*made)
    old = CellResults.from_dict(edited(make_results(seed=3), schema_version=2), "old")
    boot = Bootstrap([*cells, old], preds, resamples=300)
    assert boot.tasks["synth_sentiment"].mode == "seeds"
    e = boot.arm([*cells, old], _average)
    assert e.method == "seeds" and e.point == pytest.approx(np.mean([c.average for c in [*cells, old]]))


def test_estimate_arithmetic():
    r = np.arange(5, dtype=float)
    a, b = Estimate(2.0, r, "examples", 100, 1), Estimate(1.0, r * 2, "seeds", None, 3)
    d = a - b
    assert d.point == 1.0 and list(d.reps) == list(-r) and d.method == "examples+seeds" and d.seeds == 1
    assert mean_of([a, b]).point == 1.5
    none = Estimate(1.0, None, "none", why="two seeds")
    assert (a - none).reps is None and (a - none).why == "two seeds" and not (a - none).has_ci
    assert Estimate(0.0, np.array([1.0, 2.0, 3.0]), "examples").sign() == 1
    assert Estimate(0.0, np.array([-1.0, 2.0]), "examples").sign() == 0
