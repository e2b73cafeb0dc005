"""The XTREME-style summary table (tasks × models, without and with) and scores printed with --digits."""
from __future__ import annotations

import math

from repro.report import latex, summary


def per_language(task, model, inter, without, with_, lang="average", baseline="none"):
    return {"target_task": task, "model": model, "intermediate_task": inter, "language": lang, "train_size": "all",
            "baseline": baseline, "without_mean": without, "with_mean": with_, "without_n": 3, "with_n": 3}


ROWS = [per_language("udpos", "xlm-r", "mnli", 70.04, 71.06), per_language("panx", "xlm-r", "mnli", 60.26, 58.94),
        per_language("udpos", "xlm-r", "squad", 70.04, 69.5), per_language("udpos", "mbert", "mnli", 65.0, 66.0),
        per_language("udpos", "xlm-r", "mnli", 1.0, 2.0, lang="de"),                  # a language: not summarised
        per_language("udpos", "xlm-r", "control", 9.0, 9.0, baseline="mnli")]         # another contrast: left out


def test_rows_are_models_by_arm_with_a_column_per_task_and_the_mean_over_tasks():
    rows = summary.rows(ROWS)
    assert [(r["model"], r["intermediate_task"]) for r in rows] == [
        ("mbert", "none"), ("mbert", "mnli"), ("xlm-r", "none"), ("xlm-r", "mnli"), ("xlm-r", "squad")]
    xlmr_none, xlmr_mnli, xlmr_squad = rows[2], rows[3], rows[4]
    assert xlmr_none["udpos"] == 70.04 and xlmr_none["panx"] == 60.26
    assert math.isclose(xlmr_mnli["avg"], (71.06 + 58.94) / 2)
    assert math.isnan(xlmr_squad["avg"]) and math.isnan(rows[0]["avg"])   # a task missing: no average
    assert summary.tasks_of(rows) == ["panx", "udpos"]


def test_markdown_and_latex_print_scores_with_the_digits_asked():
    rows = summary.rows(ROWS)
    md = summary.section(rows)
    assert "| xlm-r | mnli | 58.9 | 71.1 | 65.0 |" in md and "| xlm-r | squad | — | 69.5 | — |" in md
    assert "| xlm-r | mnli | 58.94 | 71.06 | 65.00 |" in summary.section(rows, digits=2)
    tex = summary.latex_table(rows)
    assert r"xlm-r & mnli & 58.9 & 71.1 & 65.0 \\" in tex and r"xlm-r & squad & -- & 69.5 & -- \\" in tex
    assert summary.section([]) == ""


def test_latex_scores_round_as_papers_print_them():
    assert latex.mean_ci(74.0712, 71.425, 76.809, digits=1) == "$74.1^{+2.7}_{-2.6}$"
    assert latex.mean_ci(74.0712, 71.425, 76.809) == "$74.07^{+2.738}_{-2.646}$"   # not a score: 4 significant
    assert latex.mean_ci(74.0712, None, None, digits=2) == "$74.07$"


def test_report_takes_digits():
    from repro.__main__ import _parser
    assert _parser().parse_args(["report", "runs/x", "--digits", "2"]).digits == 2
    assert _parser().parse_args(["report", "runs/x"]).digits == 1
