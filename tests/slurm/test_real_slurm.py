"""The no-docker SLURM launcher (docker/launch/slurm-venv.sbatch) on a real one-node SLURM (opt-in:
XT_SLURM_TEST=1; root, apt; tests/slurm/cluster.sh installs slurm-wlm + munge if absent and starts the daemons).

A 3-task array (--array=1-3) runs the small 4-cell grid of tests/repro/conftest.py. The task that owns bert's
intermediate run is sent `scancel --batch -s TERM` once its cell's target phase has saved a checkpoint: it
must print the grid's stop line and end with exit 143 (FAILED), be requeued with `scontrol requeue`, resume
mid-cell, and leave a union equal to the unsharded grid (scores, counters, best parameters bitwise). The
report then runs as one dependent task (`--array=0 --dependency=afterany`) and covers all four cells. Timings go to
$XT_SLURM_WORK/timings.json (docs/scaling.md quotes them); the daemons stop at the end, only those started here.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from repro import config
from repro.study import shards
from tests.repro import conftest as repro_fixtures
from tests.repro.conftest import SMALL_CELLS, small_grid_overrides
from tests.support.cli import ROOT, SMOKE, best_params, env, results

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("XT_SLURM_TEST") != "1",
                       reason="opt-in: XT_SLURM_TEST=1 (root; starts a one-node SLURM from apt's slurm-wlm + munge)"),
]

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
SBATCH = ROOT / "docker" / "launch" / "slurm-venv.sbatch"
# The launcher asks for a GPU, 64G and 48 h (a real cluster's defaults); a one-node CPU test cluster has none
# of that, so the command line overrides them as a user on a CPU partition would.
CPU_TASK = ["--gres=none", "--mem=3G", "--cpus-per-task=1", "--time=30"]
TIMINGS: dict[str, float] = {}
small_grid = repro_fixtures.small_grid   # the unsharded reference: tests/repro's session fixture


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = Path(os.environ.get("XT_SLURM_WORK") or tmp_path_factory.mktemp("slurm"))
    started = time.monotonic()
    r = subprocess.run([str(CLUSTER), "start", str(work)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    TIMINGS["cluster start (s)"] = round(time.monotonic() - started, 1)
    conf = str(work / "slurm.conf")
    pids = [int((work / f"{d}.pid").read_text()) for d in ("munged", "slurmctld", "slurmd")]
    yield work, conf
    subprocess.run([str(CLUSTER), "stop", str(work)], check=True, timeout=120)
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    assert not alive, f"daemons still running after cluster.sh stop: {alive}"
    (work / "timings.json").write_text(json.dumps(TIMINGS, indent=1) + "\n")


def _slurm(conf: str, *args: str, **kw) -> subprocess.CompletedProcess:
    e = env()
    e["SLURM_CONF"] = conf
    return subprocess.run([*args], capture_output=True, text=True, env=e, timeout=120, **kw)


def _job(conf: str, job: str) -> dict[str, str]:
    """`scontrol show job` of one (array) job as key=value pairs."""
    r = _slurm(conf, "scontrol", "-o", "show", "job", job)
    assert r.returncode == 0, r.stderr
    return dict(re.findall(r"(\w+)=(\S*)", r.stdout))


def _wait(conf: str, job: str, states: set[str], timeout: float = 900) -> dict[str, str]:
    deadline = time.time() + timeout
    while True:
        info = _job(conf, job)
        if info["JobState"] in states:
            return info
        assert time.time() < deadline, f"job {job} still {info['JobState']} after {timeout} s"
        time.sleep(0.2)


def test_array_term_requeue_and_report_on_a_real_slurm(cluster, small_grid, tmp_path):
    work, conf = cluster
    results_dir = tmp_path / "results"
    out = results_dir / "smoke"
    overrides = [o for o in small_grid_overrides(out) if not o.startswith("output_dir=")]
    # The shards price and split the grid into <out>/.shards/ themselves; the same call here says which task
    # owns bert's intermediate run (and its one cell), without changing the split they read.
    cfg = config.load(SMOKE, [f"output_dir={out}", *overrides])
    parts = shards.assignment(cfg, 3)["shards"]
    victim = next(i for i, p in enumerate(parts) if p["units"] == ["bert-tiny__int-synth_int_sentiment__seed0"])
    (first,) = (out / "cells" / c for c in parts[victim]["cells"])

    venv = tmp_path / "venv"              # the launcher's XT_VENV: this interpreter, however it was installed
    (venv / "bin").mkdir(parents=True)    # (a wrapper, not a link: a venv's python finds its site-packages
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')   # by its own path)
    (venv / "bin" / "python").chmod(0o755)
    submit_env = env()
    submit_env.update(SLURM_CONF=conf, XT_RESULTS=str(results_dir), XT_VENV=str(venv), XT_REPO=str(ROOT))
    started = time.monotonic()
    r = subprocess.run(["sbatch", "--parsable", "--array=1-3", *CPU_TASK, f"--output={tmp_path}/task-%a.out",
                        str(SBATCH), "smoke", *overrides],
                       capture_output=True, text=True, env=submit_env, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    job = r.stdout.strip().split(";")[0]
    task = f"{job}_{victim + 1}"

    latest = first / "target" / "ckpt" / "latest"
    deadline = time.time() + 900
    while not any(latest.glob("*/xt_checksums.json")):   # the target phase has saved a resumable checkpoint
        assert _job(conf, task)["JobState"] in {"PENDING", "RUNNING"}, (tmp_path / f"task-{victim + 1}.out").read_text()
        assert time.time() < deadline, "the victim task saved no checkpoint in 900 s"
        time.sleep(0.005)
    # Without --batch, scancel signals the job steps only, and an sbatch script that execs the grid has none.
    assert _slurm(conf, "scancel", "--batch", "-s", "TERM", task).returncode == 0
    info = _wait(conf, task, {"FAILED", "COMPLETED", "CANCELLED"})
    TIMINGS["array until the TERM'd task ended (s)"] = round(time.monotonic() - started, 1)
    log = (tmp_path / f"task-{victim + 1}.out").read_text()
    assert info["JobState"] == "FAILED" and info["ExitCode"] == "143:0", (info, log[-3000:])
    stop = re.search(rf"stopped at step (\d+) of {first.name}; rerun the same command to resume \(SIGTERM\)", log)
    assert stop, log[-3000:]
    assert not (first / "results.json").exists()

    assert _slurm(conf, "scontrol", "requeue", task).returncode == 0
    # A requeued job waits out SLURM's requeue delay (its BeginTime); start it now, as an admin could.
    assert _slurm(conf, "scontrol", "update", f"jobid={task}", "StartTime=now").returncode == 0
    for i in range(1, 4):
        info = _wait(conf, f"{job}_{i}", {"COMPLETED", "FAILED", "CANCELLED"})
        assert info["JobState"] == "COMPLETED", (i, info, (tmp_path / f"task-{i}.out").read_text()[-3000:])
    TIMINGS["array with the requeued task, to the last task's end (s)"] = round(time.monotonic() - started, 1)
    assert _job(conf, task)["Restarts"] == "1"
    shard_log = (out / f"repro.shard-{victim}-of-3.log").read_text()
    resumed = re.search(rf"{first.name}: resumed at step (\d+)", shard_log)
    assert resumed and int(resumed.group(1)) <= int(stop.group(1)), shard_log[-3000:]
    log = (tmp_path / f"task-{victim + 1}.out").read_text()   # --open-mode=append: both runs' output
    assert stop.group(0) in log and f"grid smoke shard {victim}/3: 1 ran, 0 already finished, 0 failed" in log, log

    # The union equals the unsharded grid: scores, counters and best parameters.
    ref_cells = sorted(p.name for p in (small_grid / "cells").iterdir())
    assert sorted(p.name for p in (out / "cells").iterdir()) == ref_cells and len(ref_cells) == SMALL_CELLS
    for name in ref_cells:
        a, b = results(small_grid / "cells" / name), results(out / "cells" / name)
        for key in ("scores", "per_language", "average", "transfer_gap", "param_count"):
            assert a[key] == b[key], (name, key)
        for key in ("steps", "tokens", "flops", "best_step", "best_dev", "train_examples"):
            assert a["training"]["target"].get(key) == b["training"]["target"].get(key), (name, key)
        pa, pb = best_params(small_grid / "cells" / name / "target"), best_params(out / "cells" / name / "target")
        for k in pa:
            np.testing.assert_array_equal(pa[k], pb[k], err_msg=f"{name} {k}")

    # The report of the union, as docs/scaling.md submits it: one task after the array.
    started = time.monotonic()
    # afterany, not afterok: the TERM'd task's first run failed (143), and afterok would then never be met.
    r = subprocess.run(["sbatch", "--parsable", "--wait", "--array=0", f"--dependency=afterany:{job}", *CPU_TASK,
                        f"--output={tmp_path}/report.out", str(SBATCH), "--report", "smoke"],
                       capture_output=True, text=True, env=submit_env, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stderr + (tmp_path / "report.out").read_text()[-3000:]
    TIMINGS["report job (s)"] = round(time.monotonic() - started, 1)
    cells_csv = (out / "report" / "tables" / "cells.csv").read_text()
    for name in ref_cells:
        assert name in cells_csv, name
