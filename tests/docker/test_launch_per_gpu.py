"""scripts/launch_per_gpu.sh: N shard processes on one node, one GPU each (issue 33). Stand-in commands record
what each process saw; one real Python check resolves each process's grid shard and mesh on simulated CPU
devices."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.docker.test_launch import _shellcheck
from tests.support.paths import ROOT

SCRIPT = ROOT / "scripts" / "launch_per_gpu.sh"
RECORD = """#!/usr/bin/env bash
echo "gpu=$CUDA_VISIBLE_DEVICES fraction=$XLA_PYTHON_CLIENT_MEM_FRACTION index=$JOB_COMPLETION_INDEX count=$XT_SHARD_COUNT args=$*" > "{out}/shard$JOB_COMPLETION_INDEX"
trap 'echo TERM >> "{out}/term$JOB_COMPLETION_INDEX"; exit 143' TERM
if [ "${{FAKE_WAIT:-0}}" = 1 ]; then touch "{out}/started$JOB_COMPLETION_INDEX"; while true; do sleep 0.1; done; fi
exit "${{FAKE_EXIT:-0}}"
"""


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "JOB_COMPLETION_INDEX", "XT_SHARD_COUNT")}
    env.update(extra)
    return env


def _standin(tmp_path):
    exe = tmp_path / "grid"
    exe.write_text(RECORD.format(out=tmp_path))
    exe.chmod(0o755)
    return exe


def _launch(tmp_path, *args, **env):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], cwd=tmp_path, env=_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_shellcheck_passes():
    r = subprocess.run([_shellcheck(), "-s", "bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_each_process_sees_one_gpu_its_shard_and_the_memory_fraction(tmp_path):
    exe = _standin(tmp_path)
    r = _launch(tmp_path, 3, "--gpus", "4,5,6", "--logs", tmp_path / "logs", "--", exe, "paper", "precision=bf16")
    assert r.returncode == 0, r.stderr
    for i in range(3):
        assert (tmp_path / f"shard{i}").read_text().split() == [
            f"gpu={4 + i}", "fraction=0.9", f"index={i}", "count=3", "args=paper", "precision=bf16"]
        assert (tmp_path / "logs" / f"gpu{i}.log").exists()
    # the GPUs already visible to the launcher, and another fraction
    r = _launch(tmp_path, 2, "--mem-fraction", ".5", "--logs", tmp_path / "l2", "--", exe, CUDA_VISIBLE_DEVICES="2,3")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "shard1").read_text().startswith("gpu=3 fraction=.5 index=1 count=2")


def test_a_failing_shard_fails_the_launch(tmp_path):
    r = _launch(tmp_path, 2, "--logs", tmp_path / "logs", "--", _standin(tmp_path), FAKE_EXIT="3")
    assert r.returncode == 3 and "shard 1 exited 3" in r.stdout


def test_bad_input_is_one_line(tmp_path):
    exe = _standin(tmp_path)
    for args, message in (((0, "--", exe), "N=0 must be a positive whole number (--help)"),
                          ((3, "--gpus", "0,1", "--", exe), "3 processes but only 2 GPU(s) given: 0,1"),
                          ((2,), "no command after -- (--help)"),
                          ((2, "--mem-fraction", "1.5", "--", exe), "--mem-fraction 1.5 must be in (0, 1]"),
                          ((2, "--bogus", "--", exe), "unknown option --bogus (--help)")):
        r = _launch(tmp_path, *args)
        assert r.returncode == 2 and r.stderr.strip() == f"launch_per_gpu: {message}", r.stderr
    assert not list(tmp_path.glob("shard*"))


def test_term_reaches_every_shard(tmp_path):
    exe = _standin(tmp_path)
    p = subprocess.Popen(["bash", str(SCRIPT), "2", "--logs", str(tmp_path / "logs"), "--", str(exe)], cwd=tmp_path,
                         env=_env(FAKE_WAIT="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not all((tmp_path / f"started{i}").exists() for i in range(2)):
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143, out + err
    assert all((tmp_path / f"term{i}").read_text() == "TERM\n" for i in range(2))


def test_each_shard_resolves_its_part_of_the_grid_and_a_one_device_mesh(tmp_path):
    """The real resolution on simulated CPU devices: the variables the launcher sets give shard i/N, and a
    process that sees one device builds a one-device mesh from the default mesh.data 0."""
    probe = tmp_path / "probe.py"
    probe.write_text("import jax\nfrom repro.study import shards\nfrom repro.training import distributed\n"
                     "print(shards.resolve(), distributed.make_mesh(0).shape['data'], len(jax.devices()))\n")
    r = _launch(tmp_path, 2, "--logs", tmp_path / "logs", "--", sys.executable, probe,
                JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1",
                PYTHONPATH=str(ROOT))
    assert r.returncode == 0, r.stderr + "".join(p.read_text() for p in (tmp_path / "logs").glob("*"))
    for i in range(2):
        assert (tmp_path / "logs" / f"gpu{i}.log").read_text().split()[-4:] == ["shard", f"{i}/2", "1", "1"]
