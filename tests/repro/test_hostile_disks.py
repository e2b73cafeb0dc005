"""Hostile disks: a read-only output folder, a disk that fills at the moment a checkpoint, the results or the
report is written, and `repro report` killed with SIGKILL. Each gives one line naming the path and exit 2,
loses nothing already written, and gives a complete result once the disk is fixed and the command rerun.

The disk is a real small tmpfs (needs root, as on CI and the project's machines; skipped otherwise). It is
filled at a chosen moment by a file that takes every free block, so the ENOSPC comes from the kernel, not from
a mock; deleting that file is "the fix".
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro import config
from repro.errors import OutputDirError
from repro.study import cell as cell_lib
from repro.training import checkpoint
from tests.support.cli import ROOT, SMOKE, cli, env, shared_run, snapshot, tiny_overrides

SHORT = {"target.epochs": 2, "target.batch_size": 16, "target.checkpoint_every": 3, "target.eval_every": 6}
FILLER = ".filler"


@pytest.fixture()
def disk(tmp_path):
    """A 64 MB tmpfs: room for a few tiny cells and their checkpoints, and quick to fill."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> None:
    """Takes every free block of the disk (a real ENOSPC for the next write)."""
    fd = os.open(disk / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)


def unfill(disk: Path) -> None:
    (disk / FILLER).unlink()


def cfg_on(disk: Path, target: str = "synth_sentiment", **extra):
    return config.load(SMOKE, tiny_overrides(disk / "out", target=target, **{**SHORT, **extra})).resolved_cell()


def test_a_read_only_output_folder_is_one_line_and_loses_nothing(disk):
    out = disk / "out"
    r = cli("run", SMOKE, *tiny_overrides(out, **SHORT))
    assert r.returncode == 0, r.stderr[-2000:]
    before = snapshot(out)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        r = cli("run", SMOKE, *tiny_overrides(out, target="synth_tagging", **SHORT))
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
        assert lines[0].startswith("error: ") and str(out) in lines[0] and "Read-only file system" in lines[0], lines
        r = cli("report", out)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and str(out) in lines[0], r.stderr[-2000:]
        assert "Read-only file system" in lines[0], lines
        assert snapshot(out) == before
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    r = cli("report", out)   # the fix: a writable disk; the same command completes
    assert r.returncode == 0 and (out / "report" / "report.md").exists(), r.stderr[-2000:]


@pytest.mark.parametrize("moment", ["best checkpoint", "latest checkpoint"])
def test_a_disk_filling_during_a_checkpoint_write(disk, monkeypatch, moment):
    cfg = cfg_on(disk)
    method = "save_best" if moment == "best checkpoint" else "save_latest"
    real = getattr(checkpoint.CheckpointStore, method)
    calls = {"n": 0}
    at = 1 if method == "save_best" else 2   # a latest checkpoint (step 3) is there to keep either way

    def filling(self, *args, **kw):
        calls["n"] += 1
        if calls["n"] == at:
            fill(disk)
        return real(self, *args, **kw)

    monkeypatch.setattr(checkpoint.CheckpointStore, method, filling)
    with pytest.raises(OutputDirError, match=r"cannot write checkpoint .*/target/ckpt/.*(No space left|RESOURCE_EXHAUSTED)") as e:
        cell_lib.run_cell(cfg)
    assert "\n" not in str(e.value) and str(disk) in str(e.value)
    assert not (disk / "out" / "cells" / cfg.cell_id / "results.json").exists()
    monkeypatch.setattr(checkpoint.CheckpointStore, method, real)
    unfill(disk)
    results = cell_lib.run_cell(cfg)   # the rerun resumes from the last good checkpoint and finishes
    assert results.per_language and results.training.target.steps == 12


def test_a_disk_filling_as_the_results_are_written(disk, monkeypatch):
    first = cfg_on(disk)
    cell_lib.run_cell(first)
    kept = snapshot(disk / "out" / "cells" / first.cell_id)
    cfg = cfg_on(disk, target="synth_tagging")
    real = cell_lib.CellResults.write

    def filling(self, path):
        fill(disk)
        return real(self, path)

    monkeypatch.setattr(cell_lib.CellResults, "write", filling)
    with pytest.raises(OutputDirError, match=r"cannot write .*results.json: No space left on device"):
        cell_lib.run_cell(cfg)
    folder = disk / "out" / "cells" / cfg.cell_id
    assert not (folder / "results.json").exists() and not list(folder.glob(".results.json.tmp-*"))
    assert snapshot(disk / "out" / "cells" / first.cell_id) == kept   # the finished cell keeps every byte
    monkeypatch.setattr(cell_lib.CellResults, "write", real)
    unfill(disk)
    assert cell_lib.run_cell(cfg).per_language
    assert (folder / "results.json").exists() and (folder / "predictions.json").exists()


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A finished SHORT cell and its report (built once a session, read only: each test copies it)."""
    def make(out):
        r = cli("run", SMOKE, *tiny_overrides(out, **SHORT))
        assert r.returncode == 0, r.stderr[-2000:]
        r = cli("report", out)
        assert r.returncode == 0, r.stderr[-2000:]

    return shared_run(tmp_path_factory, "hostile-reported", make)


def test_a_disk_filling_during_the_report_keeps_the_previous_report(disk, reported):
    out = disk / "out"
    shutil.copytree(reported, out, symlinks=True)
    before = snapshot(out / "report")
    fill(disk)
    r = cli("report", out)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-3000:]
    assert "No space left on device" in lines[0] and str(out) in lines[0], lines
    assert snapshot(out / "report") == before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".report")) == []   # no temp folder left
    unfill(disk)
    r = cli("report", out)
    assert r.returncode == 0 and (out / "report" / "report.md").exists(), r.stderr[-2000:]


def test_report_killed_with_sigkill_then_rerun(tmp_path, reported):
    """SIGKILL leaves no chance to clean up: killed while it writes, the previous report stays whole; killed
    between its two renames, the rerun puts the previous one back; either way the rerun completes and removes
    what the killed one left behind."""
    out = tmp_path / "out"
    shutil.copytree(reported, out, symlinks=True)
    before = snapshot(out / "report")
    p = subprocess.Popen([sys.executable, "-m", "repro", "report", str(out)], cwd=ROOT, env=env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob(".report.tmp-*")) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL, "the report finished before it could be killed"
    assert list(out.glob(".report.tmp-*")), "killed before it wrote anything"
    assert snapshot(out / "report") == before   # the previous report, whole
    r = cli("report", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "report" / "report.md").exists()
    assert [q.name for q in out.iterdir() if q.name.startswith(".report")] == []

    # killed between moving the previous report aside and moving the new one in: no report folder at all
    old = out / ".report.old-x"
    old.mkdir()
    os.rename(out / "report", old / "report")
    (out / ".report.tmp-999999999-x").mkdir()   # and a temp folder of a process that is gone
    r = cli("report", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "report" / "report.md").exists()
    assert [q.name for q in out.iterdir() if q.name.startswith(".report")] == []


def test_a_report_that_cannot_run_restores_the_previous_one(tmp_path, reported):
    """The recovery runs first: a results folder that fails to report still gets its previous report back."""
    out = tmp_path / "out"
    shutil.copytree(reported, out, symlinks=True)
    before = snapshot(out / "report")
    (out / ".report.old-y").mkdir()
    os.rename(out / "report", out / ".report.old-y" / "report")
    bad = next((out / "cells").glob("*/results.json"))
    bad.write_text("{")
    r = cli("report", out)
    assert r.returncode == 2 and str(bad) in r.stderr
    assert snapshot(out / "report") == before
