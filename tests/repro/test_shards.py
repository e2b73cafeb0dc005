"""Grid shards: which shard a process is (flag, SLURM array, Kubernetes Indexed Job), whole units balanced by
cost, and three shards at once on one folder — one killed mid-cell and rerun — giving the unsharded results."""
from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from repro import config
from repro.study import plan, shards
from tests.repro.conftest import SMALL_CELLS, small_grid_overrides
from tests.support.cli import ROOT, SMOKE, best_params, cli, env, results, snapshot

PAPER = ROOT / "configs" / "paper.yaml"
# The paper preset without its matched pairings and size axis: one cell per model x task x seed.
CROSS = ("grid.analysis=cross", "grid.train_sizes=[]")


# ---- which shard ----------------------------------------------------------------------------------

def slurm(task, count, first=0, step=None, last=None) -> dict:
    e = {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": str(count), "SLURM_ARRAY_TASK_MIN": str(first)}
    if step is not None:
        e["SLURM_ARRAY_TASK_STEP"] = str(step)
    if last is not None:
        e["SLURM_ARRAY_TASK_MAX"] = str(last)
    return e


@pytest.mark.parametrize("flag, count, environ, expected", [
    ("2/4", None, {}, (2, 4)),
    ("0/1", None, slurm(3, 4), (0, 1)),                        # the flag wins over the scheduler's variables
    (None, None, slurm(0, 4, last=3), (0, 4)),                 # --array=0-3
    (None, None, slurm(4, 4, first=1, last=4), (3, 4)),        # --array=1-4: task 4 is the last shard
    (None, None, slurm(7, 4, first=1, step=2, last=7), (3, 4)),   # --array=1-7:2
    (None, None, {"JOB_COMPLETION_INDEX": "2", "XT_SHARD_COUNT": "5"}, (2, 5)),
    (None, 5, {"JOB_COMPLETION_INDEX": "4"}, (4, 5)),
    (None, None, {}, None),
])
def test_the_shard_comes_from_the_flag_or_the_scheduler(flag, count, environ, expected):
    shard = shards.resolve(flag, count, environ)
    assert (shard.index, shard.count) == expected if expected else shard is None


@pytest.mark.parametrize("flag, count, environ, needle", [
    ("4/4", None, {}, "shards are numbered 0 to N-1"),
    ("1-4", None, {}, "is not of the form I/N"),
    ("1/4", 3, {}, "--shard 1/4 and --shard-count 3 disagree"),
    (None, None, slurm(9, 3, first=1, last=9), "not an evenly spaced array"),     # --array=1,4,9
    (None, None, {"SLURM_ARRAY_TASK_ID": "2"}, "not SLURM_ARRAY_TASK_COUNT"),
    (None, None, slurm("x", 3), "SLURM_ARRAY_TASK_ID='x' is not a whole number"),
    (None, None, {"JOB_COMPLETION_INDEX": "1"}, "set XT_SHARD_COUNT to the Job's completions"),
    (None, None, {"JOB_COMPLETION_INDEX": "3", "XT_SHARD_COUNT": "3"}, "gives shard 3 of 3"),
    (None, 4, {}, "--shard-count needs JOB_COMPLETION_INDEX"),
])
def test_a_shard_that_cannot_be_worked_out_is_one_line(flag, count, environ, needle):
    with pytest.raises(shards.ShardError) as e:
        shards.resolve(flag, count, environ)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_bad_shard_stops_the_grid_before_any_work(tmp_path):
    r = cli("grid", SMOKE, f"output_dir={tmp_path}", "--shard", "3/3")
    assert r.returncode == 2 and r.stderr.strip() == ("error: shard: --shard 3/3 gives shard 3 of 3; shards are "
                                                      "numbered 0 to N-1")
    assert not any(tmp_path.iterdir())


# ---- which cells ----------------------------------------------------------------------------------

def test_longest_processing_time_first():
    parts = shards.balance({"a": 7, "b": 5, "c": 4, "d": 3, "e": 1}, 2)
    assert parts == [["a", "d"], ["b", "c", "e"]]              # loads 10 and 10
    assert shards.balance({"x": 1, "y": 1}, 3) == [["x"], ["y"], []]


def test_paper_shards_keep_intermediate_runs_whole_and_balance_flops():
    cfg = config.load(PAPER)
    cells = cfg.cells()
    phases = plan.plan_grid(cfg, "sizes", cells)
    parts = shards.split(cells, phases, 8)
    owner = {c: p["index"] for p in parts for c in p["cells"]}
    assert sorted(owner) == sorted(c.cell_id for c in cells)                      # every cell once
    assert sum(len(p["cells"]) for p in parts) == 1125
    units: dict[str, list[str]] = {}
    for cell in cells:
        units.setdefault(shards.unit_of(cell), []).append(cell.cell_id)
    # 5 models x 3 seeds x 10 intermediate runs (5 paired tasks and their controls), and the cells without one
    # (12 trained targets x 2 sizes + tatoeba)
    assert len(units) == 150 + 375
    # cells sharing a run: mnli 4 targets x 2 sizes, squad 3 x 2 + tatoeba, imdb and qqp 2 x 2, siqa 1 x 2
    sharing = {"mnli": 8, "squad": 7, "imdb": 4, "qqp": 4, "siqa": 2}
    for unit, members in units.items():                # a unit lies in one shard
        task = unit.split("__int-")[1].split("__")[0].removeprefix("control-") if "__tgt-" not in unit else None
        assert len(members) == (sharing[task] if task else 1), unit
        assert len({owner[c] for c in members}) == 1, unit
    loads = [p["flops"] for p in parts]
    assert sum(loads) == plan.total(phases)
    assert max(loads) / min(loads) < 1.01                       # by cost; the cell counts differ (68 to 114)
    assert len({len(p["cells"]) for p in parts}) > 1


def test_an_unpriced_unit_costs_the_mean():
    cfg = config.load(PAPER, [*CROSS, "grid.models=[mbert]", "grid.intermediate_tasks=[none]", "grid.seeds=[0]",
                         "grid.target_tasks=[xnli, pawsx, xcopa]"])
    cells = cfg.cells()
    phases = plan.plan_grid(cfg, "sizes", cells)
    phases = [dataclasses.replace(p, flops=None) if p.task == "xcopa" else p for p in phases]
    costs = shards.unit_costs(cells, phases)
    known = [phases[0].flops, phases[1].flops]
    assert costs[cells[2].cell_id] == sum(known) / 2


# ---- three shards on one folder ---------------------------------------------------------------------

def _launch(out: Path, how: str, index: int, log: Path) -> subprocess.Popen:
    """Shard `index` of 3, told as a user of each scheduler would: flag, SLURM array (1-3), Indexed Job."""
    e, extra = env(), []
    if how == "flag":
        extra = ["--shard", f"{index}/3"]
    elif how == "slurm":
        e.update(slurm(index + 1, 3, first=1, last=3))
    else:
        e.update(JOB_COMPLETION_INDEX=str(index), XT_SHARD_COUNT="3")
    return subprocess.Popen([sys.executable, "-m", "repro", "grid", str(SMOKE), *small_grid_overrides(out), *extra],
                            cwd=ROOT, env=e, stdout=log.open("w"), stderr=subprocess.STDOUT)


HOW = ("flag", "slurm", "k8s")
SOURCE = {"flag": "(--shard ", "slurm": "(SLURM_ARRAY_TASK_ID=", "k8s": "(JOB_COMPLETION_INDEX="}


@pytest.mark.slow
def test_three_shards_one_killed_mid_cell_and_rerun_give_the_unsharded_results(small_grid, tmp_path):
    out = tmp_path / "sharded"
    cfg = config.load(SMOKE, small_grid_overrides(out))
    # Price and split the grid once here (the shards then read the file): xlnet's units cost more than bert's,
    # so the two cells without intermediate training share a shard and each intermediate run has one.
    assignment = shards.assignment(cfg, 3)
    parts = assignment["shards"]
    assert sorted(len(p["cells"]) for p in parts) == [1, 1, 2]
    assert sorted(c for p in parts for c in p["cells"]) == sorted(c.cell_id for c in cfg.cells())
    # The victim owns bert's intermediate run: killed in the target phase of its cell, after a checkpoint.
    victim = next(i for i, p in enumerate(parts) if p["units"] == ["bert-tiny__int-synth_int_sentiment__seed0"])
    (first,) = (out / "cells" / c for c in parts[victim]["cells"])

    logs = [tmp_path / f"shard{i}.txt" for i in range(3)]
    procs = [_launch(out, HOW[i], i, logs[i]) for i in range(3)]
    deadline = time.time() + 600
    latest = first / "target" / "ckpt" / "latest"
    while not any(latest.glob("*/xt_checksums.json")):   # a checkpoint whose save finished (checkpoint.py)
        assert procs[victim].poll() is None, logs[victim].read_text()[-3000:]
        assert time.time() < deadline
        time.sleep(0.005)
    procs[victim].send_signal(signal.SIGKILL)
    codes = [p.wait(timeout=600) for p in procs]
    assert codes[victim] == -signal.SIGKILL and not (first / "results.json").exists()
    for i in set(range(3)) - {victim}:
        assert codes[i] == 0, logs[i].read_text()[-3000:]
        assert f"grid smoke shard {i}/3 {SOURCE[HOW[i]]}" in logs[i].read_text()
        assert f"{len(parts[i]['cells'])} ran, 0 already finished, 0 failed" in logs[i].read_text()
    finished = {c.name: snapshot(c) for c in (out / "cells").iterdir() if (c / "results.json").exists()}
    assert len(finished) == SMALL_CELLS - 1
    assert (out / "intermediate" / "bert-tiny__int-synth_int_sentiment__seed0" / "done.json").exists()
    intermediate_done = {p.parent.name: p.stat().st_mtime_ns for p in (out / "intermediate").glob("*/done.json")}

    rerun = _launch(out, HOW[victim], victim, tmp_path / "rerun.txt")
    assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.txt").read_text()[-3000:]
    assert f"grid smoke shard {victim}/3: 1 ran, 0 already finished, 0 failed" in (tmp_path / "rerun.txt").read_text()
    shard_log = (out / f"repro.shard-{victim}-of-3.log").read_text()
    assert f"{first.name}: resumed at step" in shard_log
    for name, files in finished.items():            # other shards' cells: not one byte or mtime changed
        assert snapshot(out / "cells" / name) == files, name
    for name, mtime in intermediate_done.items():   # a finished intermediate run is not trained again
        assert (out / "intermediate" / name / "done.json").stat().st_mtime_ns == mtime

    # The union equals the unsharded run: every cell, its scores, counters and best parameters.
    ref_cells = sorted(p.name for p in (small_grid / "cells").iterdir())
    assert sorted(p.name for p in (out / "cells").iterdir()) == ref_cells
    for name in ref_cells:
        a, b = results(small_grid / "cells" / name), results(out / "cells" / name)
        for key in ("scores", "per_language", "average", "transfer_gap", "param_count"):
            assert a[key] == b[key], (name, key)
        for phase in ("target", "intermediate"):
            for key in ("steps", "tokens", "flops", "best_step", "best_dev", "train_examples"):
                assert (a["training"][phase] or {}).get(key) == (b["training"][phase] or {}).get(key), (name, key)
        pa, pb = best_params(small_grid / "cells" / name / "target"), best_params(out / "cells" / name / "target")
        for k in pa:
            np.testing.assert_array_equal(pa[k], pb[k], err_msg=f"{name} {k}")
    for run in (small_grid / "intermediate").iterdir():
        pa, pb = best_params(run), best_params(out / "intermediate" / run.name)
        for k in pa:
            np.testing.assert_array_equal(pa[k], pb[k], err_msg=f"{run.name} {k}")
    # Each cell was run by its own shard only, and `repro table` reads the union.
    for i in range(3):
        ran = set(json.loads(Path(assignment["path"]).read_text())["shards"][i]["cells"])
        text = (out / f"repro.shard-{i}-of-3.log").read_text()
        assert {c for c in ref_cells if f"cell {c}: accuracy" in text} == ran, i
    rows = {}
    for folder in (small_grid, out):
        table = cli("table", folder)
        assert table.returncode == 0, table.stderr
        rows[folder] = [ln.split()[:9] for ln in table.stdout.splitlines()[2:]]   # timings left out
    assert len(rows[out]) == SMALL_CELLS and rows[out] == rows[small_grid]
