"""tests/slurm/cluster.sh without starting anything (the real-SLURM test that uses it is opt-in)."""
from __future__ import annotations

import os
import subprocess

from tests.docker.test_launch import _shellcheck
from tests.slurm.test_real_slurm import CLUSTER


def test_shellcheck():
    r = subprocess.run([_shellcheck(), "-s", "bash", str(CLUSTER)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stop_touches_only_what_its_pid_files_name(tmp_path):
    # A pid file of a process this script did not start, already gone: stop removes the file and kills nothing.
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "slurmd.pid").write_text(f"{gone.pid}\n")
    sleeper = subprocess.Popen(["sleep", "30"])   # a process with no pid file in the folder: left alone
    try:
        r = subprocess.run([str(CLUSTER), "stop", str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert not (tmp_path / "slurmd.pid").exists()
        assert sleeper.poll() is None
        (tmp_path / "munged.pid").write_text(f"{sleeper.pid}\n")   # one it did start: stopped
        r = subprocess.run([str(CLUSTER), "stop", str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and sleeper.wait(timeout=10) == -15
    finally:
        if sleeper.poll() is None:
            sleeper.kill()


def test_an_unknown_command_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run([str(CLUSTER), "restart", str(tmp_path)], capture_output=True, text=True, timeout=60,
                       env={**os.environ})
    assert r.returncode == 2 and r.stderr.strip() == "cluster.sh: unknown command 'restart' (start|stop)"
