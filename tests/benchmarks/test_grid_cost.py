"""tests.benchmarks.grid_cost: the overhead split of a finished grid, on a simulated results folder."""
from __future__ import annotations

import json

from tests.benchmarks import grid_cost


def _cell(run, name, seed, inter, timing=True):
    phase = {"wall_time_s": 100.0, "timing": {"compile_s": 10.0, "eval_s": 5.0, "checkpoint_s": 1.0}}
    r = {"config": {"cell": {"model": "m", "intermediate_task": inter, "seed": seed}},
         "training": {"target": phase, "intermediate": dict(phase) if inter else None}}
    if timing:
        r["timing"] = {"cell_s": 150.0, "zero_shot_eval_s": 20.0, "latency_s": 2.0}
    d = run / "cells" / name
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps(r))


def test_an_intermediate_run_counts_once_and_zero_shot_evaluation_is_work(tmp_path, capsys):
    _cell(tmp_path, "a", 0, "xnli")
    _cell(tmp_path, "b", 0, "xnli")     # reuses the same intermediate run
    _cell(tmp_path, "c", 0, None)
    s = grid_cost.split(tmp_path)
    assert s["cells"] == 3 and s["intermediate_runs"] == 1
    assert s["steps_s"] == 4 * 84.0 and s["dev_eval_s"] == 20.0 and s["zero_shot_eval_s"] == 60.0
    grid_cost.main([str(tmp_path), "--wall", "600", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["overhead_s"] == 600 - 336 - 20 - 60 and out["overhead_share"] == round(184 / 600, 3)
    assert out["outside_cells_s"] == 600 - 450


def test_cells_without_timing_count_their_evaluation_as_overhead(tmp_path, capsys):
    _cell(tmp_path, "a", 0, None, timing=False)
    grid_cost.main([str(tmp_path), "--wall", "200", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["zero_shot_eval_s"] == 0 and out["overhead_s"] == 200 - 84 - 5 and "outside_cells_s" not in out
