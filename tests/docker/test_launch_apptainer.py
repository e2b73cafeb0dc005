"""The Apptainer path (docker/launch/apptainer.def, slurm-apptainer.sbatch) for clusters without docker.
Apptainer is not installable here: the definition is checked against the Dockerfile it builds from, and the
launcher runs with a stand-in `apptainer` that records its arguments and environment and, like apptainer,
passes TERM to the payload (here: itself), exiting 143 as the grid does."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.docker.test_launch_venv import assert_requeueable_sbatch, assert_term_reaches_the_exec_target
from tests.support.paths import ROOT

LAUNCH = ROOT / "docker" / "launch"
SBATCH = LAUNCH / "slurm-apptainer.sbatch"
DEF = LAUNCH / "apptainer.def"
FAKE = """#!/usr/bin/env bash
log={log}
printf '%s\\n' "$@" > "$log.argv"
echo "pid=$$" > "$log.env"
trap 'echo TERM >> "$log.signals"; exit 143' TERM
if [ "${{FAKE_WAIT:-0}}" = 1 ]; then echo started >> "$log.signals"; while true; do sleep 0.1; done; fi
"""
SHARD = dict(SLURM_ARRAY_TASK_ID="3", SLURM_ARRAY_TASK_MIN="1", SLURM_ARRAY_TASK_MAX="4",
             SLURM_ARRAY_TASK_COUNT="4", SLURM_ARRAY_TASK_STEP="1")


def _setup(tmp_path, **extra):
    log = tmp_path / "apptainer"
    exe = tmp_path / "bin" / "apptainer"
    exe.parent.mkdir()
    exe.write_text(FAKE.format(log=log))
    exe.chmod(0o755)
    sif = tmp_path / "xt.sif"
    sif.write_bytes(b"SIF")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "XT_", "CUDA_VISIBLE"))}
    env.update(PATH=f"{exe.parent}{os.pathsep}{env['PATH']}", XT_RESULTS=str(tmp_path / "results"),
               XT_SIF=str(sif))
    env.update(extra)
    return env, log, sif


def _argv(log) -> list[str]:
    return log.with_suffix(".argv").read_text().splitlines()


def test_shellcheck_and_directives():
    assert_requeueable_sbatch(SBATCH)


def test_each_array_task_runs_its_shard_in_the_image(tmp_path):
    env, log, sif = _setup(tmp_path, **SHARD, SLURM_JOB_GPUS="2", CUDA_VISIBLE_DEVICES="0",
                           XT_HF_CACHE=str(tmp_path / "hf"))
    r = subprocess.run(["bash", str(SBATCH), "paper", "precision=bf16"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    argv = _argv(log)
    assert argv[:5] == ["run", "--cleanenv", "--pwd", "/app", "--bind"]
    text = " ".join(argv)
    assert f"--bind {tmp_path / 'results'}:/results --bind {tmp_path / 'hf'}:/hf-cache" in text
    assert "--nv" in argv and "--env CUDA_VISIBLE_DEVICES=0" in text
    for k, v in SHARD.items():   # --cleanenv drops the host's environment: the shard variables go in by name
        assert f"--env {k}={v}" in text
    assert argv[-4:] == [str(sif), "grid", "configs/paper.yaml", "precision=bf16"]
    assert (tmp_path / "results").is_dir() and (tmp_path / "hf").is_dir()


def test_no_gpu_no_nv_and_no_array_no_shard_variables(tmp_path):
    env, log, _ = _setup(tmp_path)
    r = subprocess.run(["bash", str(SBATCH), "smoke"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    argv = _argv(log)
    assert "--nv" not in argv and "--env" not in argv
    assert argv[-2:] == ["grid", "configs/smoke.yaml"]


def test_the_report_runs_in_the_first_task_only(tmp_path):
    env, log, sif = _setup(tmp_path, **SHARD)
    r = subprocess.run(["bash", str(SBATCH), "--report", "paper"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "task 3 has nothing to do (submit it with --array=0)" in r.stdout
    assert not log.with_suffix(".argv").exists()
    env["SLURM_ARRAY_TASK_ID"] = "1"
    r = subprocess.run(["bash", str(SBATCH), "--report", "paper"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert _argv(log)[-3:] == [str(sif), "report", "runs/paper"]


@pytest.mark.parametrize("change, message", [
    ({"XT_SIF": "/nonexistent/xt.sif"}, "no image at /nonexistent/xt.sif"),
    ({"XT_SIF": None}, "set XT_SIF"),
    ({"XT_RESULTS": None}, "set XT_RESULTS"),
    ({"XT_APPTAINER": "", "PATH": "/usr/bin:/bin"}, "neither apptainer nor singularity is on PATH"),
])
def test_bad_setup_is_one_line_and_exit_2(tmp_path, change, message):
    env, log, _ = _setup(tmp_path)
    for k, v in change.items():
        if v is None:
            env.pop(k)
        else:
            env[k] = v
    r = subprocess.run(["bash", str(SBATCH), "smoke"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not log.with_suffix(".argv").exists()


def test_slurms_term_reaches_the_payload(tmp_path):
    env, log, _ = _setup(tmp_path, FAKE_WAIT="1")
    p = subprocess.Popen(["bash", str(SBATCH), "smoke"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert_term_reaches_the_exec_target(p, log)   # exec: apptainer is the batch script's pid


def test_the_definition_builds_from_the_image_the_launchers_run():
    text = DEF.read_text()
    header = dict(re.findall(r"^(Bootstrap|From):\s*(\S+)\s*$", text, re.M))
    assert header == {"Bootstrap": "docker-daemon", "From": "xtreme-transfer:cuda"}
    assert "image=${XT_IMAGE:-xtreme-transfer:cuda}" in (LAUNCH / "slurm.sbatch").read_text()
    sections = re.findall(r"^%(\w+)", text, re.M)
    assert sections == ["labels", "help", "runscript", "test"]
    runscript = text.split("%runscript", 1)[1].split("%test", 1)[0]
    assert "cd /app" in runscript and 'exec python -m repro "$@"' in runscript
    # What the runscript and the binds rely on in the image: /app holds the checkout, runs/ is /results.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile and "ln -s /results /app/runs" in dockerfile and "HF_HOME=/hf-cache" in dockerfile
