"""Published zero-shot numbers, shown in the report as context ("anchors") beside a run's own scores.

Each anchor is one number of a paper's table: fine-tuned on English, evaluated zero-shot, on the paper's
test split and its own language set. They are never mixed into a run's scores or averages: the report
prints them in their own columns so a reader can see whether the pipeline's numbers are in a sane range.

Only numbers with a table to cite are recorded. `language="avg"` is the table's average over all of the
task's languages in that paper (`languages` says how many), which is not the average over the languages a
run evaluates. XTREME's and XTREME-R's "XLM-R" is XLM-R Large. Per-language rows (the papers' appendix
tables) can be added as records with a language code; the report shows them on the matching language's row.

XTREME-R (Ruder et al., 2021, arXiv 2104.07412) re-ran the baselines on its own task versions (UD-POS with 38
languages, WikiANN-NER without gold tokenisation over 48, XCOPA new): its rows are named "XTREME-R <model>" so
the two papers' numbers never share a column. An anchor whose transcription has not been checked against the
paper's PDF says so (`checked=False`); the report prints that beside it.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

XTREME = "XTREME (Hu et al., 2020), Table 2"
XTREME_R = "XTREME-R (Ruder et al., 2021, arXiv 2104.07412), Table 3"


@dataclasses.dataclass(frozen=True)
class Anchor:
    task: str            # data_prep task name
    metric: str          # the task's primary metric, as data_prep names it
    model: str           # the paper's row name
    language: str        # a language code, or "avg" (the table's average over `languages` languages)
    value: float         # 0-100, as the paper prints it
    source: str          # paper and table
    split: str = "test"
    languages: int | None = None   # for "avg": how many languages the paper averages
    checked: bool = True           # False: transcribed without the paper's table at hand; check before citing

    def citation(self) -> str:
        scope = f", average of {self.languages} languages" if self.language == "avg" else ""
        return f"{self.source} ({self.split}{scope}){'' if self.checked else ', transcription unchecked'}"


def _avg(task, metric, languages, **by_model):
    return [Anchor(task, metric, model.replace("_", "-"), "avg", value, XTREME, languages=languages)
            for model, value in by_model.items()]


# XTREME Table 2 (overall results, test sets; QA columns are F1 / EM, F1 kept).
def _avg_r(task, metric, languages, **by_model):
    return [Anchor(task, metric, f"XTREME-R {model.replace('_', '-')}", "avg", value, XTREME_R,
                   languages=languages, checked=False) for model, value in by_model.items()]


ANCHORS: tuple[Anchor, ...] = tuple(
    _avg("udpos", "f1", 33, mBERT=70.3, XLM_R=73.8)
    + _avg("panx", "f1", 40, mBERT=62.2, XLM_R=65.4)
    + _avg("mlqa", "f1", 7, mBERT=61.4, XLM_R=71.6)
    + _avg("tydiqa", "f1", 9, mBERT=59.7, XLM_R=65.1)
    # XTREME-R Table 3, the tasks whose version there differs from XTREME's or is new (XNLI, XCOPA).
    + _avg_r("xnli", "accuracy", 15, mBERT=66.5, XLM_R=79.2)
    + _avg_r("xcopa", "accuracy", 11, mBERT=56.1, XLM_R=69.2)
    + _avg_r("udpos", "f1", 38, mBERT=70.9, XLM_R=75.0)
    + _avg_r("panx", "f1", 48, mBERT=62.7, XLM_R=64.4)
)


def anchors_for(task: str, language: str, anchors: Iterable[Anchor] = ANCHORS) -> list[Anchor]:
    return [a for a in anchors if a.task == task and a.language == language]


def anchor_models(anchors: Iterable[Anchor] = ANCHORS) -> list[str]:
    """The paper rows recorded, in first-seen order (the report's anchor columns)."""
    out: list[str] = []
    for a in anchors:
        if a.model not in out:
            out.append(a.model)
    return out
