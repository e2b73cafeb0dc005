"""run_all.sh around the grid, without Docker: its usage, the device check, the signals it passes on, and
the report it writes (or does not) after a grid that failed or was stopped.

The grid is a stand-in (a script that behaves as `python -m repro grid` does at its exits: writes results
files, exits 0/1/143/130) so that these run in seconds; the report and the table are the real commands on
those files. The image's real run of the same paths is tests/docker/test_image.py."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.paths import ROOT

RUN_ALL = ROOT / "run_all.sh"

FAKE_GRID = textwrap.dedent('''
    """Stands in for `python -m repro grid CONFIG [a.b=value ...]`; FAKE_GRID says how it ends."""
    import json, os, signal, sys, time
    sys.path.insert(0, os.environ["XT_ROOT"])
    from tests.support.results_files import make_results, write_results

    out = next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("output_dir="))
    mode = os.environ["FAKE_GRID"]
    log = os.environ["FAKE_GRID_LOG"]

    def note(text):
        with open(log, "a") as f:
            f.write(text + "\\n")

    if mode in ("ok", "fail"):
        note(f"JAX_PLATFORMS={os.environ.get('JAX_PLATFORMS')}")
        for model in ("bert-tiny", "roberta-tiny"):
            write_results(out, make_results(model, None, "synth_sentiment"))
        print(f"grid: 2 ran, 0 failed" if mode == "ok" else "FAILED xlnet-tiny: boom", flush=True)
        sys.exit(0 if mode == "ok" else 1)

    # "wait": run until a signal, then end as the real grid does (one line, 143 or 130);
    # "wait-default": Python's own handling (SIGTERM kills, SIGINT raises KeyboardInterrupt).
    def stop(signum, frame):
        note(signal.Signals(signum).name)
        print(f"stopped at step 3 of bert-tiny; rerun the same command to resume", file=sys.stderr, flush=True)
        sys.exit(128 + signum)
    if mode == "wait":
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    note(f"started pid={os.getpid()} pgid={os.getpgid(0)}")
    for _ in range(600):
        time.sleep(0.1)
    sys.exit(0)
''')


@pytest.fixture
def fake(tmp_path):
    """A `python` for run_all.sh (PYTHON=...) whose `-m repro grid` is FAKE_GRID and all else is real."""
    grid = tmp_path / "fake_grid.py"
    grid.write_text(FAKE_GRID)
    shim = tmp_path / "python"
    shim.write_text(f'#!/bin/sh\nif [ "$1 $2 $3" = "-m repro grid" ]; then shift 3; '
                    f'exec "{sys.executable}" "{grid}" "$@"; fi\n'
                    # FAKE_ACCELERATOR: the device check (python - gpu) finds one
                    f'if [ "$1 $2" = "- gpu" ] && [ -n "$FAKE_ACCELERATOR" ]; then cat >/dev/null; '
                    f'echo "ok 8 $FAKE_ACCELERATOR"; exit 0; fi\n'
                    f'exec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    return shim


def _env(shim: Path | None = None, **extra) -> dict:
    # (The caller's XT_ settings go, but the suite's figure settings stay: tests/conftest.py, one process, PNG.)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XT_", "FAKE_")) or k in ("XT_PLOT_WORKERS", "XT_PLOT_FORMATS")}
    env.update(XT_SKIP_SETUP="1", PYTHON=str(shim or sys.executable), XT_ROOT=str(ROOT), MPLBACKEND="Agg",
               PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", TQDM_DISABLE="1")
    env.update(extra)
    return env


def run_all(*args, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUN_ALL), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_help_prints_usage_and_runs_nothing():
    for flag in ("--help", "-h"):
        r = run_all(flag, env=_env(PYTHON="/nonexistent/python"))
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("The whole study") and "Usage: ./run_all.sh [--device cpu|gpu|tpu]" in r.stdout
        assert "Exit status" in r.stdout and "set -euo" not in r.stdout and r.stderr == ""


def test_unknown_preset_and_device_are_one_line_errors():
    r = run_all("nope", env=_env())
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no preset 'nope'" in r.stderr
    r = run_all("--device", "npu", env=_env())
    assert r.returncode == 2 and r.stderr.strip() == \
        "run_all.sh: --device (or XT_DEVICE) must be cpu, gpu or tpu, not 'npu'"


def _gpu_here() -> bool:
    return shutil.which("nvidia-smi") is not None and subprocess.run(["nvidia-smi"], capture_output=True).returncode == 0


@pytest.mark.skipif(_gpu_here(), reason="this machine has a GPU")
@pytest.mark.parametrize("how", [("--device", "gpu"), ("--device=gpu",), ()])
def test_an_accelerator_that_is_not_there_stops_before_any_work(tmp_path, how):
    """This machine has no GPU: the check answers in one line, with no plugin traceback and no output dir."""
    env = _env(XT_DEVICE="gpu") if not how else _env()
    start = time.monotonic()
    r = run_all(*how, "smoke", f"output_dir={tmp_path / 'out'}", env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("run_all.sh: --device gpu, but JAX finds no GPU here (only: cpu)")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and r.stdout == ""
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - start < 60
    r = run_all(*how, "smoke", f"output_dir={tmp_path / 'out'}", env={**env, "XT_IN_CONTAINER": "1"})
    assert "run the container with --gpus all" in r.stderr


def test_an_accelerator_that_is_there_is_named_and_left_to_jax(tmp_path, fake):
    log = tmp_path / "log"
    env = _env(fake, FAKE_GRID="ok", FAKE_GRID_LOG=str(log), FAKE_ACCELERATOR="NVIDIA H100 80GB HBM3",
               JAX_PLATFORMS="cpu")
    r = run_all("--device", "gpu", "smoke", f"output_dir={tmp_path / 'out'}", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("run_all.sh: device gpu: 8 x NVIDIA H100 80GB HBM3\n")
    # JAX chooses the accelerator itself: no JAX_PLATFORMS left over (not even the caller's cpu).
    assert log.read_text().splitlines()[0] == "JAX_PLATFORMS=None"
    r = run_all("--device", "cpu", "smoke", f"output_dir={tmp_path / 'out'}", env={**env, "JAX_PLATFORMS": ""})
    assert r.returncode == 0 and log.read_text().splitlines() == ["JAX_PLATFORMS=None", "JAX_PLATFORMS=cpu"]


def test_a_finished_grid_gets_a_report_named_as_the_user_mounted_it(tmp_path, fake):
    out = tmp_path / "mnt" / "smoke"
    env = _env(fake, FAKE_GRID="ok", FAKE_GRID_LOG=str(tmp_path / "log"),
               XT_RESULTS_MOUNT=str(tmp_path / "mnt"), XT_RESULTS_SHOWN="/home/me/results")
    r = run_all("smoke", f"output_dir={out}", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    report = out / "report" / "report.md"
    assert report.exists() and not (out / "report" / "INCOMPLETE").exists()
    assert "INCOMPLETE" not in report.read_text()
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("run_all.sh: smoke done in ") and last.endswith(
        "; report: /home/me/results/smoke/report/report.md")
    assert "WARNING" not in r.stderr


def test_results_that_will_be_lost_are_warned_about_at_the_end(tmp_path, fake):
    env = _env(fake, FAKE_GRID="ok", FAKE_GRID_LOG=str(tmp_path / "log"), XT_RESULTS_MOUNT=str(tmp_path),
               XT_RESULTS_SHOWN=str(tmp_path), XT_RESULTS_WHERE="inside the container",
               XT_RESULTS_EPHEMERAL="/results is not a mounted folder: ...")
    r = run_all("smoke", f"output_dir={tmp_path / 'out'}", env=env)
    assert r.returncode == 0
    assert r.stdout.strip().endswith(f"report: {tmp_path}/out/report/report.md ({tmp_path}: inside the container)")
    assert r.stderr.strip().splitlines()[-1] == "run_all.sh: WARNING: /results is not a mounted folder: ..."


def test_a_grid_with_failed_cells_gets_a_report_marked_incomplete(tmp_path, fake):
    out = tmp_path / "out"
    env = _env(fake, FAKE_GRID="fail", FAKE_GRID_LOG=str(tmp_path / "log"))
    r = run_all("smoke", f"output_dir={out}", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    text = (out / "report" / "report.md").read_text()
    assert text.startswith("> **INCOMPLETE: `./run_all.sh smoke` ended with exit 1 (cells failed")
    assert "covers only the 2 cells that finished" in text.splitlines()[0]
    assert (out / "report" / "INCOMPLETE").read_text().startswith("INCOMPLETE: ")
    assert "INCOMPLETE report: " in r.stderr and "smoke finished with failed cells (exit 1)" in r.stderr
    # The report itself is intact below the note.
    assert text.split("\n", 2)[2] == _report_of(out, tmp_path)


def _report_of(out: Path, tmp_path: Path) -> str:
    """The same results' report, built directly."""
    subprocess.run([sys.executable, "-m", "repro", "report", str(out), "--out", str(tmp_path / "direct")],
                   cwd=ROOT, env=_env(), check=True, capture_output=True)
    return (tmp_path / "direct" / "report.md").read_text()


def _start(tmp_path, fake, mode="wait") -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "grid.log"
    env = _env(fake, FAKE_GRID=mode, FAKE_GRID_LOG=str(log))
    # A session of its own: its process group plays the terminal's foreground group (Ctrl-C goes to all of it).
    p = subprocess.Popen([str(RUN_ALL), "smoke", f"output_dir={tmp_path / 'out'}"], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    for _ in range(600):
        if log.exists() and "started" in log.read_text():
            return p, log
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    pytest.fail(f"the stand-in grid did not start: {p.communicate()}")


@pytest.mark.parametrize("sig, to_group, rc", [
    (signal.SIGTERM, False, 143),   # docker stop: SIGTERM to PID 1 only
    (signal.SIGINT, True, 130),     # Ctrl-C in a terminal: SIGINT to the whole foreground process group
    (signal.SIGINT, False, 130),    # docker kill --signal=INT
])
def test_a_signal_reaches_the_grid_once_and_no_report_follows(tmp_path, fake, sig, to_group, rc):
    p, log = _start(tmp_path, fake)
    start = time.monotonic()
    (os.killpg if to_group else os.kill)(p.pid, sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == rc, stdout + stderr
    assert time.monotonic() - start < 5
    lines = log.read_text().splitlines()
    assert lines[1:] == [sig.name], lines          # exactly one signal reached the grid
    assert f"pgid={p.pid}" not in lines[0]          # the grid has a process group of its own
    assert "stopped at step 3 of bert-tiny; rerun the same command to resume" in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"run_all.sh: stopped by {sig.name} during the grid; no report written. "
        "Rerun the same command to resume (finished cells are kept).")
    assert not (tmp_path / "out" / "report").exists()


@pytest.mark.parametrize("sig, rc", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_grid_without_handlers_stops_as_cleanly(tmp_path, fake, sig, rc):
    """Python's default SIGTERM (killed) and SIGINT (KeyboardInterrupt) end the run the same way, with no job
    notice ("[1]+ Terminated") from bash."""
    p, log = _start(tmp_path, fake, mode="wait-default")
    os.kill(p.pid, sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == rc, stdout + stderr
    assert "Terminated" not in stderr and "Interrupt" not in stderr.splitlines()[-1]
    assert stderr.strip().splitlines()[-1].startswith(f"run_all.sh: stopped by {sig.name} during the grid")
    assert not (tmp_path / "out" / "report").exists()


def test_a_grid_stopped_from_outside_run_all_gets_no_report(tmp_path, fake):
    """The grid alone got the signal (say, a kill of its pid): its 143 is a stop, not a failed cell."""
    p, log = _start(tmp_path, fake)
    pid = int(log.read_text().split("pid=")[1].split()[0])
    os.kill(pid, signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 143
    assert "the grid was stopped (exit 143); no report written" in stderr
    assert not (tmp_path / "out" / "report").exists()
