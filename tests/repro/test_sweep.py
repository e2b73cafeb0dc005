"""The hyper-parameter axis (grid.sweep): cell ids, configs, errors, the cost plan, and the report's selection
on English dev (repro.config's sweep functions, repro.report.sweep)."""
from __future__ import annotations

import copy
import csv
import json

import pytest

from repro import config
from repro.errors import ConfigError
from tests.repro.conftest import SWEEP_LRS
from tests.support.cli import CELL, SMOKE, results, tiny_overrides
from tests.support.results_files import make_results

LR = "target.optimizer.learning_rate"


def _cfg(*extra, sweep="[1.0e-4, 2.0e-4]"):
    return config.load(SMOKE, ["grid.models=[bert-tiny]", "grid.target_tasks=[synth_sentiment]",
                               f"grid.sweep={{{LR}: {sweep}}}", *extra])


def test_a_two_value_sweep_doubles_the_grid_and_names_the_value_in_each_cell_id():
    cells = _cfg().cells()
    ids = [c.cell_id for c in cells]
    assert ids == [f"bert-tiny__int-{it}__tgt-synth_sentiment__seed0__lr{v}"
                   for it in ("none", "synth_int_sentiment") for v in ("1e-04", "2e-04")]
    assert [c.target.optimizer.learning_rate for c in cells] == [1e-4, 2e-4, 1e-4, 2e-4]
    assert [c.intermediate.optimizer.learning_rate for c in cells] == [1e-3] * 4   # the shared run is not swept
    # YAML's 1e-4 (a string to PyYAML) and 1.0e-4 are one value; 3.5e-5 keeps its digits in the id.
    assert [c.cell_id.rpartition("__")[2] for c in _cfg("grid.intermediate_tasks=[none]", sweep="[1e-4, 3.5e-5]").cells()] \
        == ["lr1e-04", "lr3.5e-05"]


def test_a_cell_config_repeats_its_point():
    from repro.study.cell import cell_config

    cell = cell_config(_cfg().cells()[1])
    again = config.from_dict(json.loads(json.dumps(config.to_dict(cell)))).resolved_cell()
    assert again.cell_id == cell.cell_id and again.target.optimizer.learning_rate == 2e-4
    # `run` without cell.sweep takes the first value, with it the named one
    assert _cfg().resolved_cell().cell_id.endswith("__lr1e-04")
    assert _cfg(f"cell.sweep={{{LR}: 2.0e-4}}").resolved_cell().target.optimizer.learning_rate == 2e-4


@pytest.mark.parametrize("override, needle", [
    ("grid.sweep={intermediate.optimizer.learning_rate: [1.0e-4]}", "only target.* keys can be swept"),
    ("grid.sweep={target.optimizer.learning_rat: [1.0e-4]}", "unknown key 'learning_rat' in target.optimizer"),
    (f"grid.sweep={{{LR}: [-1.0]}}", f"grid.sweep.{LR}: {LR}=-1.0 must be >= 0"),
    (f"grid.sweep={{{LR}: [1e-4, 1.0e-4]}}", "repeats a value"),
    (f"grid.sweep={{{LR}: []}}", "is empty"),
    (f"cell.sweep={{{LR}: 5.0e-4}}", "is not a key of grid.sweep"),
])
def test_sweep_errors_name_the_key(override, needle):
    with pytest.raises(ConfigError) as e:
        config.load(SMOKE, [override])
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_point_outside_the_grid_is_refused():
    with pytest.raises(ConfigError, match=r"cell.sweep.target.optimizer.learning_rate=0.0005 is not one of"):
        _cfg(f"cell.sweep={{{LR}: 5.0e-4}}")


def test_the_cost_plan_counts_every_point_and_the_shared_intermediate_run_once(tmp_path):
    from repro.study import plan

    cfg = config.load(SMOKE, tiny_overrides(tmp_path, intermediate="synth_int_sentiment",
                                            **{"grid.sweep": f"{{{LR}: [1.0e-4, 2.0e-4]}}"}))
    phases = plan.plan_grid(cfg, "data")
    targets = [p for p in phases if p.kind == "target"]
    inter = [p for p in phases if p.kind == "intermediate"]
    assert [p.run for p in targets] == [c.cell_id for c in cfg.cells()] and len(targets) == 2
    assert len(inter) == 1 and inter[0].cells == tuple(p.run for p in targets)
    assert targets[0].flops == targets[1].flops > 0   # the learning rate does not change the work
    assert plan.total(phases) == inter[0].flops + 2 * targets[0].flops


# ---- the selection ---------------------------------------------------------------------------------------
def _swept(model, intermediate, seed, lr, best_dev, zero_shot, lrs=(1e-4, 2e-4)):
    """A results file of a swept cell: English dev `best_dev`, every other language `zero_shot`."""
    from repro.config import sweep_suffix as suffix

    r = make_results(model=model, intermediate=intermediate, seed=seed,
                     per_language={"en": 0.7, "de": zero_shot, "sw": zero_shot})
    r = copy.deepcopy(r)
    r["cell_id"] += suffix({LR: lr})
    r["config"]["cell"]["sweep"] = {LR: lr}
    r["config"]["grid"] = {"sweep": {LR: list(lrs)}}
    r["config"]["target"]["optimizer"]["learning_rate"] = lr
    r["training"]["target"]["best_dev"] = best_dev
    return r


def _write(run, rows):
    for r in rows:
        d = run / "cells" / r["cell_id"]
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps(r))


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_each_arm_keeps_the_value_with_the_best_mean_english_dev_and_only_those_cells_are_analysed(tmp_path):
    from repro.report import build_report

    run = tmp_path / "run"
    rows = []
    for seed in (0, 1):
        # without: 2e-4 has the better English dev mean (80 vs 70), though 1e-4's zero-shot scores are far higher
        rows.append(_swept("bert-tiny", None, seed, 1e-4, 70.0 + seed, zero_shot=0.9))
        rows.append(_swept("bert-tiny", None, seed, 2e-4, 80.0 - seed, zero_shot=0.3))
        # with: 1e-4 wins on English dev (mean 75 vs 74: 75 and 73), the other way round
        rows.append(_swept("bert-tiny", "synth_int_sentiment", seed, 1e-4, 75.0, zero_shot=0.4))
        rows.append(_swept("bert-tiny", "synth_int_sentiment", seed, 2e-4, (75.0, 73.0)[seed], zero_shot=0.8))
    _write(run, rows)
    out = build_report(run)
    sel = _csv(out / "tables" / "sweep_selection.csv")
    chosen = {(r["intermediate_task"], r["point"]): r["selected"] == "True" for r in sel}
    assert chosen == {("none", f"{LR}=1e-04"): False, ("none", f"{LR}=2e-04"): True,
                      ("synth_int_sentiment", f"{LR}=1e-04"): True, ("synth_int_sentiment", f"{LR}=2e-04"): False}
    by = {(r["intermediate_task"], r["point"]): r for r in sel}
    assert float(by[("none", f"{LR}=2e-04")]["english_dev_mean"]) == pytest.approx(79.5)
    assert json.loads(by[("none", f"{LR}=2e-04")]["english_dev_by_seed"]) == {"0": 80.0, "1": 79.0}
    analysed = {r["cell_id"] for r in _csv(out / "tables" / "cells.csv")}
    assert analysed == {f"bert-tiny__int-none__tgt-synth_sentiment__seed{s}__lr2e-04" for s in (0, 1)} | \
        {f"bert-tiny__int-synth_int_sentiment__tgt-synth_sentiment__seed{s}__lr1e-04" for s in (0, 1)}
    md = (out / "report.md").read_text()
    assert "## Hyper-parameter sweep: selection on English dev" in md
    assert "4 settings in 2 groups" in md and "2.00× those of the selected cells" in md


def test_a_tie_goes_to_the_value_written_first(tmp_path):
    from repro.report.sweep import select
    from repro.results import CellResults

    cells = [CellResults.from_dict(_swept("bert-tiny", None, 0, lr, 70.0, 0.5, lrs=(2e-4, 1e-4)), "t")
             for lr in (1e-4, 2e-4)]
    kept, rows = select(cells)
    assert [c.cell_id[-9:] for c in kept] == ["__lr2e-04"]
    assert [r["point"] for r in rows] == [f"{LR}=2e-04", f"{LR}=1e-04"]   # grid.sweep's order
    assert select(cells[:0] + [CellResults.from_dict(make_results(), "t")])[1] == []   # no sweep: no section


def test_a_sweep_run_names_its_cells_and_its_report_selects_on_english_dev(sweep_run):
    from repro.report.sweep import select
    from repro.results import load_cells

    base = CELL
    ids = sorted(p.name for p in (sweep_run.out / "cells").iterdir())
    assert ids == sorted(f"{base}__lr{v}" for v in ("1e-03", "3e-03"))
    dev = {}
    for lr in SWEEP_LRS:
        cell = sweep_run.out / "cells" / f"{base}__lr{float(lr):.0e}"
        r = results(cell)
        assert r["config"]["target"]["optimizer"]["learning_rate"] == float(lr)
        assert r["config"]["cell"]["sweep"] == {LR: float(lr)}
        # the schedule peaks at the swept value (warm-up 10 %: step 1 is already past it at 9 steps)
        log = [json.loads(ln) for ln in (cell / "target" / "train_log.jsonl").read_text().splitlines()]
        assert max(x["learning_rate"] for x in log if "learning_rate" in x) == pytest.approx(float(lr), rel=1e-6)
        dev[r["cell_id"]] = r["training"]["target"]["best_dev"]
    kept, sel = select(load_cells(sweep_run.out))   # what build_report analyses (its tables: the test above)
    expected = max(dev, key=lambda k: (dev[k], -sorted(dev).index(k)))   # a tie: the value written first
    assert [json.loads(r["cell_ids"])[0] for r in sel if r["selected"]] == [expected]
    assert [c.cell_id for c in kept] == [expected]
    assert [r["english_dev_mean"] for r in sel] == [dev[f"{base}__lr{float(lr):.0e}"] for lr in SWEEP_LRS]
