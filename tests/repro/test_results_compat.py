"""A results folder written before repro/ moved into its three rooms (schema 2, commit b1f77d6: two smoke
cells, written by that commit's own code) still reads, tables and reports with today's code."""
from __future__ import annotations

import shutil
import subprocess
import sys

from repro.results import READABLE_VERSIONS, SCHEMA_VERSION, load_cells
from tests.support.cli import ROOT, env

OLD = ROOT / "tests" / "fixtures" / "results_before_rooms"


def test_the_old_cells_read_with_the_new_fields_defaulted():
    cells = load_cells(OLD)
    assert [c.schema_version for c in cells] == [2, 2] and 2 in READABLE_VERSIONS and SCHEMA_VERSION == 3
    for c in cells:
        assert c.predictions is None and c.training.target.curve == () and c.training.target.timing is None
        assert c.per_language and c.train_size is None


def test_the_old_folder_reports_and_tables(tmp_path):
    run = tmp_path / "old"
    shutil.copytree(OLD, run)
    r = subprocess.run([sys.executable, "-m", "repro", "report", str(run)], cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / "report" / "report.md").read_text().startswith("# xtreme-transfer report")
    r = subprocess.run([sys.executable, "-m", "repro", "table", str(run)], cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "synth_int_sentiment" in r.stdout, r.stderr[-3000:]
