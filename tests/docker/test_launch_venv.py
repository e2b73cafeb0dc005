"""The SLURM array launcher without docker (docker/launch/slurm-venv.sbatch): it runs each array task's grid
shard with the project's own Python environment, requeues, and hands SLURM's TERM to the grid itself."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.docker.test_launch import _shellcheck
from tests.support.paths import ROOT

SBATCH = ROOT / "docker" / "launch" / "slurm-venv.sbatch"
# A stand-in interpreter: records its argv, the shard variables and its working folder; on TERM it logs and
# exits 143 as the grid does.
FAKE_PYTHON = """#!/usr/bin/env bash
log={log}
printf '%s\\n' "$@" > "$log.argv"
echo "task=${{SLURM_ARRAY_TASK_ID:-}} count=${{SLURM_ARRAY_TASK_COUNT:-}} cwd=$PWD pid=$$" > "$log.env"
trap 'echo TERM >> "$log.signals"; exit 143' TERM
if [ "${{FAKE_WAIT:-0}}" = 1 ]; then echo started >> "$log.signals"; while true; do sleep 0.1; done; fi
"""


def _venv(tmp_path) -> tuple[Path, Path]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "python"
    exe = venv / "bin" / "python"
    exe.write_text(FAKE_PYTHON.format(log=log))
    exe.chmod(0o755)
    return venv, log


def _env(tmp_path, venv, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "XT_"))}
    env.update(XT_RESULTS=str(tmp_path / "results"), XT_VENV=str(venv), SLURM_SUBMIT_DIR=str(ROOT),
               SLURM_ARRAY_TASK_ID="3", SLURM_ARRAY_TASK_MIN="0", SLURM_ARRAY_TASK_MAX="7",
               SLURM_ARRAY_TASK_STEP="1", SLURM_ARRAY_TASK_COUNT="8")
    env.update(extra)
    return env


def assert_requeueable_sbatch(script: Path) -> None:
    """shellcheck passes, and the array/requeue/append/TERM directives stand before the first command (sbatch
    reads #SBATCH lines only until then). Shared with the Apptainer launcher's test."""
    r = subprocess.run([_shellcheck(), "-s", "bash", str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = script.read_text().splitlines()
    first_command = next(i for i, ln in enumerate(lines[1:], 1) if ln.strip() and not ln.startswith("#"))
    directives = [ln for ln in lines[:first_command] if ln.startswith("#SBATCH")]
    for want in ("#SBATCH --array=", "#SBATCH --requeue", "#SBATCH --open-mode=append",
                 "#SBATCH --signal=B:TERM@"):
        assert any(d.startswith(want) for d in directives), want
    assert not any(ln.startswith("#SBATCH") for ln in lines[first_command:])


def assert_term_reaches_the_exec_target(p: subprocess.Popen, log: Path) -> None:
    """`p` runs a launcher whose stand-in (FAKE_WAIT=1) logs "started" and its pid: it must be the launcher's
    own pid (exec, no wrapper shell), get the TERM sent to it and exit 143."""
    signals = log.with_suffix(".signals")
    for _ in range(300):
        if signals.exists() and "started" in signals.read_text():
            break
        time.sleep(0.1)
    else:
        p.kill()
        pytest.fail(f"the stand-in did not start: {p.communicate()}")
    assert f"pid={p.pid}" in log.with_suffix(".env").read_text()
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)
    assert p.returncode == 143
    assert signals.read_text().splitlines() == ["started", "TERM"]


def test_shellcheck_and_directives():
    assert_requeueable_sbatch(SBATCH)


def test_each_array_task_runs_its_shard_with_the_venv(tmp_path):
    venv, log = _venv(tmp_path)
    r = subprocess.run(["bash", str(SBATCH), "smoke", "grid.seeds=[0]"], env=_env(tmp_path, venv),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert log.with_suffix(".argv").read_text().splitlines() == [
        "-m", "repro", "grid", "configs/smoke.yaml", f"output_dir={tmp_path / 'results' / 'smoke'}", "grid.seeds=[0]"]
    env_line = log.with_suffix(".env").read_text()
    assert "task=3 count=8" in env_line and f"cwd={ROOT}" in env_line   # the shard comes from SLURM's variables
    assert (tmp_path / "results").is_dir()


def test_the_report_task_reads_the_union(tmp_path):
    venv, log = _venv(tmp_path)
    r = subprocess.run(["bash", str(SBATCH), "--report", "mini"], env=_env(tmp_path, venv, SLURM_ARRAY_TASK_ID="0"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert log.with_suffix(".argv").read_text().splitlines() == [
        "-m", "repro", "report", str(tmp_path / "results" / "mini")]


def test_a_report_submitted_as_the_whole_array_is_written_by_its_first_task_only(tmp_path):
    venv, log = _venv(tmp_path)   # `sbatch ... --report` without --array=0: the script's --array=0-7
    r = subprocess.run(["bash", str(SBATCH), "--report", "mini"], env=_env(tmp_path, venv),   # task 3 of 0-7
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "the report is array task 0's; task 3 has nothing to do (submit it with --array=0)" in r.stdout
    assert not log.with_suffix(".argv").exists()
    env = {k: v for k, v in _env(tmp_path, venv).items() if not k.startswith("SLURM_ARRAY")}   # not an array job
    r = subprocess.run(["bash", str(SBATCH), "--report", "mini"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert log.with_suffix(".argv").read_text().splitlines()[:3] == ["-m", "repro", "report"]


@pytest.mark.parametrize("what, env_change, message", [
    ("no venv", {"XT_VENV": "/nonexistent/venv"}, "no Python environment at /nonexistent/venv"),
    ("no preset", {}, "no preset"),
    ("no results folder", {"XT_RESULTS": None}, "set XT_RESULTS"),
])
def test_bad_setup_is_one_line_and_exit_2(tmp_path, what, env_change, message):
    venv, log = _venv(tmp_path)
    env = _env(tmp_path, venv)
    for k, v in env_change.items():
        if v is None:
            env.pop(k)
        else:
            env[k] = v
    r = subprocess.run(["bash", str(SBATCH), "nosuchpreset" if what == "no preset" else "smoke"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not log.with_suffix(".argv").exists()   # nothing ran


def test_slurms_term_reaches_the_grid_itself(tmp_path):
    """--signal=B:TERM signals the batch script's pid: the script exec's the grid, so the grid gets it."""
    venv, log = _venv(tmp_path)
    p = subprocess.Popen(["bash", str(SBATCH), "smoke"], env=_env(tmp_path, venv, FAKE_WAIT="1"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert_term_reaches_the_exec_target(p, log)
