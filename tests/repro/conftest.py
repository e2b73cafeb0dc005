"""Fixtures shared by the scale-out tests (test_plan, test_shards): one small grid, run once, unsharded."""
from __future__ import annotations

import pytest

from tests.support.cli import SMOKE, cli, shared_run, tiny_overrides

# 4 cells: bert-tiny and xlnet-tiny (whose FLOPs differ), with and without the shared intermediate run, on
# synth_sentiment. Three length buckets and 2.5 target epochs, so that bucketing and the partial last epoch
# show in every counter.
SMALL_GRID = {"grid.models": "[bert-tiny, xlnet-tiny]", "grid.intermediate_tasks": "[none, synth_int_sentiment]",
              "data.buckets": "[16, 24]", "target.epochs": 2.5, "target.batch_size": 16,
              "target.checkpoint_every": 2, "target.eval_every": 6, "intermediate.batch_size": 16,
              "intermediate.eval_every": 6, "intermediate.checkpoint_every": 2}
SMALL_CELLS = 4


def small_grid_overrides(out) -> list[str]:
    return tiny_overrides(out, **SMALL_GRID)


@pytest.fixture(scope="session")
def small_grid(tmp_path_factory):
    """The small grid run by one unsharded `grid` process: its output folder (one run a session, read only)."""
    def make(out):
        r = cli("grid", SMOKE, *small_grid_overrides(out))
        assert r.returncode == 0, r.stderr[-3000:]
        assert f"{SMALL_CELLS} ran, 0 already finished, 0 failed" in r.stdout, r.stdout

    return shared_run(tmp_path_factory, "small-grid", make)


# A 2-value learning-rate sweep of tiny_overrides' cell, run as a grid with TensorBoard on (the default) and W&B
# through the stand-in package (tests/support/wandb_standin): read by test_sweep, test_tracking and test_export.
SWEEP_LRS = ("1.0e-3", "3.0e-3")
SWEEP_OVERRIDES = {"grid.sweep": f"{{target.optimizer.learning_rate: [{', '.join(SWEEP_LRS)}]}}",
                   "target.log_every": 3, "tracking.wandb": "{project: xt-test, mode: offline, tags: [ci]}"}


@pytest.fixture(scope="session")
def sweep_run(tmp_path_factory):
    """The sweep's run folder, the stand-in's call log, and the grid's stdout. Under pytest-xdist the workers of
    one session share one run (shared_run; the tests only read it)."""
    import json
    import os
    import subprocess
    import sys
    from types import SimpleNamespace

    from tests.support.cli import ROOT, env

    def make(out):   # the log and the stdout go beside the run folder, not into it
        e = env()
        e["PYTHONPATH"] = str(ROOT / "tests" / "support" / "wandb_standin") + os.pathsep + e["PYTHONPATH"]
        e["XT_WANDB_STANDIN_LOG"] = str(out.parent / "wandb-standin.jsonl")
        r = subprocess.run([sys.executable, "-m", "repro", "grid", str(SMOKE), *tiny_overrides(out, **SWEEP_OVERRIDES)],
                           cwd=ROOT, env=e, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        (out.parent / "sweep-run.json").write_text(json.dumps({"stdout": r.stdout}))

    out = shared_run(tmp_path_factory, "sweep-run", make)
    return SimpleNamespace(out=out, wandb_log=out.parent / "wandb-standin.jsonl",
                           stdout=json.loads((out.parent / "sweep-run.json").read_text())["stdout"])
