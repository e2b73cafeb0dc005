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
from repro.report.stats import Bootstrap, Estimate, SeedGroup, from_rows, mean_of, weighted_scores
from scipy.stats import norm as student_norm
from scipy.stats import t as student_t
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


@pytest.mark.parametrize("k", [3, 5, 40])
def test_seeds_only_interval_is_the_t_interval_of_a_mean_and_needs_three_seeds(k):
    rng = random.Random(0)
    values = [70 + rng.gauss(0, 2) for _ in range(k)]
    cells = [CellResults.from_dict(make_results(seed=s, per_language={"en": v}), f"cell {s}")
             for s, v in enumerate(values)]
    boot = Bootstrap(cells, {}, resamples=400)
    e = boot.arm(cells, _average)
    assert e.method == "seeds" and e.seeds == k and e.few_seeds == (k < 5)
    m, sd = np.mean(values), np.std(values, ddof=1)
    lo, hi = e.ci()
    assert (hi - lo) / 2 == pytest.approx(student_t.ppf(0.975, k - 1) * sd / math.sqrt(k), rel=1e-9)
    assert e.point == pytest.approx(m) and e.df == pytest.approx(k - 1) and e.shares() == (1.0, 0.0)
    two = boot.arm(cells[:2], _average)
    assert not two.has_ci and "no per-example predictions" in two.as_dict()["no_ci"] and two.method == "none"
    assert two.sign() == 0 and math.isnan(two.ci()[0]) and two.verdict(1.0) == stats.NO_INTERVAL


def test_two_seeds_with_predictions_give_no_interval_and_three_a_t_interval_of_paired_differences():
    made = [make_cell(intermediate=i, seed=s, examples=300) for i in ("synth_int_sentiment", None) for s in (0, 1, 2)]
    cells, preds = _cells(*made)
    boot = Bootstrap(cells, preds, resamples=500)

    def diff(with_, without):
        return boot.arm(with_, _average, ("m",)) - boot.arm(without, _average, ("m",))

    two = diff(cells[:2], cells[3:5])
    assert not two.has_ci and "2 seeds" in two.as_dict()["no_ci"] and two.verdict(1.0) == stats.NO_INTERVAL
    three = diff(cells[:3], cells[3:])
    d = np.array([_average(w.per_language) - _average(wo.per_language) for w, wo in zip(cells[:3], cells[3:])])
    v_seed = d.var(ddof=1) / 3
    v_seed_est, v_ex, df, n = three._variance()
    assert v_seed_est == pytest.approx(v_seed) and n == 300 and v_ex >= 0
    assert three.se == pytest.approx(math.sqrt(v_seed + v_ex))
    assert df >= 2 and three.few_seeds and three.method == "seeds+examples"
    lo, hi = three.ci()
    assert hi - three.point == pytest.approx(student_t.ppf(0.975, df) * three.se)


def test_the_draws_are_reproducible_and_shared_by_a_paired_comparison():
    made = [make_cell(intermediate=i, seed=s, examples=300) for i in ("synth_int_sentiment", None) for s in (0, 1, 2)]
    cells, preds = _cells(*made)
    with_, without = cells[:3], cells[3:]

    def diff(boot):
        return boot.arm(with_, _average, ("m",)) - boot.arm(without, _average, ("m",))

    a, b = diff(Bootstrap(cells, preds, resamples=500, seed=7)), diff(Bootstrap(cells, preds, resamples=500, seed=7))
    assert a.ci() == b.ci() and a.method == "seeds+examples" and a.seeds == 3
    other = diff(Bootstrap(cells, preds, resamples=500, seed=8))
    assert not np.array_equal(next(iter(other.groups.values())).reps, next(iter(a.groups.values())).reps)
    # An arm minus itself is 0 in every replicate: examples and seeds are drawn once for both sides.
    boot = Bootstrap(cells, preds, resamples=500)
    zero = boot.arm(with_, _average, ("m",)) - boot.arm(with_, _average, ("m",))
    (group,) = zero.groups.values()
    assert np.all(group.values == 0) and np.all(group.reps == 0) and zero.ci() == (0.0, 0.0)


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


def _estimate(values, key="g", reps=None, examples=None):
    values = np.asarray(values, dtype=float)
    return Estimate(float(values.mean()), {key: SeedGroup(tuple(range(len(values))), values, reps)}, examples)


def test_estimate_arithmetic_pairs_by_seed_group():
    a, b = _estimate([1.0, 2.0, 3.0]), _estimate([0.0, 0.5, 1.0])
    d = a - b       # the same group: per-seed differences
    (g,) = d.groups.values()
    assert d.point == pytest.approx(1.5) and list(g.values) == [1.0, 1.5, 2.0]
    assert d.se == pytest.approx(np.std([1.0, 1.5, 2.0], ddof=1) / math.sqrt(3))
    c = _estimate([0.0, 0.5, 1.0], key="other")      # independent: Welch
    e = a - c
    assert len(e.groups) == 2 and e.se == pytest.approx(math.sqrt(1 / 3 + 0.25 / 3))
    assert e.df == pytest.approx((1 / 3 + 0.25 / 3) ** 2 / ((1 / 3) ** 2 / 2 + (0.25 / 3) ** 2 / 2))
    assert mean_of([a, c]).point == pytest.approx(1.25) and mean_of([a, c]).se == pytest.approx(e.se / 2)
    none = Estimate(1.0, {}, why="two seeds")
    assert not (a - none).has_ci and (a - none).as_dict()["no_ci"] == "two seeds"


def test_the_example_component_is_the_covariance_the_seeds_share():
    """Replicates built from a shared item draw u and run noise e: V_example is Var(u), the run noise is counted
    only in the seed part."""
    rng = np.random.default_rng(0)
    u = rng.normal(0, 1.0, (20000, 1))
    reps = 5.0 + u + rng.normal(0, 2.0, (20000, 3))
    e = _estimate([4.0, 5.0, 6.5], reps=reps, examples=1000)
    v_seed, v_ex, df, n = e._variance()
    assert v_seed == pytest.approx(np.var([4.0, 5.0, 6.5], ddof=1) / 3)
    assert v_ex == pytest.approx(1.0, rel=0.05)
    assert df == pytest.approx((v_seed + v_ex) ** 2 / (v_seed ** 2 / 2 + v_ex ** 2 / 999))
    assert e.shares()[0] == pytest.approx(v_seed / (v_seed + v_ex))


def test_tost_separates_a_hand_made_equivalent_pair_from_a_different_one():
    # Per-seed paired differences of 10 seeds: mean 0.1, sd 0.3 -> 90 % CI 0.1 ± 1.833·0.0949 = [-0.074, 0.274].
    equivalent = _estimate([0.1 + x for x in (-0.4, 0.4, -0.2, 0.2, 0.0, 0.3, -0.3, 0.1, -0.1, 0.0)])
    lo90, hi90 = equivalent.ci(0.90)
    assert equivalent.point == pytest.approx(0.1) and -1 < lo90 < hi90 < 1
    assert equivalent.equivalent(1.0) and equivalent.verdict(1.0) == stats.EQUIVALENT
    assert not equivalent.equivalent(0.2) and equivalent.verdict(0.2) == stats.UNDERPOWERED   # MDE 0.30 > 0.2
    # Mean 0.2, se 0.1 (10 seeds): 95 % CI [-0.026, 0.426] holds 0, 90 % CI [0.017, 0.383] is not inside ±0.32,
    # and the MDE (2.262 + 0.883) · 0.1 = 0.3145 <= 0.32: the design could see δ, the data do not decide.
    pattern = np.array([-1.0, 1.0] * 5)
    open_ = _estimate(0.2 + pattern * 0.1 * math.sqrt(10) / pattern.std(ddof=1))
    assert open_.se == pytest.approx(0.1) and open_.mde() == pytest.approx(0.3145, abs=1e-3)
    assert open_.verdict(0.32) == stats.INCONCLUSIVE
    different = _estimate([2.0, 2.5, 3.0, 2.2, 2.8])
    assert different.excludes_zero() and not different.equivalent(1.0) and different.verdict(1.0) == stats.DIFFERENT
    noisy = _estimate([-3.0, 4.0, 1.0])
    assert noisy.mde() > 1.0 and noisy.verdict(1.0) == stats.UNDERPOWERED
    row = noisy.as_dict(delta=1.0)
    assert row["verdict"] == "underpowered" and row["few_seeds"] and row["ci90_low"] > row["ci_low"]


def test_mde_and_seeds_needed_against_closed_forms():
    values = [1.0, -1.0, 2.0, 0.0, -2.0]           # sd² = 2.5, k = 5, seeds only
    e = _estimate(values)
    se = math.sqrt(2.5 / 5)
    assert e.mde() == pytest.approx((student_t.ppf(0.975, 4) + student_t.ppf(0.8, 4)) * se)
    # seeds needed for MDE <= 1: the first k with (t_.975,k-1 + t_.8,k-1) * sqrt(2.5/k) <= 1.
    k = next(k for k in range(3, 1000)
             if (student_t.ppf(0.975, k - 1) + student_t.ppf(0.8, k - 1)) * math.sqrt(2.5 / k) <= 1)
    assert e.seeds_needed(1.0) == k == 22
    assert e.seeds_needed(100.0) == 3 and e.examples_needed(1.0) is None   # no example component: not estimated
    # An example component alone above δ: no seed count suffices; the examples needed follow 1/n.
    rng = np.random.default_rng(1)
    reps = rng.normal(0, 1.0, (40000, 1)) + np.zeros((1, 5))      # V_example = 1 at n = 100
    with_examples = _estimate(values, reps=reps, examples=100)
    assert with_examples.seeds_needed(1.0) is None
    z = student_norm.ppf(0.975) + student_norm.ppf(0.8)
    assert with_examples.examples_needed(1.0) == pytest.approx(100 * 1.0 * z ** 2, rel=0.03)


def test_holm_and_benjamini_hochberg_against_a_worked_example():
    p = [0.01, 0.04, 0.03, 0.005, math.nan]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    assert stats.holm(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(stats.holm(p)[4])
    # BH: p·m/rank = 0.005·4/1, 0.01·4/2, 0.03·4/3, 0.04·4/4 = 0.02, 0.02, 0.04, 0.04.
    assert stats.benjamini_hochberg(p)[:4] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # Partial conjunction (Bonferroni): N = 4, (4 − u + 1) p_(u) = 0.02, 0.03, 0.06: two of four tasks at 5 %.
    assert stats.partial_conjunction_count([0.005, 0.01, 0.03, 0.2]) == 2
    assert stats.partial_conjunction_count([0.2, 0.3]) == 0
