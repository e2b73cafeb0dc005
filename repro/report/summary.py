"""The XTREME-style summary: one row per model and arm (without intermediate training, then with each
intermediate task), one column per target task holding the average over its evaluated languages, and the
mean over tasks, as XTREME's Table 2 and XTREME-R's Table 3 print them (`tables/summary.csv`, `.tex`, and a
section of report.md). Scores are rounded to `digits` decimals (one by default, as papers print them).

Input: the report's per-language rows (repro.report.rows), the intermediate-vs-none contrast only.
"""
from __future__ import annotations

import math

from repro.report import latex
from repro.results import NONE
from repro.tables import markdown

AVERAGE = "average"   # the per-language rows' average over every evaluated language (English included)


def _num(v) -> float:
    return math.nan if v is None or v == "" else float(v)


def rows(per_language: list[dict]) -> list[dict]:
    """{model, intermediate_task, <task>: mean, <task>_n: seeds, avg}: the task average of each model's arm.
    `avg` is the mean over the tasks, only where the row has every task (else empty, as in the papers)."""
    picked = [r for r in per_language if r.get("language") == AVERAGE and r.get("train_size", "all") == "all"
              and (r.get("baseline") or NONE) == NONE]
    tasks = sorted({r["target_task"] for r in picked})
    out: dict[tuple[str, str], dict] = {}
    for r in picked:
        for arm, prefix in ((NONE, "without"), (r["intermediate_task"], "with")):
            row = out.setdefault((r["model"], arm), {"model": r["model"], "intermediate_task": arm})
            row[r["target_task"]] = _num(r.get(f"{prefix}_mean"))
            row[f"{r['target_task']}_n"] = r.get(f"{prefix}_n")
    for row in out.values():
        values = [row.get(t, math.nan) for t in tasks]
        row["avg"] = sum(values) / len(values) if values and not any(math.isnan(v) for v in values) else math.nan
    order = sorted(out, key=lambda k: (k[0], k[1] != NONE, k[1]))
    return [out[k] for k in order]


def tasks_of(summary: list[dict]) -> list[str]:
    return sorted({k for r in summary for k in r} - {"model", "intermediate_task", "avg"}
                  - {k for r in summary for k in r if k.endswith("_n")})


def score(v, digits: int = 1) -> str:
    v = _num(v)
    return "—" if math.isnan(v) else f"{v:.{digits}f}"


def section(summary: list[dict], digits: int = 1) -> str:
    """report.md's summary section (empty without rows)."""
    if not summary:
        return ""
    tasks = tasks_of(summary)
    body = [[r["model"], r["intermediate_task"], *(score(r.get(t), digits) for t in tasks), score(r["avg"], digits)]
            for r in summary]
    return ("\n## Summary (XTREME style)\n\nThe average over each task's evaluated languages (English included), "
            "mean over seeds; `none` is no intermediate training; avg is the mean over the tasks. The per-language "
            "tables above give the intervals. Also `tables/summary.csv` and `tables/summary.tex`.\n\n"
            + markdown(["model", "intermediate", *tasks, "avg"], body))


def latex_table(summary: list[dict], digits: int = 1) -> str:
    tasks = tasks_of(summary)
    body = [[r["model"], r["intermediate_task"], *(latex.Latex(score(r.get(t), digits).replace("—", "--"))
                                                    for t in tasks), latex.Latex(score(r["avg"], digits).replace("—", "--"))]
            for r in summary]
    return latex.table(["model", "intermediate", *tasks, "avg"], body,
                       "Average over each task's languages (mean over seeds), without and with intermediate "
                       "training; avg: mean over the tasks.", "tab:summary", "ll" + "r" * (len(tasks) + 1))
