"""The report of a run: markdown + CSV tables + PNG plots, built only from the cells' results files.

    python -m repro.report RESULTS_DIR [--out DIR] [--benchmarks BENCH.json]

reads `RESULTS_DIR/cells/*/results.json` (schema 1, docs/design.md) and writes, into DIR (default
`RESULTS_DIR/report`):

    report.md                 the report (labelled SYNTHETIC when any cell ran on synthetic data)
    tables/*.csv              every table of the report, full precision
    plots/*.png               per-task scores, transfer gap, accuracy vs latency / parameters (Pareto front)
    claims.csv, claims.json   the seed study's claims, checked (repro/report/claims.py)
    configs.json              the resolved config of every cell

Every number comes from a results file (or the benchmark JSON); nothing is typed in here. Bad input stops
before anything is written, with one line naming the file; the output folder is replaced in one rename, so a
failed run leaves the previous report as it was.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from repro import typed
from repro.report import claims, plots
from repro.report.markdown import render
from repro.report.rows import (accuracy_efficiency_rows, config_rows, efficiency_rows, environment_rows,
                               intermediate_name, missing_language_rows, per_language_rows, training_cost_rows,
                               transfer_gap_rows)
from repro.results import ResultsError, load_cells, read_json
from repro.tables import text, write_csv

# Kept under the old names for readers of this module (scripts/bench_table.py).
ReportError = ResultsError


def load_benchmarks(path: str | Path) -> list[dict]:
    """Rows of a pytest-benchmark JSON (`--benchmark-json`): stats in ms plus the flattened extra_info."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ResultsError(f"{path}: not a pytest-benchmark JSON (no 'benchmarks' list)")
    rows = []
    for i, b in enumerate(data["benchmarks"]):
        stats = b.get("stats") if isinstance(b, dict) else None
        if not isinstance(stats, dict) or not isinstance(stats.get("median"), (int, float)):
            raise ResultsError(f"{path}: benchmarks[{i}] has no stats.median")
        row = {"name": b.get("name", f"#{i}")}
        extra = b.get("extra_info") or {}
        for k, v in extra.items():
            if isinstance(v, dict):
                row.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                row[k] = v
        row.update({"median_ms": stats["median"] * 1e3, "mean_ms": stats.get("mean", math.nan) * 1e3,
                    "min_ms": stats.get("min", math.nan) * 1e3, "stddev_ms": stats.get("stddev", math.nan) * 1e3,
                    "rounds": stats.get("rounds")})
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------
# Aggregation

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(out_dir: Path) -> None:
    """What a report killed mid-way (SIGKILL, power loss) left next to out_dir: its unfinished temp folder is
    removed, and a previous report moved aside but not yet replaced is put back."""
    for tmp in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        pid = tmp.name.removeprefix(f".{out_dir.name}.tmp-").partition("-")[0]
        if not pid.isdigit() or not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
    for old in out_dir.parent.glob(f".{out_dir.name}.old-*"):
        if not out_dir.exists() and (old / out_dir.name).is_dir():
            os.rename(old / out_dir.name, out_dir)
        shutil.rmtree(old, ignore_errors=True)


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rename(out_dir, old / out_dir.name)
    os.rename(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_report(results_dir: str | Path, out_dir: str | Path | None = None,
                 benchmarks: str | Path | None = None) -> Path:
    """Writes the report of `results_dir` into `out_dir` (default `results_dir/report`); returns out_dir."""
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir / "report"
    if out_dir.parent.is_dir():
        _recover(out_dir)   # first: a failing report still gets the previous one back
    cells = load_cells(results_dir)
    bench = load_benchmarks(benchmarks) if benchmarks is not None else []
    checked = claims.evaluate_claims(cells)

    common, varying = config_rows(cells)
    tables = {
        "per_language": per_language_rows(cells),
        "transfer_gap": transfer_gap_rows(cells),
        "efficiency": efficiency_rows(cells),
        "accuracy_efficiency": accuracy_efficiency_rows(cells),
        "training_cost": training_cost_rows(cells),
        "environment": environment_rows(cells),
        "missing_languages": missing_language_rows(cells),
        "dropped": [{"cell_id": c.cell_id, "part": part, "reason": reason, "rows": n}
                    for c in cells for part, reasons in sorted(c.dropped.items()) for reason, n in sorted(reasons.items())],
        "config_common": common,
        "config_varying": varying,
        "cells": [_cell_summary(c) for c in cells],
    }
    if bench:
        tables["benchmarks"] = bench

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
    tmp.chmod(0o755)   # mkdtemp makes 0700: the report is for others to read (the results folder's mode rules)
    try:
        (tmp / "tables").mkdir()
        (tmp / "plots").mkdir()
        for name, rows in tables.items():
            write_csv(tmp / "tables" / f"{name}.csv", rows)
        write_csv(tmp / "claims.csv", [{"id": c.id, "claim": c.text, "verdict": c.verdict, "evidence": c.evidence}
                                       for c in checked])
        (tmp / "claims.json").write_text(json.dumps([vars(c) for c in checked], indent=1, default=str) + "\n")
        (tmp / "configs.json").write_text(json.dumps({c.cell_id: c.config for c in cells}, indent=1) + "\n")
        figures = plots.write_plots(tables, bench, tmp / "plots", any(c.synthetic for c in cells))
        (tmp / "report.md").write_text(render(cells, tables, checked, bench, figures, results_dir, benchmarks))
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _cell_summary(c) -> dict:
    row = {"cell_id": c.cell_id, "synthetic": c.synthetic, "model": c.model.name,
           "family": c.model.family, "intermediate_task": intermediate_name(c), "target_task": c.target_task,
           "seed": c.seed, "metric": c.metric, "average": c.average,
           "average_non_english": c.average_non_english, "transfer_gap": c.transfer_gap}
    row.update({f"per_language.{k}": v for k, v in c.per_language.items()})
    row.update({f"param_count.{k}": v for k, v in typed.plain(c.param_count).items()})
    row["latency_ms_median"] = c.inference.latency_ms_median
    for phase in ("intermediate", "target"):
        for k, v in (typed.plain(getattr(c.training, phase)) or {}).items():
            row[f"{phase}.{k}"] = v
    return row


def results_table(results_dir: str | Path) -> str:
    """A plain-text table of every finished cell under results_dir (what `repro table` and run_all.sh print)."""
    rows = []
    for c in load_cells(results_dir):
        phases = [p for p in (c.training.intermediate, c.training.target) if p is not None]
        rows.append([c.model.name, c.intermediate_task or "-", c.target_task, str(c.seed), c.metric,
                     "-" if "en" not in c.per_language else f"{c.per_language['en']:.1f}",   # XCOPA scores no en
                     "-" if c.average_non_english is None else f"{c.average_non_english:.1f}",
                     "-" if c.transfer_gap is None else f"{c.transfer_gap:.1f}",
                     f"{c.param_count.total / 1e6:.3f}",
                     "-" if c.inference.latency_ms_median is None else f"{c.inference.latency_ms_median:.2f}",
                     f"{sum(p.flops for p in phases):.2e}", f"{sum(p.wall_time_s for p in phases):.1f}",
                     ",".join(sorted(c.missing_languages)) or "-"])
    return text(["model", "intermediate", "target", "seed", "metric", "en", "avg non-en", "gap", "params (M)",
                 "latency ms", "train FLOPs", "train s", "not evaluated"], rows)


