"""The report of a run: markdown, CSV and LaTeX tables, PNG and SVG figures, findings and deviations, built
only from the cells' results files and their per-example predictions.

    python -m repro.report RESULTS_DIR [--out DIR] [--benchmarks BENCH.json]

reads `RESULTS_DIR/cells/*/results.json` (schemas 1-3, repro/results.py) and, beside each, `predictions.json`
(schema 3), and writes into DIR (default `RESULTS_DIR/report`):

    report.md                 the report (labelled SYNTHETIC when any cell ran on synthetic data)
    tables/*.csv              every table of the report, full precision
    tables/*.tex              booktabs LaTeX of the main tables (mean with its 95 % interval)
    plots/*.png, plots/*.svg  scores and transfer gap with intervals, heatmap of with − without, learning
                              curves, sample efficiency, training FLOPs, wall time, benchmark latency
    claims.csv, claims.json   the findings' verdicts with their deciding intervals, the deviations, the
                              bootstrap's method, resamples and seed (repro/report/claims.py)
    configs.json              the resolved config of every cell

Every number comes from a results or predictions file (or the benchmark JSON); nothing is typed in here. Bad
input stops before anything is written, with one line naming the file; the output folder is replaced in one
rename, so a failed run leaves the previous report as it was. DIR must be absent, empty or a previous report
(repro.outputs: it carries `.xtreme-transfer-report`); the run itself, a folder inside its cells/ or
intermediate/, or a folder of anything else is refused with one line and nothing is deleted.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from repro import outputs, typed
from repro.report import claims, efficiency, latex, plots, summary, sweep
from repro.report.markdown import render
from repro.report.rows import (config_rows, detectable_rows, efficiency_rows, environment_rows, intermediate_name,
                               missing_language_rows, per_language_rows, training_cost_rows, transfer_gap_rows)
from repro.report.stats import RESAMPLES, SEED, Bootstrap
from repro.results import ResultsError, load_cells, load_divergences, load_predictions, read_json, result_paths
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

def _cell_dirs(results_dir: Path) -> dict[str, Path]:
    return {read_json(p)["cell_id"]: p.parent for p in result_paths(results_dir)}


def build_report(results_dir: str | Path, out_dir: str | Path | None = None,
                 benchmarks: str | Path | None = None, resamples: int = RESAMPLES,
                 bootstrap_seed: int = SEED, digits: int = 1) -> Path:
    """Writes the report of `results_dir` into `out_dir` (default `results_dir/report`); returns out_dir.
    digits: decimals of the scores in the summary and the LaTeX tables (one, as papers print them)."""
    results_dir = Path(results_dir)
    given = Path(out_dir) if out_dir is not None else results_dir / "report"
    # Never the run itself, nor a folder of anything but a previous report (repro.outputs); then a killed
    # report's leftovers are undone, so that a failing report still gets the previous one back.
    out_dir = outputs.check_output_dir(given, "report", sources=(results_dir,))
    outputs.recover(out_dir, "report")
    # A hyper-parameter sweep: each arm's value picked on English dev; only those cells are analysed below.
    cells, sweep_rows = sweep.select(load_cells(results_dir))
    dirs = _cell_dirs(results_dir)
    predictions = {c.cell_id: load_predictions(dirs[c.cell_id], c) for c in cells}
    bench = load_benchmarks(benchmarks) if benchmarks is not None else []
    boot = Bootstrap(cells, predictions, resamples=resamples, seed=bootstrap_seed)
    findings = claims.evaluate_claims(cells, boot)
    deviations = claims.deviations(cells)

    common, varying = config_rows(cells)
    tables = {
        "per_language": per_language_rows(cells, boot),
        "transfer_gap": transfer_gap_rows(cells, boot),
        "detectable": [],
        "learning_curves": efficiency.curve_rows(cells),
        "steps_to_target": efficiency.steps_to_target_rows(cells),
        "steps_to_target_summary": [],
        "cost": efficiency.cost_rows(cells),
        "cost_effect": efficiency.cost_effect_rows(cells, boot),
        "sample_efficiency": efficiency.sample_efficiency_rows(cells, boot),
        "efficiency": efficiency_rows(cells),
        "identical_by_construction": efficiency.identical_by_construction_rows(cells),
        "training_cost": training_cost_rows(cells),
        "same_data_pairings": claims.same_data_pairings(cells),
        "bootstrap": [{"target_task": t, "language": lang, "resampled_over": s["mode"], "paired_examples": n,
                       "ids_not_in_every_cell": s["unpaired_examples"].get(lang, 0)}
                      for t, s in boot.describe()["tasks"].items() for lang, n in s["paired_examples"].items()],
        "deviations": [vars(d) | {"numbers": json.dumps(d.numbers, default=str)} for d in deviations],
        "environment": environment_rows(cells),
        "missing_languages": missing_language_rows(cells),
        "dropped": [{"cell_id": c.cell_id, "part": part, "reason": reason, "rows": n}
                    for c in cells for part, reasons in sorted(c.dropped.items()) for reason, n in sorted(reasons.items())],
        "diverged": [{"cell_id": d.cell_id, "phase": d.phase, "step": d.step, "last_checkpoint": d.last_checkpoint,
                      "message": d.message} for d in load_divergences(results_dir)],
        "config_common": common,
        "config_varying": varying,
        "cells": [_cell_summary(c) for c in cells],
        "sweep_selection": sweep_rows,
        "summary": [],
    }
    tables["steps_to_target_summary"] = efficiency.steps_to_target_summary(tables["steps_to_target"])
    tables["summary"] = summary.rows(tables["per_language"])
    tables["detectable"] = detectable_rows(tables["per_language"])
    if bench:
        tables["benchmarks"] = bench
    bootstrap = boot.describe()

    tmp = outputs.new_temp_dir(out_dir, "report")   # readable by others (the results folder's mode rules)
    try:
        (tmp / "tables").mkdir()
        (tmp / "plots").mkdir()
        for name, rows in tables.items():
            write_csv(tmp / "tables" / f"{name}.csv", rows)
        for name, tex in latex_tables(tables, findings, deviations, digits).items():
            (tmp / "tables" / f"{name}.tex").write_text(tex)
        write_csv(tmp / "claims.csv", [{"id": c.id, "claim": c.text, "verdict": c.verdict, "evidence": c.evidence}
                                       for c in findings])
        (tmp / "claims.json").write_text(json.dumps(
            {"bootstrap": bootstrap, "findings": [vars(c) for c in findings],
             "deviations": [vars(d) for d in deviations], "same_data_pairings": tables["same_data_pairings"]},
            indent=1, default=_json_default) + "\n")
        (tmp / "configs.json").write_text(json.dumps({c.cell_id: c.config for c in cells}, indent=1) + "\n")
        figures = plots.write_plots(tables, bench, tmp / "plots", any(c.synthetic for c in cells))
        (tmp / "report.md").write_text(render(cells, tables, findings, deviations, bootstrap, bench, figures,
                                              results_dir, benchmarks) + summary.section(tables["summary"], digits)
                                      + sweep.section(sweep_rows))
        outputs.replace_dir(tmp, out_dir, "report")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return given


def _json_default(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    return str(v)


def latex_tables(tables, findings, deviations, digits: int = 1) -> dict[str, str]:
    """name -> booktabs table: per-language scores per task, transfer gap, findings, deviations, steps to
    target, zero-shot change per cost, the XTREME-style summary. Scores print with `digits` decimals."""
    ci = latex.ci_cell

    def score(m, lo, hi):
        return latex.ci_cell(m, lo, hi, digits)

    out = {}
    per_lang = tables["per_language"]
    for task, size in sorted({(r["target_task"], r["train_size"]) for r in per_lang}):
        rows = [r for r in per_lang if r["target_task"] == task and r["train_size"] == size]
        suffix = "" if size == "all" else f"_n{size}"
        out[f"per_language_{task}{suffix}"] = latex.table(
            ["model", "intermediate", "language", "without", "with", "with − without"],
            [[r["model"], r["intermediate_task"] + (f" vs {r['baseline']}" if r.get("baseline", "none") != "none" else "")
              + (" (same data)" if r.get("same_data_as_target") else ""),
              r["language"].replace("_", " "), score(r["without_mean"], r["without_ci_low"], r["without_ci_high"]),
              score(r["with_mean"], r["with_ci_low"], r["with_ci_high"]),
              score(r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"])] for r in rows],
            f"{task} ({rows[0]['metric']}{'' if size == 'all' else f', train size {size}'}): mean over seeds with "
            "the distances to its 95% interval (t over seeds with the shared-example component; docs/report.md).", f"tab:{task}{suffix}", "lllrrr")
    out["transfer_gap"] = latex.table(
        ["task", "model", "intermediate", "train size", "gap without", "gap with", "with − without"],
        [[r["target_task"], r["model"], r["intermediate_task"], r["train_size"],
          score(r["gap_without_mean"], r.get("gap_without_ci_low"), r.get("gap_without_ci_high")),
          score(r["gap_with_mean"], r.get("gap_with_ci_low"), r.get("gap_with_ci_high")),
          score(r["gap_diff_mean"], r.get("gap_diff_ci_low"), r.get("gap_diff_ci_high"))] for r in tables["transfer_gap"]],
        "Transfer gap (English minus the mean of the other languages) with 95% intervals.", "tab:gap", "llllrrr")
    out["findings"] = latex.table(
        ["#", "claim", "verdict"], [[c.id, c.text, c.verdict] for c in findings],
        "Findings of the seed study: inconclusive wherever a deciding 95% interval contains 0.", "tab:findings",
        "rp{0.6\\linewidth}l")
    out["deviations"] = latex.table(
        ["#", "setup", "paper", "this run", "as in paper"], [[d.id, d.item, d.paper, d.run, d.follows]
                                                            for d in deviations],
        "The run's setup against the seed study's.", "tab:deviations",
        "rp{0.18\\linewidth}p{0.17\\linewidth}p{0.4\\linewidth}l")
    if tables["steps_to_target_summary"]:
        out["steps_to_target"] = latex.table(
            ["task", "model", "intermediate", "train size", "AUC with − twin", "goal dev", "reached", "steps with − twin",
             "FLOPs ratio (amortized)", "(marginal)"],
            [[r["target_task"], r["model"], r["intermediate_task"], r["train_size"],
              ci(r.get("auc_diff_mean"), r.get("auc_diff_ci_low"), r.get("auc_diff_ci_high")), r.get("goal_dev"),
              f"{r['reached']}/{r['with_curve']}",
              ci(r.get("steps_diff_mean"), r.get("steps_diff_ci_low"), r.get("steps_diff_ci_high")),
              r.get("total_flops_ratio"), r.get("total_flops_ratio_marginal")]
             for r in tables["steps_to_target_summary"]],
            "Area under the English dev curve (mean dev over the target phase) and target steps to 95% of the "
            "no-intermediate twin's final smoothed dev score, with minus twin, paired by seed (never-reached counted "
            "at the last step); FLOPs to the goal over the twin's, intermediate cost amortized and marginal.",
            "tab:steps", "llllrrrrrr")
    if tables["cost_effect"]:
        out["cost_effect"] = latex.table(
            ["task", "model", "intermediate", "train size", "Δ non-English", "cost ratio", "Δ per extra PFLOP"],
            [[r["target_task"], r["model"], r["intermediate_task"], r["train_size"],
              ci(r["delta_non_english"], r["delta_ci_low"], r["delta_ci_high"]), r["cost_ratio"],
              ci(r["delta_per_pflop"], r["delta_per_pflop_ci_low"], r["delta_per_pflop_ci_high"])]
             for r in tables["cost_effect"]],
            "Change in the zero-shot average and per unit of total training cost (intermediate FLOPs shared).",
            "tab:cost", "llllrrr")
    if tables.get("summary"):
        out["summary"] = summary.latex_table(tables["summary"], digits)
    return out


def _cell_summary(c) -> dict:
    row = {"cell_id": c.cell_id, "synthetic": c.synthetic, "model": c.model.name,
           "family": c.model.family, "intermediate_task": intermediate_name(c), "target_task": c.target_task,
           "seed": c.seed, "train_size": c.train_size, "metric": c.metric, "average": c.average,
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


