"""`repro plan CONFIG --pilot RESULTS_DIR`: the seeds a pilot says each primary endpoint needs, worked by hand,
and the grid priced at them."""
from __future__ import annotations

import pytest

from repro.study import pilot
from repro.study.plan import Device
from tests.support.cli import cli
from tests.support.results_files import make_results, write_results


def _pilot(tmp_path, diffs=(1.0, 2.0, 3.0)):
    """Schema-1 cells (no per-example predictions: the seed part alone), 3 seeds; the non-English (de) paired
    differences are `diffs`."""
    for seed, d in enumerate(diffs):
        base = 60.0 + 2 * seed
        write_results(tmp_path, make_results("bert-tiny", "imdb", "xnli", seed, per_language={"en": 80, "de": base + d}))
        write_results(tmp_path, make_results("bert-tiny", None, "xnli", seed, per_language={"en": 80, "de": base}))
    return tmp_path


def test_seeds_needed_and_price_worked_by_hand(tmp_path):
    (e,) = pilot.pilot_endpoints(_pilot(tmp_path))
    assert (e.target_task, e.contrast, e.endpoint, e.pilot_seeds) == ("xnli", "imdb − none", "non_english", 3)
    # Per-seed differences 1, 2, 3: sd 1. MDE(k) = (t_.975,k-1 + t_.80,k-1) / √k:
    #   k = 3: (4.303 + 1.061) / 1.732 = 3.10 (the pilot's MDE); δ = 2: k = 4: (3.182 + 0.978) / 2 = 2.08 > 2,
    #   k = 5: (2.776 + 0.941) / 2.236 = 1.66 <= 2 -> 5 seeds; δ = 1: k = 9: (2.306 + 0.889) / 3 = 1.065 > 1,
    #   k = 10: (2.262 + 0.883) / 3.162 = 0.995 <= 1 -> 10 seeds.
    assert e.mde == pytest.approx(3.097, abs=1e-3)
    assert e.seeds_needed == {1.0: 10, 2.0: 5} and e.examples_needed == {1.0: None, 2.0: None}
    assert pilot.seeds_for([e], 1.0) == (10, [])
    # The grid: 6e18 FLOPs over its 3 seeds = 2e18 a seed; at 10 seeds 2e19 FLOPs, at 1e15 FLOP/s x MFU 0.5
    # that is 2e19 / 5e14 / 3600 = 11.11 device-hours.
    flops, hours = pilot.price(6e18 / 3, 10, Device("test", 1e15, 0.5).hours)
    assert flops == 2e19 and hours == pytest.approx(11.111, abs=1e-3)
    text = pilot.render([e], 6e18, 3, Device("test", 1e15, 0.5))
    assert "delta = 1 point(s): 10 seeds -> 2.000e+19 training FLOPs, 11.11 device-hours" in text
    assert "delta = 2 point(s): 5 seeds -> 1.000e+19 training FLOPs, 5.556 device-hours" in text


def test_a_pilot_without_both_arms_or_a_folder_is_one_line(tmp_path):
    write_results(tmp_path, make_results("bert-tiny", None, "xnli", 0, per_language={"en": 80, "de": 60}))
    with pytest.raises(pilot.UserError, match="no primary endpoint"):
        pilot.pilot_endpoints(tmp_path)
    r = cli("plan", "configs/smoke.yaml", "--pilot", str(tmp_path / "nowhere"), timeout=120)
    assert r.returncode == 2 and "not a results folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_plan_and_the_report_print_the_same_seeds_and_mde(tmp_path):
    """`plan --pilot` and the report's detectable table come from one bootstrap (the report's resamples and RNG
    seed): on a run with per-example predictions, where the example component counts, they agree to the digit
    (they did not when the plan drew 1,000 resamples and the report 2,000: the mini read 266 and 265 seeds)."""
    import csv

    from repro import report
    from tests.support.results_files import smoke_grid_v3, write_cells

    write_cells(tmp_path, smoke_grid_v3(seeds=(0, 1, 2), models=("bert-tiny",)))
    out = report.build_report(tmp_path)
    with open(out / "tables" / "detectable.csv") as f:
        shown = {(r["target_task"], f"{r['intermediate_task']} − {r['baseline']}"): r for r in csv.DictReader(f)}
    endpoints = pilot.pilot_endpoints(tmp_path)
    assert endpoints and len(endpoints) == len(shown)
    for e in endpoints:
        r = shown[(e.target_task, e.contrast)]
        assert e.mde == pytest.approx(float(r["diff_mde"]), rel=1e-9)
        for delta, column in ((1.0, "diff_seeds_needed_1pt"), (2.0, "diff_seeds_needed_2pt")):
            assert str(e.seeds_needed[delta] or "") == r[column]
