"""The seed study's findings, each checked against one run with its uncertainty, and its setup, compared.

Findings (claims 1–5 and 11, the paper's main finding) get "supported", "contradicted", "inconclusive" or
"not tested" (the cells they need are absent). Each verdict rests on differences whose 95 % paired bootstrap
interval (repro.report.stats) decides it: a difference counts only when its interval excludes 0, so a claim
is "inconclusive" whenever a deciding interval contains 0 (or there is none: too few seeds and no per-example
predictions). Setup claims 6–10 are not findings: `deviations` says what the run did against what the paper
did ("3 intermediate epochs vs the paper's 100").

Definitions (docs/report.md repeats them):

- cells: findings use each target task's largest training size (the grid's sample-efficiency axis is its
  own section) and leave out pairings whose intermediate data is the target's own training data (MNLI→XNLI:
  the same data trained twice, not intermediate-task transfer); the report lists those.
- score of an arm (model × intermediate task or none × target task): its `average` (the primary metric over
  the languages its cells share), mean over seeds. A family (BERT, RoBERTa, XLNet = `model.family`) is
  represented by its best model (by the score's point estimate).
- a > b: the interval of a − b lies above 0; a ≈ b: the interval of a − b lies within ± one point (0.01 on a
  0–1 metric scale, 1.0 if any score exceeds 1); a ≉ b: it lies wholly outside.
- setting: the results' `setting` (task type × transfer); six settings exist.
"""
from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Any, Iterable

from scipy.stats import t as student_t

from repro.report import stats
from repro.report.rows import AVERAGE, primary_key, smallest_effect, statistic, with_minus_without
from repro.report.stats import Bootstrap, Estimate, mean_of
from repro.results import NONE, CellResults

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = "supported", "contradicted", "inconclusive", "not tested"
YES, NO, OPEN = "yes", "no", "open"
FAMILIES = ("bert", "roberta", "xlnet")
# data_prep's names (TaskSpec.setting); the longer names of the study are accepted as aliases.
TASK_TYPES = ("classification", "sentiment", "similarity")
TRANSFERS = ("domain", "cross_lingual")
_ALIASES = {"text_classification": "classification", "sentence_similarity": "similarity",
            "domain_adaptation": "domain", "crosslingual": "cross_lingual"}
SETTINGS = tuple((t, x) for t in TASK_TYPES for x in TRANSFERS)
INTERMEDIATE_EPOCHS = 100
SIZE_RATIO = 10
MAIN_FINDING = 11

CLAIMS = {
    1: "RoBERTa and BERT with intermediate training are the best models, depending on the task.",
    2: "RoBERTa is best in three of the six settings.",
    3: "BERT is best in the other three settings.",
    4: "XLNet is the worst model in every experiment.",
    5: "Without intermediate training the same order holds: RoBERTa ≈ BERT > XLNet.",
    MAIN_FINDING: "Fine-tuning without intermediate training is better for most tasks (the seed paper's main "
                  "finding).",
}
SETUP = {
    6: "intermediate training epochs",
    7: "target fine-tuning after and without intermediate training",
    8: "frozen layers",
    9: "intermediate dataset size / target dataset size",
    10: "intermediate task for text classification",
}
PAPER_SETUP = {
    6: f"{INTERMEDIATE_EPOCHS} epochs on the large dataset",
    7: "run the same way",
    8: "none: all weights are updated",
    9: f"at least {SIZE_RATIO}×",
    10: "IMDB",
}


@dataclasses.dataclass(frozen=True)
class Claim:
    id: int
    text: str
    verdict: str
    evidence: str                 # one line: the deciding differences with their intervals
    numbers: dict[str, Any]       # the same, machine-readable (each difference: point, ci_low, ci_high, ...)


@dataclasses.dataclass(frozen=True)
class Deviation:
    id: int
    item: str                     # what is compared
    paper: str                    # what the seed study did
    run: str                      # what this run did, with its numbers
    follows: str                  # yes | no | not tested
    numbers: dict[str, Any]


# ------------------------------------------------------------------------------------------------
# Which cells the findings use, and their arms

def _norm(name: str | None) -> str | None:
    return None if name is None else str(name).strip().lower().replace(" ", "_").replace("-", "_")


def _base_task(name: str) -> str:
    """A synthetic stand-in counts as the task it stands in for: synth_imdb -> imdb."""
    n = _norm(name)
    for prefix in ("synthetic_", "synth_"):
        if n.startswith(prefix):
            return n[len(prefix):]
    return n


def _setting(cell) -> tuple[str, str] | None:
    s = cell.setting
    if s is None:
        return None
    task_type, transfer = _norm(s.task_type), _norm(s.transfer)
    return _ALIASES.get(task_type, task_type), _ALIASES.get(transfer, transfer)


def finding_cells(cells: Iterable[CellResults]) -> list[CellResults]:
    """The cells findings use: no same-data pairing, and each target task's largest training size."""
    cells = [c for c in cells if not c.same_data_as_target]
    largest: dict[str, float] = {}
    for c in cells:
        size = math.inf if c.train_size is None else c.train_size
        largest[c.target_task] = max(largest.get(c.target_task, -1), size)
    return [c for c in cells if (math.inf if c.train_size is None else c.train_size) == largest[c.target_task]]


def same_data_pairings(cells) -> list[dict]:
    """(model, intermediate, target) pairings whose intermediate data is the target's own training data."""
    seen: dict[tuple, dict] = {}
    for c in cells:
        if c.same_data_as_target:
            row = seen.setdefault((c.model.name, c.intermediate_task, c.target_task),
                                  {"model": c.model.name, "intermediate_task": c.intermediate_task,
                                   "target_task": c.target_task, "why": c.same_data_as_target, "cells": 0})
            row["cells"] += 1
    return list(seen.values())


class _Arms:
    """Score estimates of the findings' arms: (target task, model, intermediate or NONE) -> Estimate."""

    def __init__(self, cells, boot: Bootstrap):
        self.boot = boot
        self.cells: dict[tuple[str, str, str], list] = defaultdict(list)
        by_task: dict[str, list] = defaultdict(list)
        for c in cells:
            self.cells[(c.target_task, c.model.name, c.intermediate_name)].append(c)
            by_task[c.target_task].append(c)
        self.family = {c.model.name: c.model.family for c in cells}
        self.pretrained_on = {c.model.name: getattr(c, "model_languages", None) for c in cells}
        self.languages = {t: sorted(set.intersection(*(set(c.per_language) for c in cs))) for t, cs in by_task.items()}
        self._cache: dict[tuple, Estimate] = {}

    def tasks(self) -> list[str]:
        return sorted(self.languages)

    def score(self, task, model, inter) -> Estimate:
        key = (task, model, inter)
        if key not in self._cache:
            fn = statistic(AVERAGE, self.languages[task])[0]
            self._cache[key] = self.boot.arm(self.cells[key], fn)
        return self._cache[key]

    def keys(self, task=None, inter=None, regime=None):
        """Arms of a task, optionally of one intermediate task or of a regime ("with" | "without")."""
        return [k for k in sorted(self.cells) if (task is None or k[0] == task) and (inter is None or k[2] == inter)
                and (regime is None or (k[2] == NONE) == (regime == "without"))]

    def best_of_family(self, keys) -> dict[str, tuple[tuple, Estimate]]:
        """family -> (arm key, score) of the family among keys, by a rule fixed in advance (never selected on
        the results): the mean of the scores of all its models' arms; the key names them
        ("family:bert-base+mbert")."""
        by: dict[str, list[tuple]] = defaultdict(list)
        for k in keys:
            by[self.family[k[1]]].append(k)
        out = {}
        for f, ks in by.items():
            models = "+".join(sorted({k[1] for k in ks}))
            label = (ks[0][0], models if len({k[1] for k in ks}) == 1 else f"family:{models}",
                     ks[0][2] if len({k[2] for k in ks}) == 1 else "+".join(sorted({k[2] for k in ks})))
            out[f] = (label, mean_of([self.score(*k) for k in ks]))
        return out

    def paired_difference(self, with_key, without_key, key: str = AVERAGE) -> Estimate | None:
        stat = statistic(key, self.languages[with_key[0]])
        if stat is None:
            return None
        return with_minus_without(self.boot, self.cells[with_key], self.cells[without_key], stat[0])


# ------------------------------------------------------------------------------------------------
# Verdicts from intervals

def _fmt(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def difference_text(label: str, e: Estimate | None) -> str:
    if e is None:
        return f"{label}: no paired seeds"
    if not e.has_ci:
        return f"{label} {_fmt(e.point)} (no CI: {e.no_ci})"
    lo, hi = e.ci()
    return f"{label} {_fmt(e.point)} [{_fmt(lo)}, {_fmt(hi)}]"


def difference_numbers(label: str, e: Estimate | None, delta: float | None = None) -> dict:
    return {"difference": label, **(e.as_dict(delta) if e is not None else {"no_ci": "no paired seeds"})}


def _greater(a: Estimate, b: Estimate) -> str:
    """YES: a > b resolved; NO: b > a resolved; OPEN: the interval of a − b contains 0 (or there is none)."""
    s = (a - b).sign()
    return YES if s > 0 else NO if s < 0 else OPEN


def _universal(statuses: list[str]) -> str:
    """A claim about every unit: one NO contradicts it, all YES support it."""
    if not statuses:
        return NOT_TESTED
    if NO in statuses:
        return CONTRADICTED
    return SUPPORTED if all(s == YES for s in statuses) else INCONCLUSIVE


def _claim(i: int, verdict: str, evidence: str, numbers: dict) -> Claim:
    return Claim(i, CLAIMS[i], verdict, evidence, numbers)


def _label(key) -> str:
    return f"{key[1]}/{key[2]}"


# ------------------------------------------------------------------------------------------------
# The findings

CLAIM1_READING = ("read as a family ranking within the intermediate-trained regime: per target, a BERT- or "
                  "RoBERTa-family score with intermediate training is above every other family's with intermediate "
                  "training (Holm over the two); not against arms without it, so it is not claim 11's negation")


def _claim1(arms: _Arms):
    """Per target with BERT or RoBERTa and another family, all with intermediate training: holds where the
    larger of BERT − other and RoBERTa − other (each other family) has a Holm-adjusted (over the two) interval
    above 0, fails where the other family is above both (an intersection-union test: both intervals of other −
    qualifying above 0), open otherwise."""
    statuses, parts, tasks = [], [], {}
    for task in arms.tasks():
        fam = arms.best_of_family(arms.keys(task, regime="with"))
        qualifying = {f: v for f, v in fam.items() if f in ("bert", "roberta")}
        others = {f: v for f, v in fam.items() if f not in qualifying}
        if not qualifying or not others:
            continue
        per_other, task_status = {}, []
        for g, (gk, ge) in sorted(others.items()):
            diffs = {f: qe - ge for f, (qk, qe) in qualifying.items()}
            adjusted = stats.holm([d.p_value() for d in diffs.values()])
            holds = any(d.point > 0 and not math.isnan(p) and p < 1 - stats.LEVEL
                        for d, p in zip(diffs.values(), adjusted))
            fails = all(d.sign() < 0 for d in diffs.values())
            status = YES if holds else NO if fails else OPEN
            task_status.append(status)
            best_f = max(diffs, key=lambda f: diffs[f].point)
            label = f"{task}: {_label(qualifying[best_f][0])} − {_label(gk)}"
            parts.append(difference_text(label, diffs[best_f]))
            per_other[g] = {"holds": status, "holm_p": dict(zip(diffs, adjusted)), **difference_numbers(label, diffs[best_f])}
        status = NO if NO in task_status else YES if all(t == YES for t in task_status) else OPEN
        statuses.append(status)
        tasks[task] = {"holds": status, "against": per_other}
    if not statuses:
        return _claim(1, NOT_TESTED, "no target task has BERT or RoBERTa and another family with intermediate "
                                     "training", {"tasks": {}, "reading": CLAIM1_READING})
    return _claim(1, _universal(statuses), "; ".join(parts), {"tasks": tasks, "reading": CLAIM1_READING})


def _setting_scores(arms: _Arms, cells) -> dict[tuple, dict[str, Estimate]]:
    """setting -> family -> its score with intermediate training: per target task the mean of the family's models
    (a model's score: the mean over its intermediate tasks), then the mean over the setting's tasks."""
    tasks_of: dict[tuple, set] = defaultdict(set)
    for c in cells:
        s = _setting(c)
        if s is not None and c.intermediate_task:
            tasks_of[s].add(c.target_task)
    out = {}
    for setting, tasks in tasks_of.items():
        per_family: dict[str, list[Estimate]] = defaultdict(list)
        for task in sorted(tasks):
            by_model: dict[str, list[Estimate]] = defaultdict(list)
            for k in arms.keys(task, regime="with"):
                by_model[k[1]].append(arms.score(*k))
            of_family: dict[str, list[Estimate]] = defaultdict(list)
            for model, es in by_model.items():
                of_family[arms.family[model]].append(mean_of(es))
            for f, es in of_family.items():      # the family: the mean of its models (fixed, not the best)
                per_family[f].append(mean_of(es))
        if len(per_family) >= 2:
            out[setting] = {f: mean_of(es) for f, es in per_family.items()}
    return out


def _best_status(scores: dict[str, Estimate], family: str) -> str:
    if family not in scores:   # the family did not run in this setting: nothing says whether it would win
        return OPEN
    others = [g for g in scores if g != family]
    if all(_greater(scores[family], scores[g]) == YES for g in others):
        return YES
    if any(_greater(scores[g], scores[family]) == YES for g in others):
        return NO
    return OPEN


def _resolved_winner(scores: dict[str, Estimate]) -> str | None:
    return next((f for f in scores if _best_status(scores, f) == YES), None)


def _settings_numbers(scores) -> dict:
    out = {}
    for (t, x), fam in sorted(scores.items()):
        ordered = sorted(fam.items(), key=lambda kv: -kv[1].point)
        out[f"{t}/{x}"] = {"scores": {f: e.as_dict() for f, e in ordered},
                           "winner": _resolved_winner(fam),
                           **(difference_numbers(f"{ordered[0][0]} − {ordered[1][0]}", ordered[0][1] - ordered[1][1])
                              if len(ordered) > 1 else {})}
    return out


def _count_claim(i: int, family: str, scores, exclude_third: bool) -> Claim:
    tested = [s for s in SETTINGS if s in scores]
    missing = len(SETTINGS) - len(tested)
    status = {s: _best_status(scores[s], family) for s in tested}
    yes, no = sum(v == YES for v in status.values()), sum(v == NO for v in status.values())
    open_ = len(tested) - yes - no
    third = [s for s in tested if (w := _resolved_winner(scores[s])) is not None and w not in ("bert", "roberta")]
    numbers = {"settings": _settings_numbers(scores), f"{family}_best": yes, f"{family}_not_best": no,
               "open": open_, "settings_tested": len(tested), "settings_missing": missing,
               **({"won_by_a_third_family": [f"{t}/{x}" for t, x in third]} if exclude_third else {})}
    parts = []
    for s in tested:
        ordered = sorted(scores[s].items(), key=lambda kv: -kv[1].point)
        parts.append(difference_text(f"{s[0]}/{s[1]}: {ordered[0][0]} − {ordered[1][0]}",
                                     ordered[0][1] - ordered[1][1]))
    evidence = (f"{family} best in {yes}, not best in {no}, open in {open_} of {len(tested)} settings tested "
                f"({missing} of 6 missing)" + ("; " + "; ".join(parts) if parts else ""))
    if not tested:
        return _claim(i, NOT_TESTED, "no setting has ≥2 families with intermediate training", numbers)
    if not (yes <= 3 <= yes + open_ + missing) or (exclude_third and third):
        return _claim(i, CONTRADICTED, evidence, numbers)
    if yes == 3 and no == 3 and (not exclude_third
                                  or all(_resolved_winner(scores[s]) in ("bert", "roberta") for s in tested)):
        return _claim(i, SUPPORTED, evidence, numbers)
    return _claim(i, NOT_TESTED if open_ == 0 else INCONCLUSIVE, evidence, numbers)


def _claim4(arms: _Arms):
    statuses, parts, experiments = [], [], {}
    for task in arms.tasks():
        for inter in sorted({k[2] for k in arms.keys(task)}):
            best = arms.best_of_family(arms.keys(task, inter=inter))
            if "xlnet" not in best or len(best) < 2:
                continue
            x = best["xlnet"][1]
            others = {f: e for f, (_, e) in best.items() if f != "xlnet"}
            per = {f: _greater(e, x) for f, e in others.items()}
            status = NO if NO in per.values() else YES if all(v == YES for v in per.values()) else OPEN
            lowest = min(others, key=lambda f: others[f].point)
            diff = others[lowest] - x
            label = f"{task}/int-{inter}: {lowest} − xlnet"
            statuses.append(status)
            parts.append(difference_text(label, diff))
            experiments[f"{task}/{inter}"] = {"holds": status, "pairwise": per, **difference_numbers(label, diff)}
    if not statuses:
        return _claim(4, NOT_TESTED, "no experiment has XLNet and another family", {"experiments": {}})
    return _claim(4, _universal(statuses), "; ".join(parts), {"experiments": experiments})


def _one_point(cells) -> float:
    return 1.0 if any(abs(c.average) > 1.0 for c in cells) else 0.01


def _approx(e: Estimate, margin: float) -> str:
    """YES: the interval lies within ±margin; NO: wholly outside it; OPEN otherwise (or no interval)."""
    if not e.has_ci:
        return OPEN
    lo, hi = e.ci()
    if -margin <= lo and hi <= margin:
        return YES
    return NO if lo > margin or hi < -margin else OPEN


def _claim5(arms: _Arms, cells):
    point = _one_point(cells) if cells else 0.01
    statuses, parts, tasks = [], [], {}
    for task in arms.tasks():
        best = arms.best_of_family(arms.keys(task, regime="without"))
        if not all(f in best for f in FAMILIES):
            continue
        r, b, x = (best[f][1] for f in ("roberta", "bert", "xlnet"))
        rb = r - b
        approx = _approx(rb, point)
        above = [_greater(r, x), _greater(b, x)]
        above_status = NO if NO in above else YES if all(v == YES for v in above) else OPEN
        status = NO if NO in (approx, above_status) else YES if approx == above_status == YES else OPEN
        statuses.append(status)
        parts.append(f"{task}: " + difference_text("roberta − bert", rb) + f" (≈ within ±{_fmt(point)}); "
                     + difference_text("min(roberta, bert) − xlnet", (r if r.point <= b.point else b) - x))
        tasks[task] = {"holds": status, "roberta_approx_bert": approx, "above_xlnet": above_status,
                       "margin": point, "roberta_minus_bert": rb.as_dict(),
                       "roberta_minus_xlnet": (r - x).as_dict(), "bert_minus_xlnet": (b - x).as_dict()}
    if not statuses:
        return _claim(5, NOT_TESTED, "no target task has BERT, RoBERTa and XLNet without intermediate training",
                      {"tasks": {}, "point": point})
    return _claim(5, _universal(statuses), "; ".join(parts), {"tasks": tasks, "point": point})


def _main_finding(arms: _Arms, cells):
    """Per target task, on its primary endpoint (the non-English average of a cross-lingual target, else the
    average): the mean over (model, intermediate task) of the paired with − without difference, leaving out
    English-only models on a cross-lingual target (results.json `model_languages`: their zero-shot scores are
    not what the claim is about) and the control arm. Each task's verdict against its δ (different /
    equivalent / underpowered / inconclusive). Across tasks, "without is better for most tasks" is a claim
    about how many of N tasks: supported where Dror et al.'s (2017) partial conjunction count of tasks with
    without better (one-sided p of with − without < 0) exceeds N/2; contradicted where the count of tasks
    where without is not better (with better one-sided, or TOST-equivalent; Bonferroni over the two) reaches
    N/2; inconclusive otherwise. Both counts control the family-wise error of "at least k of N" at 5 %."""
    per_task, parts = {}, []
    p_without, p_not = [], []
    for task in arms.tasks():
        key = primary_key(arms.languages[task])
        cross = key != AVERAGE
        diffs, left_out = [], set()
        for k in arms.keys(task, regime="with"):
            if k[2] == "control":
                continue
            if cross and arms.pretrained_on.get(k[1]) == "english":
                left_out.add(k[1])
                continue
            base = (task, k[1], NONE)
            if base in arms.cells:
                d = arms.paired_difference(k, base, key)
                if d is not None:
                    diffs.append(d)
        if not diffs:
            continue
        d = mean_of(diffs)
        delta = smallest_effect(cells, task)
        verdict = d.verdict(delta)
        s_ = d.sign()
        one_less, one_more = _one_sided(d)
        p_tost = _tost_p(d, delta)
        p_without.append(one_less)
        p_not.append(min(1.0, 2 * min(one_more, p_tost)))
        per_task[task] = {"endpoint": key, "without_better": YES if s_ < 0 else NO if s_ > 0 else OPEN,
                          "verdict": verdict, "pairs": len(diffs), "english_only_models_left_out": sorted(left_out),
                          "p_without_better": one_less, "p_not_without_better": p_not[-1],
                          **difference_numbers("with − without", d, delta)}
        parts.append(difference_text(f"{task} {key.replace('_', '-')}: with − without (mean of {len(diffs)} pairs)", d)
                     + f" {verdict}")
    if not per_task:
        return _claim(MAIN_FINDING, NOT_TESTED, "no target task has cells with and without intermediate training",
                      {"tasks": {}})
    n = len(per_task)
    yes = stats.partial_conjunction_count(p_without)
    not_ = stats.partial_conjunction_count(p_not)
    verdict = SUPPORTED if yes > n / 2 else CONTRADICTED if not_ >= n / 2 else INCONCLUSIVE
    under = sum(t["verdict"] == stats.UNDERPOWERED for t in per_task.values())
    evidence = (f"without better in at least {yes} of {n} tasks, not better in at least {not_} (partial conjunction "
                f"counts, 5 % family-wise); {under} of {n} underpowered; " + "; ".join(parts))
    return _claim(MAIN_FINDING, verdict, evidence, {"tasks": per_task, "without_better": yes,
                                                    "not_without_better": not_, "underpowered": under,
                                                    "tasks_tested": n, "count_method": "partial conjunction "
                                                    "(Dror et al. 2017; Bonferroni partial conjunction p)"})


def _one_sided(d: Estimate) -> tuple[float, float]:
    """(p of "d < 0", p of "d > 0"): one-sided t tests of the estimate (1.0 without an interval)."""
    if not d.has_ci:
        return 1.0, 1.0
    if d.se == 0:
        return (0.0, 1.0) if d.point < 0 else (1.0, 0.0) if d.point > 0 else (1.0, 1.0)
    t = d.point / d.se
    return float(student_t.cdf(t, d.df)), float(student_t.sf(t, d.df))


def _tost_p(d: Estimate, delta: float) -> float:
    """TOST's p (Schuirmann 1987): the larger of the one-sided p's of d > −δ and d < δ."""
    if not d.has_ci:
        return 1.0
    if d.se == 0:
        return 0.0 if abs(d.point) < delta else 1.0
    return float(max(student_t.sf((d.point + delta) / d.se, d.df), student_t.cdf((d.point - delta) / d.se, d.df)))


ARCHITECTURE_CLAIMS = (1, 2, 3, 4, 5)


def architecture_cells(cells) -> tuple[list, str]:
    """The cells claims 1–5 (architecture) use, and the note saying which: the monolingual trio (English-only
    BERT, RoBERTa and XLNet models: results.json `model_languages` "english") where the grid has all three
    families so, else every cell, with the pretraining-language confound stated where families differ in it."""
    english = {c.model.family for c in cells if getattr(c, "model_languages", None) == "english"}
    if set(FAMILIES) <= english:
        return ([c for c in cells if getattr(c, "model_languages", None) == "english"],
                "on the English-only trio (same pretraining languages: the families differ in architecture)")
    langs: dict[str, set] = defaultdict(set)
    for c in cells:
        langs[c.model.family].add(getattr(c, "model_languages", None) or "not recorded")
    kinds = {f: "/".join(sorted(v)) for f, v in sorted(langs.items())}
    if len(set(kinds.values())) > 1:
        return cells, ("pretraining-language confound: the families differ in what they were pretrained on ("
                       + ", ".join(f"{f} {k}" for f, k in kinds.items())
                       + "), so on cross-lingual targets these compare pretraining languages, not only architectures")
    return cells, f"all families pretrained {next(iter(kinds.values()), 'not recorded')}"


def evaluate_claims(cells: list[CellResults], boot: Bootstrap) -> list[Claim]:
    """The findings, in order (1–5, then the main finding), on the parsed results of one run. Claims 1–5 compare
    families (each the mean of its models, fixed in advance); the main finding compares regimes."""
    used = finding_cells(cells)
    # The control arm (compute-matched, permuted labels) is no intermediate training: no family claim uses it.
    arch, note = architecture_cells([c for c in used if c.intermediate_name != "control"])
    arms = _Arms(arch, boot)
    scores = _setting_scores(arms, arch)
    found = [_claim1(arms), _count_claim(2, "roberta", scores, False), _count_claim(3, "bert", scores, True),
             _claim4(arms), _claim5(arms, arch)]
    found = [dataclasses.replace(c, evidence=f"{c.evidence} [{note}]", numbers={**c.numbers, "models": note})
             for c in found]
    return [*found, _main_finding(_Arms(used, boot), used)]


# ------------------------------------------------------------------------------------------------
# The setup: what the run did against what the paper did

def _intermediate_cells(cells):
    return [c for c in cells if c.intermediate_task and c.training.intermediate is not None]


def _deviation(i: int, run: str, follows: str, numbers: dict) -> Deviation:
    return Deviation(i, SETUP[i], PAPER_SETUP[i], run, follows, numbers)


def _follows(ok: bool) -> str:
    return "yes" if ok else "no"


def _dev6(cells):
    inter = _intermediate_cells(cells)
    if not inter:
        return _deviation(6, "no cell ran intermediate training", NOT_TESTED, {"epochs": {}})
    epochs: dict[str, list[float]] = defaultdict(list)
    for c in inter:
        epochs[c.intermediate_task].append(c.training.intermediate.epochs)
    values = sorted({e for es in epochs.values() for e in es})
    run = "; ".join(f"{t}: {', '.join(_fmt(e) for e in sorted(set(es)))} epoch{'' if set(es) == {1} else 's'} "
                    f"({len(es)} cells)" for t, es in sorted(epochs.items()))
    return _deviation(6, f"{run} vs the paper's {INTERMEDIATE_EPOCHS}",
                      _follows(all(e == INTERMEDIATE_EPOCHS for e in values)),
                      {"epochs": {t: sorted(set(es)) for t, es in epochs.items()}, "paper": INTERMEDIATE_EPOCHS})


_TARGET_TRAINING_KEYS = ("epochs", "train_examples", "steps", "tokens")
# Config parts that describe how the target phase runs (repro/config.py): the phase itself, the data,
# the evaluation and the precision. The cell, grid, intermediate phase and output paths differ by design.
_TARGET_CONFIG_KEYS = ("target", "data", "eval", "precision")


def _target_signature(cell) -> dict[str, Any]:
    cfg = cell.config
    sig = {f"config.{k}": cfg.get(k) for k in _TARGET_CONFIG_KEYS if k in cfg}
    sig.update({f"training.target.{k}": getattr(cell.training.target, k) for k in _TARGET_TRAINING_KEYS})
    return sig


def _dev7(cells):
    baseline = {(c.model.name, c.target_task, c.train_size, c.seed): c for c in cells if not c.intermediate_task}
    pairs, differing = 0, []
    for c in cells:
        base = baseline.get((c.model.name, c.target_task, c.train_size, c.seed)) if c.intermediate_task else None
        if base is None:
            continue
        pairs += 1
        a, b = _target_signature(c), _target_signature(base)
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if diff:
            differing.append({"cell": c.cell_id, "baseline": base.cell_id, "keys": diff,
                              "values": {k: [a.get(k), b.get(k)] for k in diff}})
    numbers = {"pairs": pairs, "pairs_differing": len(differing), "differences": differing,
               "compared": [f"config.{k}" for k in _TARGET_CONFIG_KEYS]
               + [f"training.target.{k}" for k in _TARGET_TRAINING_KEYS]}
    if not pairs:
        return _deviation(7, "no (model, target, seed) has cells with and without intermediate training",
                          NOT_TESTED, numbers)
    run = f"{pairs} paired cells, {len(differing)} differ in the target phase"
    if differing:
        run += f" (e.g. {differing[0]['cell']}: {', '.join(differing[0]['keys'][:3])})"
    return _deviation(7, run, _follows(not differing), numbers)


def _dev8(cells):
    if not cells:
        return _deviation(8, "no cells", NOT_TESTED, {})
    frozen = {c.cell_id: c.frozen_parameters for c in cells}
    partial = [c.cell_id for c in cells if c.param_count.trainable != c.param_count.total]
    bad = sorted({k for k, v in frozen.items() if v} | set(partial))
    run = (f"{len(cells)} cells: at most {max(frozen.values())} frozen parameters, {len(partial)} with trainable "
           "!= total")
    return _deviation(8, run, _follows(not bad), {"cells": len(cells), "max_frozen_parameters": max(frozen.values()),
                                                  "cells_trainable_below_total": partial, "cells_failing": bad})


def _dev9(cells):
    ratios = {}
    for c in _intermediate_cells(cells):
        n_int, n_tgt = c.training.intermediate.train_examples, c.training.target.train_examples
        ratios[c.cell_id] = {"intermediate_task": c.intermediate_task, "target_task": c.target_task,
                             "intermediate_examples": n_int, "target_examples": n_tgt,
                             "ratio": n_int / n_tgt if n_tgt else math.inf}
    if not ratios:
        return _deviation(9, "no cell ran intermediate training", NOT_TESTED, {"cells": {}})
    w = ratios[min(ratios, key=lambda k: ratios[k]["ratio"])]
    run = (f"smallest {_fmt(w['ratio'])}× ({w['intermediate_task']} {w['intermediate_examples']:,} vs "
           f"{w['target_task']} {w['target_examples']:,} examples) over {len(ratios)} cells")
    return _deviation(9, run, _follows(w["ratio"] >= SIZE_RATIO),
                      {"cells": ratios, "min_ratio": w["ratio"], "paper": SIZE_RATIO})


def _dev10(cells):
    tc = [c for c in cells if (_setting(c) or (None,))[0] == "classification" and c.intermediate_task]
    if not tc:
        return _deviation(10, "no (text) classification cell ran intermediate training", NOT_TESTED, {"tasks": {}})
    used: dict[str, list[str]] = defaultdict(list)
    for c in tc:
        used[c.target_task].append(c.intermediate_task)
    run = "; ".join(f"{t}: {', '.join(sorted(set(i)))}" for t, i in sorted(used.items()))
    return _deviation(10, run, _follows(all(_base_task(c.intermediate_task) == "imdb" for c in tc)),
                      {"tasks": {t: sorted(set(i)) for t, i in used.items()}})


def deviations(cells: list[CellResults]) -> list[Deviation]:
    """The seed study's setup (its claims 6–10) against what this run did."""
    return [check(cells) for check in (_dev6, _dev7, _dev8, _dev9, _dev10)]
