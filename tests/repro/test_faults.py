"""The faults a cluster user meets, each with its outcome: exit code, one-line message, nothing lost.

Torn logs, full disks, damaged checkpoints, two processes on one folder, a config error then its correction,
a checkpoint of another config, signals, corrupt results files, empty lists. docs/pipeline.md ("What happens
when") is the same list for readers.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from repro import config
from repro.study.cell import run_cell
from repro.errors import OutputDirError
from tests.support.cli import (CELL, SMOKE, assert_same_run, cli, popen, results, run_cell_ok, snapshot,
                               shared_run, tiny_overrides, train_log)

# 12 steps (96 examples, batch 16, 2 epochs), a checkpoint every 3 steps, dev evaluations every 6.
# The finished run keeps its final state (checkpoints.final_state), which these tests damage to resume from.
SHORT = {"target.epochs": 2, "target.batch_size": 16, "target.checkpoint_every": 3, "target.eval_every": 6,
         "checkpoints.final_state": "true"}
# A run long enough to be stopped in the middle: 120 steps, checkpoints and dev evaluations every 40.
LONG = {**SHORT, "target.epochs": 20, "target.checkpoint_every": 40, "target.eval_every": 40}


def one_line_error(r, needle: str, code: int = 2, warnings: int = 0) -> str:
    """The run failed with `code` and one `error:` line holding `needle`, after `warnings` warning lines."""
    assert r.returncode == code, (r.returncode, r.stderr[-3000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == warnings + 1 and lines[-1].startswith("error: ") and needle in lines[-1], lines
    return lines[-1]


def _steps(cell: Path, kind: str = "latest") -> list[int]:
    d = cell / "target" / "ckpt" / kind
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def _finished_steps(cell: Path) -> list[int]:
    """Latest-state saves that are complete: orbax renamed the step folder and its checksums are written.
    A step folder without checksums is a save killed half-way, which the rerun moves to damaged/."""
    d = cell / "target" / "ckpt" / "latest"
    return [s for s in _steps(cell) if (d / str(s) / "xt_checksums.json").exists()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The SHORT cell run once without faults (once a session; read only: `finished` copies it)."""
    return shared_run(tmp_path_factory, "faults-reference", lambda out: run_cell_ok(out, **SHORT)) / "cells" / CELL


@pytest.fixture()
def finished(reference, tmp_path):
    """A copy of the finished reference run (its output folder), to damage."""
    out = tmp_path / "out"
    shutil.copytree(reference.parent.parent, out)
    return out


def rerun(out: Path, **extra):
    return cli("run", SMOKE, *tiny_overrides(out, **{**SHORT, **extra}))


# ---- the train log ------------------------------------------------------------------------------

def test_torn_log_line_and_lines_past_the_checkpoint_do_not_block_resume(reference, finished):
    cell = finished / "cells" / CELL
    (cell / "results.json").unlink()
    shutil.rmtree(cell / "target" / "ckpt" / "latest" / "12")   # resume from step 9
    log = cell / "target" / "train_log.jsonl"
    with log.open("a") as f:   # a line past step 9 that a kill left behind, then a torn one
        f.write(json.dumps({"step": 13, "loss": 0.1, "grad_norm": 1.0, "learning_rate": 0.0}) + "\n")
        f.write('{"step": 14, "loss": 0.0')
    r = rerun(finished)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "skipped a torn line" in (finished / "repro.log").read_text()
    assert_same_run(reference, cell)


def test_disk_full_while_writing_the_log_names_the_file(tmp_path, monkeypatch):
    out = tmp_path / "out"
    cfg = config.load(SMOKE, tiny_overrides(out, **SHORT)).resolved_cell()
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OutputDirError, match=r"cannot write .*train_log.jsonl: No space left on device"):
        run_cell(cfg)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert run_cell(cfg).per_language   # the rerun resumes from the last checkpoint and finishes


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


@pytest.mark.slow
def test_a_full_disk_stops_with_the_path_and_keeps_finished_cells(tmp_path):
    """A real filesystem that runs out (a 1.5 MB tmpfs; needs root): one line naming the path, exit 2, and the
    finished cell next to it keeps every byte."""
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount_tmpfs(disk, "1500k"):
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        first = cli("run", SMOKE, *tiny_overrides(disk, **{**SHORT, "target.max_steps": 3}))
        assert first.returncode == 0, first.stderr[-2000:]
        before = snapshot(disk / "cells")
        r = cli("run", SMOKE, *tiny_overrides(disk, target="synth_tagging", **{**SHORT, "target.epochs": 30}))
        err = one_line_error(r, "No space left on device")
        assert str(disk) in err, err
        after = snapshot(disk / "cells")
        assert {k: v for k, v in after.items() if k in before} == before
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# ---- damaged checkpoints ------------------------------------------------------------------------

def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _largest_file(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file() and p.name != "xt_checksums.json"),
               key=lambda p: p.stat().st_size)


DAMAGE = {
    "bit flip in a data file": lambda step: _flip_a_bit(_largest_file(step / "state")),
    "truncated data file": lambda step: _largest_file(step / "state").write_bytes(
        _largest_file(step / "state").read_bytes()[:10]),
    "deleted manifest": lambda step: next(p for p in (step / "state").rglob("manifest*") if p.is_file()).unlink(),
    "truncated meta file": lambda step: (step / "meta" / "metadata").write_text("{"),
    "save not finished (no checksums)": lambda step: (step / "xt_checksums.json").unlink(),
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(reference, finished, how):
    cell = finished / "cells" / CELL
    (cell / "results.json").unlink()
    assert _steps(cell) == [9, 12]
    DAMAGE[how](cell / "target" / "ckpt" / "latest" / "12")
    r = rerun(finished)
    assert r.returncode == 0, r.stderr[-3000:]
    logtext = (finished / "repro.log").read_text()
    assert f"checkpoint {cell / 'target' / 'ckpt' / 'latest' / '12'} is damaged" in logtext
    assert "resumed at step 9" in logtext
    assert len(list((cell / "target" / "ckpt" / "damaged").iterdir())) == 1   # moved aside, not deleted
    assert_same_run(reference, cell)


def test_damaged_best_checkpoint_says_what_to_delete(finished):
    cell = finished / "cells" / CELL
    (cell / "results.json").unlink()
    best = cell / "target" / "ckpt" / "best"
    (step,) = _steps(cell, "best")
    _flip_a_bit(_largest_file(best / str(step) / "state"))
    r = rerun(finished)
    one_line_error(r, f"delete {cell / 'target'} and rerun", warnings=1)   # the warning names the damaged file


# ---- identity of a checkpoint -------------------------------------------------------------------

def test_checkpoint_of_another_config_is_refused_whatever_config_yaml_says(finished):
    cell = finished / "cells" / CELL
    (cell / "results.json").unlink()
    (cell / "config.yaml").unlink()   # lost in a race, or deleted to get past a refusal
    before = snapshot(cell / "target")
    r = rerun(finished, **{"target.optimizer.learning_rate": 0.002})
    one_line_error(r, "was written by another run (config.target.optimizer.learning_rate: 0.001 -> 0.002)")
    assert snapshot(cell / "target") == before


# ---- two processes, one folder ------------------------------------------------------------------

def test_a_second_process_on_a_running_cell_is_refused_and_nothing_is_truncated(tmp_path):
    out = tmp_path / "out"
    cell = out / "cells" / CELL
    # Long enough (1,200 steps) to be running whatever the load; stopped cleanly once the second is refused.
    run = tiny_overrides(out, **{**LONG, "target.epochs": 200})
    first = popen("run", SMOKE, *run)
    deadline = time.time() + 120
    while not _steps(cell) and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the first run ended before the second could start"
    second = cli("run", SMOKE, *run)
    err = one_line_error(second, f"is being run by pid {first.pid} on ")
    assert "lock" in err
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 143, first.stderr.read()[-2000:]
    stopped_at = _steps(cell)[-1]
    steps = [x["step"] for x in train_log(cell / "target") if "loss" in x]
    assert steps == list(range(1, stopped_at + 1))   # every line of the first run, none of the second's


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    out = tmp_path / "out"
    cell = out / "cells" / CELL
    proc = popen("run", SMOKE, *tiny_overrides(out, **LONG))
    deadline = time.time() + 120
    while not _finished_steps(cell) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / ".locks" / "cells" / f"{CELL}.lock").exists()
    r = cli("run", SMOKE, *tiny_overrides(out, **LONG))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed at step" in (out / "repro.log").read_text()


# ---- config errors ------------------------------------------------------------------------------

def test_a_config_error_does_not_poison_the_folder(tmp_path):
    out = tmp_path / "out"
    # Found only once the model is built (after the data is loaded): the folder must not be claimed yet.
    # (The preflight finds it before anything; skipped here to test the cell's own order.)
    bad = tiny_overrides(out, **{**SHORT, "models.bert-tiny.hf_config.max_position_embeddings": 16})
    one_line_error(cli("run", SMOKE, *bad, "--no-preflight"),
                   "config: data.max_length=32 is longer than the 16 positions of model bert-tiny")
    r = cli("run", SMOKE, *bad)
    one_line_error(r, "error: preflight: 1 problem; 1 cells affected")
    assert "data.max_length=32 is longer than the 16 positions" in r.stdout
    assert not (out / "cells" / CELL / "config.yaml").exists()
    r = rerun(out)
    assert r.returncode == 0, r.stderr[-3000:]


def test_a_folder_claimed_by_a_run_that_saved_nothing_is_claimed_anew(tmp_path):
    out = tmp_path / "out"
    cell = out / "cells" / CELL
    cell.mkdir(parents=True)
    (cell / "config.yaml").write_text("name: a-typo\nprecision: bf16\n")   # an older run that failed early
    r = rerun(out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "precision: fp32" in (cell / "config.yaml").read_text()


@pytest.mark.parametrize("override, needle", [
    ("grid.seeds=[]", "config: grid.seeds=() is empty"),
    ("grid.intermediate_tasks=[]", "config: grid.intermediate_tasks=() is empty"),
    ("grid.target_tasks=[]", "config: grid.target_tasks is empty"),
    ("eval.languages=[]", "config: eval.languages=() is empty; leave it unset"),
    ("mesh.data=64", "config: mesh.data=64 but only 1 devices are visible"),
])
def test_empty_lists_and_impossible_meshes_are_config_errors(tmp_path, override, needle):
    r = cli("grid", SMOKE, f"output_dir={tmp_path}", override)
    one_line_error(r, needle)


def test_a_mapping_override_merges_into_the_preset():
    cfg = config.load(SMOKE, ["target.optimizer={learning_rate: 0.0005}"])
    assert cfg.target.optimizer.learning_rate == 0.0005
    assert cfg.target.optimizer.weight_decay == 0.01 and cfg.target.optimizer.warmup_fraction == 0.1


# ---- results files ------------------------------------------------------------------------------

def test_a_corrupt_results_file_is_redone_not_counted_as_finished(reference, finished):
    cell = finished / "cells" / CELL
    (cell / "results.json").write_text('{"schema_version": 1, "cell_id": ')
    r = cli("table", finished)
    one_line_error(r, f"{cell / 'results.json'}: malformed JSON")
    r = cli("grid", SMOKE, *tiny_overrides(finished, **SHORT))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 ran, 0 already finished" in r.stdout
    assert len(list(cell.glob("results.json.invalid-*"))) == 1   # kept for the user, not deleted
    assert results(cell)["per_language"] == results(reference)["per_language"]


# ---- signals ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def long_reference(tmp_path_factory):
    return shared_run(tmp_path_factory, "faults-long", lambda out: run_cell_ok(out, **LONG)) / "cells" / CELL


# SIGINT takes the same path as SIGTERM (repro.signals), so CI runs SIGTERM's; --run-slow runs both.
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_a_signal_stops_at_a_step_in_one_line_and_the_rerun_resumes_exactly(long_reference, tmp_path, sig, code):
    out = tmp_path / "out"
    cell = out / "cells" / CELL
    proc = popen("run", SMOKE, *tiny_overrides(out, **LONG))
    deadline = time.time() + 120
    while not (cell / "target" / "train_log.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(sig)
    proc.wait(timeout=60)   # it stops at the next step: stopped_at < 120 below (no wall-time bound: CI is loaded)
    err = proc.stderr.read().strip().splitlines()
    assert proc.returncode == code, err
    assert err[-1].startswith("stopped at step ") and "; rerun the same command to resume" in err[-1], err
    assert not any("Traceback" in ln for ln in err), err
    stopped_at = int(err[-1].split()[3])
    assert 0 < stopped_at < 120 and _steps(cell)[-1] == stopped_at
    r = cli("run", SMOKE, *tiny_overrides(out, **LONG))
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resumed at step {stopped_at}" in (out / "repro.log").read_text()
    assert_same_run(long_reference, cell)


# ---- missing weights ----------------------------------------------------------------------------

def test_a_checkpoint_missing_a_backbone_weight_is_refused_unless_allowed(tmp_path):
    import yaml
    from safetensors.numpy import load_file, save_file

    import flax_models as fm

    ckpt = tmp_path / "ckpt"
    hf = yaml.safe_load(SMOKE.read_text())["models"]["bert-tiny"]["hf_config"]
    fm.from_config(hf).save_pretrained(ckpt)
    weights = load_file(ckpt / "model.safetensors")
    gone = "encoder.layer.1.output.dense.weight"
    del weights[gone]
    save_file(weights, ckpt / "model.safetensors", metadata={"format": "pt"})
    model = {"models.bert-tiny.name_or_path": ckpt, "models.bert-tiny.hf_config": "null"}

    out = tmp_path / "out"
    r = cli("run", SMOKE, *tiny_overrides(out, **{**SHORT, **model}))
    one_line_error(r, gone)
    assert not (out / "cells" / CELL / "config.yaml").exists()

    r = cli("run", SMOKE, *tiny_overrides(out, **{**SHORT, **model, "models.bert-tiny.allow_missing_weights": "true"}))
    assert r.returncode == 0, r.stderr[-2000:]
    fresh = results(out / "cells" / CELL)["model"]["fresh_weights"]
    assert f"bert.{gone}" in fresh and "classifier.weight" in fresh
    assert f"bert.{gone}" in (out / "repro.log").read_text()

    r = subprocess.run([os.sys.executable, "-m", "flax_models", "check-parity", str(ckpt)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 1 and gone in r.stdout + r.stderr, r.stdout + r.stderr
