"""The report of a run: markdown + CSV tables + PNG plots, built only from the cells' results files.

    python -m repro.report RESULTS_DIR [--out DIR] [--benchmarks BENCH.json]

reads `RESULTS_DIR/cells/*/results.json` (schema 1, docs/design.md) and writes, into DIR (default
`RESULTS_DIR/report`):

    report.md                 the report (labelled SYNTHETIC when any cell ran on synthetic data)
    tables/*.csv              every table of the report, full precision
    plots/*.png               per-task scores, transfer gap, accuracy vs latency / parameters (Pareto front)
    claims.csv, claims.json   the seed study's claims, checked (repro/claims.py)
    configs.json              the resolved config of every cell

Every number comes from a results file (or the benchmark JSON); nothing is typed in here. Bad input stops
before anything is written, with one line naming the file; the output folder is replaced in one rename, so a
failed run leaves the previous report as it was.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from repro import claims as claims_mod
from repro import published
from repro import plots as plots_lib
from repro import typed
from repro.tables import fmt, markdown, mean_pm, text, write_csv
from repro.results import NONE, CellResults, ResultsError, load_cells, read_json
from repro.stats import mean_std

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

def _inter(cell: CellResults) -> str:
    return cell.intermediate_name


def _languages(cells: Iterable[dict]) -> list[str]:
    langs = {lang for c in cells for lang in c.per_language}
    return sorted(langs, key=lambda lang: (lang != "en", lang))


def _groups(cells) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """(target task, model) -> intermediate task (NONE included) -> cells."""
    out: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        out[(c.target_task, c.model.name)][_inter(c)].append(c)
    return {k: dict(v) for k, v in sorted(out.items())}


def _paired_diff(with_cells, without_cells, value) -> list[float]:
    """with − without for each seed present in both groups (and a value in both)."""
    base = {c.seed: value(c) for c in without_cells}
    out = []
    for c in with_cells:
        a, b = value(c), base.get(c.seed)
        if a is not None and b is not None:
            out.append(a - b)
    return out


def _comparison(with_cells, without_cells, value) -> dict[str, Any]:
    w = [v for v in map(value, with_cells) if v is not None]
    wo = [v for v in map(value, without_cells) if v is not None]
    row = {}
    for prefix, xs in (("with", w), ("without", wo)):
        m, s, n = mean_std(xs)
        row.update({f"{prefix}_mean": m, f"{prefix}_std": s, f"{prefix}_n": n})
    m, s, n = mean_std(_paired_diff(with_cells, without_cells, value))
    row.update({"diff_mean": m, "diff_std": s, "diff_n": n})
    return row


def _comparisons(cells, value_fns: dict[str, Any]) -> list[dict]:
    """Rows comparing each intermediate task with no intermediate training, per (target, model, key)."""
    rows = []
    for (task, model), by_inter in _groups(cells).items():
        without = by_inter.get(NONE, [])
        inters = sorted(i for i in by_inter if i != NONE) or [NONE]
        family = next(iter(by_inter.values()))[0].model.family
        for inter in inters:
            with_ = by_inter.get(inter, []) if inter != NONE else []
            for key, fn in value_fns.items():
                row = {"target_task": task, "model": model, "family": family, "intermediate_task": inter,
                       "metric": (with_ or without)[0].metric, "key": key}
                row.update(_comparison(with_, without, fn))
                rows.append(row)
    return rows


def per_language_rows(cells) -> list[dict]:
    langs = _languages(cells)
    fns = {lang: (lambda c, lang=lang: c.per_language.get(lang)) for lang in langs}
    fns["average"] = lambda c: c.average
    rows = [r for r in _comparisons(cells, fns)]
    for r in rows:
        r["language"] = r.pop("key")
        r.update(_published_columns(r["target_task"], r["language"]))
    # A model/task only has the languages its cells evaluated.
    return [r for r in rows if r["with_n"] or r["without_n"]]


def _published_columns(task: str, language: str) -> dict:
    """Published numbers for a per-language row (the "average" row takes the papers' averages): context only."""
    found = published.anchors_for(task, "avg" if language == "average" else language)
    cols = {f"published_{a.model}": a.value for a in found}
    if found:
        a = found[0]
        scope = f", average of {a.languages} languages" if a.language == "avg" else ""
        cols["published_source"] = f"{a.source} ({a.split}{scope})"
    return cols


def _published_text(row: dict) -> str:
    values = [f"{m} {fmt(row[f'published_{m}'])}" for m in published.anchor_models() if f"published_{m}" in row]
    return "; ".join(values) if values else "—"


def transfer_gap_rows(cells) -> list[dict]:
    fns = {"transfer_gap": lambda c: c.transfer_gap,
           "english": lambda c: c.per_language.get("en"),
           "non_english": lambda c: c.average_non_english}
    wide: dict[tuple, dict] = {}
    for r in _comparisons(cells, fns):
        key = (r["target_task"], r["model"], r["intermediate_task"])
        out = wide.setdefault(key, {k: r[k] for k in ("target_task", "model", "family", "intermediate_task",
                                                       "metric")})
        name = r["key"]
        for stat in ("with_mean", "with_std", "with_n", "without_mean", "without_std", "without_n",
                     "diff_mean", "diff_std", "diff_n"):
            if name == "transfer_gap":
                out[f"gap_{stat}"] = r[stat]
            elif stat.endswith("_mean"):
                out[f"{name}_{stat}"] = r[stat]
    return list(wide.values())


def _phase_rows(cells) -> list[dict]:
    rows = []
    for (task, model), by_inter in _groups(cells).items():
        for inter, cs in sorted(by_inter.items()):
            for phase in ("intermediate", "target"):
                blocks = [getattr(c.training, phase) for c in cs if getattr(c.training, phase)]
                if not blocks:
                    continue
                row = {"target_task": task, "model": model, "intermediate_task": inter, "phase": phase,
                       "phase_task": blocks[0].train_task or blocks[0].task, "n": len(blocks)}
                for key in ("train_examples", "epochs", "steps", "tokens", "flops", "wall_time_s"):
                    row[f"{key}_mean"] = mean_std([float(getattr(b, key)) for b in blocks])[0]
                row["wall_time_s_std"] = mean_std([b.wall_time_s for b in blocks])[1]
                rows.append(row)
    return rows


def efficiency_rows(cells) -> list[dict]:
    """Per (target task, model): parameter counts and the jitted inference latency of the results files."""
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in cells:
        by[(c.target_task, c.model.name)].append(c)
    rows = []
    for (task, model), cs in sorted(by.items()):
        pc = cs[0].param_count
        lat = [c.inference.latency_ms_median for c in cs if c.inference.latency_ms_median is not None]
        m, s, n = mean_std(lat)
        inf = cs[0].inference
        rows.append({"target_task": task, "model": model, "family": cs[0].model.family,
                     "params_total": pc.total, "params_embedding": pc.embedding,
                     "params_non_embedding": pc.non_embedding, "params_trainable": pc.trainable,
                     "frozen_parameters": max(c.frozen_parameters for c in cs),
                     "latency_ms_mean": m, "latency_ms_std": s, "latency_n": n,
                     "batch_size": inf.batch_size, "seq_len": inf.seq_len,
                     "dtype": inf.dtype, "device": cs[0].environment.device})
    return rows


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (cost, score) points: True where no other point costs no more and scores no less (one strictly)."""
    out = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            j != i and qx <= x and qy >= y and (qx < x or qy > y) for j, (qx, qy) in enumerate(points)
        )
        out.append(not (dominated or math.isnan(x) or math.isnan(y)))
    return out


def accuracy_efficiency_rows(cells) -> list[dict]:
    eff = {(r["target_task"], r["model"]): r for r in efficiency_rows(cells)}
    rows = []
    for (task, model), by_inter in _groups(cells).items():
        for inter, cs in sorted(by_inter.items()):
            m, s, n = mean_std([c.average for c in cs])
            e = eff[(task, model)]
            rows.append({"target_task": task, "model": model, "intermediate_task": inter, "metric": cs[0].metric,
                         "score_mean": m, "score_std": s, "n": n, "latency_ms": e["latency_ms_mean"],
                         "params_total": e["params_total"]})
    for task in sorted({r["target_task"] for r in rows}):
        sub = [r for r in rows if r["target_task"] == task]
        for cost in ("latency_ms", "params_total"):
            front = pareto_front([(float(r[cost]), r["score_mean"]) for r in sub])
            for r, f in zip(sub, front):
                r[f"pareto_{cost.split('_')[0]}"] = f
    return rows


def missing_language_rows(cells) -> list[dict]:
    """(target task, language, why) -> how many cells did not evaluate it."""
    count: dict[tuple[str, str, str], int] = defaultdict(int)
    for c in cells:
        for lang, why in c.missing_languages.items():
            count[(c.target_task, lang, why)] += 1
    return [{"target_task": t, "language": lang, "why": why, "cells": n} for (t, lang, why), n in sorted(count.items())]


def environment_rows(cells) -> list[dict]:
    rows = []
    for c in cells:
        env = c.environment
        rows.append({"cell_id": c.cell_id, "synthetic": c.synthetic, "device": env.device,
                     "jax": env.jax, "flax": env.flax, "python": env.python,
                     "commit": env.commit, "hostname": env.hostname,
                     "finished_at": c.finished_at, "checkpoint": c.checkpoint})
    return rows


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict) and d:
        out = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def config_rows(cells) -> tuple[list[dict], list[dict]]:
    """(keys with one value in every cell that has them, per-cell values of the keys that differ).

    A cell's config holds only its own model (`models.<name>.*`): such keys are "common" when every cell
    that has them agrees, with `cells` saying how many do."""
    flat = {c.cell_id: _flatten(c.config) for c in cells}
    keys = sorted({k for f in flat.values() for k in f})
    common, varying = [], []
    for k in keys:
        values = {json.dumps(f[k], sort_keys=True, default=str) for f in flat.values() if k in f}
        (common if len(values) == 1 else varying).append(k)
    common_rows = [{"key": k, "value": _json_value(next(f[k] for f in flat.values() if k in f)),
                    "cells": sum(k in f for f in flat.values())} for k in common]
    varying_rows = [{"cell_id": cid, **{k: _json_value(f.get(k)) for k in varying}} for cid, f in flat.items()]
    return common_rows, varying_rows


def _json_value(v):
    return v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v, sort_keys=True)


# ------------------------------------------------------------------------------------------------
# Output: markdown (tables and plots: repro.tables, repro.plots)

# extra_info keys of tests/benchmarks (older names too), shown when present.
_BENCH_KEYS = ("kind", "impl", "family", "model", "head", "batch", "batch_size", "seq_len", "dtype", "device_kind")
_BENCH_EXTRA = ("params.total", "params.embedding", "params.non_embedding", "param_count.total",
                "param_count.embedding", "flops", "flops_per_batch", "tokens_per_s", "compile_s")


def _render(cells, tables, claims, bench, plots, results_dir: Path, bench_path) -> str:
    n_syn = sum(c.synthetic for c in cells)
    md = io.StringIO()
    w = md.write
    w(f"# xtreme-transfer report{' — SYNTHETIC RUN' if n_syn else ''}\n\n")
    if n_syn:
        w(f"> **SYNTHETIC**: {n_syn} of {len(cells)} cells ran on synthetic data with tiny models. The numbers "
          "check that the pipeline works; they say nothing about the models or the claims of the study.\n\n")
    w(f"Results: `{results_dir}` — {len(cells)} cells, "
      f"{len({c.model.name for c in cells})} models, {len({c.target_task for c in cells})} target tasks, "
      f"seeds {', '.join(str(s) for s in sorted({c.seed for c in cells}))}. "
      "Scores are the target task's primary metric; mean ± sample std over seeds (n = seeds); "
      "the difference is with − without intermediate training, paired by seed.\n\n")

    w("## Target scores with and without intermediate training\n\n")
    for task in sorted({r["target_task"] for r in tables["per_language"]}):
        rows = [r for r in tables["per_language"] if r["target_task"] == task]
        w(f"### {task} ({rows[0]['metric']})\n\n")
        sources = sorted({r["published_source"] for r in rows if "published_source" in r})
        w(markdown(["model", "intermediate", "language", "without", "with", "difference", "published (context)"],
                    [[r["model"], r["intermediate_task"], r["language"],
                      mean_pm(r["without_mean"], r["without_std"], r["without_n"]),
                      mean_pm(r["with_mean"], r["with_std"], r["with_n"]),
                      mean_pm(r["diff_mean"], r["diff_std"], r["diff_n"]), _published_text(r)] for r in rows]))
        if sources:
            w(f"\nPublished: {'; '.join(sources)}. Other models, the paper's own split and language set: a sanity "
              "range, not a comparison. Our average is over the languages above.\n")
        else:
            w("\nPublished: no number of the XTREME papers is recorded for this task (repro/published.py).\n")
        if f"scores_{task}.png" in plots:
            w(f"\n![{task} scores](plots/scores_{task}.png)\n")
        w("\n")

    if tables["missing_languages"] or tables["dropped"]:
        w("## Data not scored\n\n")
    if tables["missing_languages"]:
        w("Languages of a target that were not evaluated (the data source lacks them; `eval.missing_languages: "
          "skip`). They are in no average above.\n\n")
        w(markdown(["task", "language", "why", "cells"],
                    [[r["target_task"], r["language"], r["why"], r["cells"]] for r in tables["missing_languages"]]))
        w("\n")
    if tables["dropped"]:
        w("Rows the loaders dropped (no gold label, answer text not in its context), per cell and split.\n\n")
        w(markdown(["cell", "part", "reason", "rows"],
                    [[r["cell_id"], r["part"], r["reason"], r["rows"]] for r in tables["dropped"]]))
        w("\n")

    w("## Transfer gap (English − mean of the other languages)\n\n")
    w(markdown(["task", "model", "intermediate", "gap without", "gap with", "difference"],
                [[r["target_task"], r["model"], r["intermediate_task"],
                  mean_pm(r["gap_without_mean"], r["gap_without_std"], r["gap_without_n"]),
                  mean_pm(r["gap_with_mean"], r["gap_with_std"], r["gap_with_n"]),
                  mean_pm(r["gap_diff_mean"], r["gap_diff_std"], r["gap_diff_n"])] for r in tables["transfer_gap"]]))
    if "transfer_gap.png" in plots:
        w("\n![transfer gap](plots/transfer_gap.png)\n")

    w("\n## Efficiency\n\n### Parameters and inference latency (results files)\n\n")
    w(markdown(["task", "model", "total", "embedding", "non-embedding", "trainable", "latency ms", "batch", "seq",
                 "dtype", "device"],
                [[r["target_task"], r["model"], r["params_total"], r["params_embedding"], r["params_non_embedding"],
                  r["params_trainable"], mean_pm(r["latency_ms_mean"], r["latency_ms_std"], r["latency_n"]),
                  r["batch_size"], r["seq_len"], r["dtype"], r["device"]] for r in tables["efficiency"]]))
    w("\n### Accuracy vs latency and parameters (Pareto front: no other point is cheaper and better)\n\n")
    w(markdown(["task", "model", "intermediate", "score", "latency ms", "parameters", "front (latency)",
                 "front (params)"],
                [[r["target_task"], r["model"], r["intermediate_task"], mean_pm(r["score_mean"], r["score_std"], r["n"]),
                  r["latency_ms"], r["params_total"], r["pareto_latency"], r["pareto_params"]]
                 for r in tables["accuracy_efficiency"]]))
    w("\n" + "".join(f"![{p}](plots/{p})\n" for p in plots if p.startswith("pareto_")))
    w("\n### Training compute\n\n")
    w(markdown(["task", "model", "intermediate", "phase", "phase task", "examples", "epochs", "steps", "tokens",
                 "FLOPs", "wall time s", "n"],
                [[r["target_task"], r["model"], r["intermediate_task"], r["phase"], r["phase_task"],
                  r["train_examples_mean"], r["epochs_mean"], r["steps_mean"], r["tokens_mean"], r["flops_mean"],
                  mean_pm(r["wall_time_s_mean"], r["wall_time_s_std"], r["n"]), r["n"]]
                 for r in tables["training_cost"]]))
    if "training_cost.png" in plots:
        w("\n![training cost](plots/training_cost.png)\n")
    if bench_path is not None:
        w(f"\n### Benchmarks (`{bench_path}`)\n\n")
        cols = [k for k in _BENCH_KEYS if any(k in r for r in bench)]
        extra = [k for k in _BENCH_EXTRA if any(k in r for r in bench)]
        w(markdown(["name", *cols, "median ms", "mean ms", "std ms", "rounds", *extra],
                    [[r["name"], *(r.get(k) for k in cols), r["median_ms"], r["mean_ms"], r["stddev_ms"],
                      r.get("rounds"), *(r.get(k) for k in extra)] for r in bench]))
        if "benchmark_latency.png" in plots:
            w("\n![benchmarks](plots/benchmark_latency.png)\n")

    w("\n## Claims of the seed study\n\n")
    w("Definitions: score = the results' `average` (primary metric over languages), mean over seeds; a family "
      "is represented by its best model; best/worst/> compare scores strictly; a ≈ b when |a − b| ≤ "
      "max(1 point, pooled seed std); claims 6–10 are checked against what this run did. "
      "Full numbers: `claims.json`.\n\n")
    w(markdown(["#", "claim", "verdict", "numbers"],
                [[str(c.id), c.text, f"**{c.verdict}**", c.evidence] for c in claims]))

    w("\n## Environment\n\n")
    w(markdown(["cell", "synthetic", "device", "jax", "flax", "python", "commit", "finished"],
                [[r["cell_id"], r["synthetic"], r["device"], r["jax"], r["flax"], r["python"], r["commit"],
                  r["finished_at"]] for r in tables["environment"]]))
    w("\n### Config (`configs.json` has every cell's full config)\n\nOne value in every cell that has the key:\n\n")
    w(markdown(["key", "value", "cells"],
                [[r["key"], fmt(r["value"]), r["cells"]] for r in tables["config_common"]]))
    varying = tables["config_varying"]
    if varying and len(varying[0]) > 1:
        keys = [k for k in varying[0] if k != "cell_id"]
        w("\nDiffering between cells:\n\n")
        w(markdown(["cell", *keys], [[r["cell_id"], *(fmt(r[k]) for k in keys)] for r in varying]))
    return md.getvalue()


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
    cells = load_cells(results_dir)
    bench = load_benchmarks(benchmarks) if benchmarks is not None else []
    claims = claims_mod.evaluate_claims(cells)

    common, varying = config_rows(cells)
    tables = {
        "per_language": per_language_rows(cells),
        "transfer_gap": transfer_gap_rows(cells),
        "efficiency": efficiency_rows(cells),
        "accuracy_efficiency": accuracy_efficiency_rows(cells),
        "training_cost": _phase_rows(cells),
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    tmp.chmod(0o755)   # mkdtemp makes 0700: the report is for others to read (the results folder's mode rules)
    try:
        (tmp / "tables").mkdir()
        (tmp / "plots").mkdir()
        for name, rows in tables.items():
            write_csv(tmp / "tables" / f"{name}.csv", rows)
        write_csv(tmp / "claims.csv", [{"id": c.id, "claim": c.text, "verdict": c.verdict, "evidence": c.evidence}
                                       for c in claims])
        (tmp / "claims.json").write_text(json.dumps([vars(c) for c in claims], indent=1, default=str) + "\n")
        (tmp / "configs.json").write_text(json.dumps({c.cell_id: c.config for c in cells}, indent=1) + "\n")
        plots = plots_lib.write_plots(tables, bench, tmp / "plots", any(c.synthetic for c in cells))
        (tmp / "report.md").write_text(_render(cells, tables, claims, bench, plots, results_dir, benchmarks))
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _cell_summary(c) -> dict:
    row = {"cell_id": c.cell_id, "synthetic": c.synthetic, "model": c.model.name,
           "family": c.model.family, "intermediate_task": _inter(c), "target_task": c.target_task,
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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m repro.report",
        description="Markdown report, CSV tables, plots and the claims check of a run's results files "
                    "(RESULTS_DIR/cells/*/results.json).")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="the run's output folder (holds cells/)")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default: RESULTS_DIR/report); "
                                                "replaced as a whole only when the report is complete")
    p.add_argument("--benchmarks", metavar="BENCH.json",
                   help="a pytest-benchmark JSON (--benchmark-json) to add to the efficiency section")
    args = p.parse_args(argv)
    try:
        out = build_report(args.results_dir, args.out, args.benchmarks)
    except ReportError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 2
    print(f"report: wrote {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
